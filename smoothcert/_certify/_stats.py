"""Confidence bounds, hypothesis tests and certified radii.

Every statistical decision of the library is made here, in float64, so that the
rules of the design page (*Statistical rules*) live in a single place:

* hard votes use the one-sided Clopper-Pearson lower bound,
* soft votes use a bound valid for the mean of scores in [0, 1]
  (Hoeffding and empirical Bernstein, combined by a union bound),
* PREDICT with abstention uses the two-sided binomial test of the top two counts.
"""

import numpy as np
from scipy import stats

__all__ = [
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "hoeffding_lower",
    "empirical_bernstein_lower",
    "soft_lower_bound",
    "binomial_test_pvalue",
    "mahalanobis_radius",
    "radius_ceiling",
]


def _check_alpha(alpha):
    alpha = np.asarray(alpha, dtype=np.float64)
    if np.any(~np.isfinite(alpha)) or np.any(alpha <= 0) or np.any(alpha >= 1):
        raise ValueError(f"alpha must lie in the open interval (0, 1), got {alpha!r}.")
    return alpha


def _check_counts(k, n):
    k = np.asarray(k)
    n = np.asarray(n)
    if np.any(n < 1):
        raise ValueError("The number of draws n must be at least 1.")
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("Counts k must satisfy 0 <= k <= n.")
    return k.astype(np.float64), n.astype(np.float64)


def clopper_pearson_lower(k, n, alpha):
    """One-sided Clopper-Pearson lower confidence bound of a binomial proportion.

    Returns ``p`` such that ``P(p <= true proportion) >= 1 - alpha``: the
    ``alpha`` quantile of ``Beta(k, n - k + 1)``, and 0 when ``k = 0``.

    Parameters
    ----------
    k : array-like of int
        Number of successes.
    n : array-like of int
        Number of trials (at least 1).
    alpha : float
        Failure probability, in (0, 1).

    Returns
    -------
    lower : ndarray of float64
        The lower bound, strictly below 1 for finite ``n``.

    Examples
    --------
    >>> from smoothcert._certify._stats import clopper_pearson_lower
    >>> round(float(clopper_pearson_lower(99, 100, 0.001)), 4)
    0.9114
    """
    alpha = _check_alpha(alpha)
    k, n = _check_counts(k, n)
    with np.errstate(invalid="ignore"):
        lower = stats.beta.ppf(alpha, np.maximum(k, 1.0), n - k + 1.0)
    return np.where(k > 0, lower, 0.0)


def clopper_pearson_upper(k, n, alpha):
    """One-sided Clopper-Pearson upper confidence bound (1 when ``k = n``).

    Parameters
    ----------
    k : array-like of int
        Number of successes.
    n : array-like of int
        Number of trials (at least 1).
    alpha : float
        Failure probability, in (0, 1).

    Returns
    -------
    upper : ndarray of float64
    """
    alpha = _check_alpha(alpha)
    k, n = _check_counts(k, n)
    with np.errstate(invalid="ignore"):
        upper = stats.beta.ppf(1.0 - alpha, k + 1.0, np.maximum(n - k, 1.0))
    return np.where(k < n, upper, 1.0)


def hoeffding_lower(mean, n, alpha):
    """Hoeffding lower bound for the mean of ``n`` i.i.d. scores in [0, 1].

    ``mean - sqrt(log(1 / alpha) / (2 n))``, clipped at 0.

    Parameters
    ----------
    mean : array-like of float
        Empirical means.
    n : int or array-like of int
        Number of draws.
    alpha : float
        Failure probability, in (0, 1).

    Returns
    -------
    lower : ndarray of float64
    """
    alpha = _check_alpha(alpha)
    mean = np.asarray(mean, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    return np.clip(mean - np.sqrt(np.log(1.0 / alpha) / (2.0 * n)), 0.0, 1.0)


def empirical_bernstein_lower(mean, variance, n, alpha):
    """Empirical Bernstein lower bound (Maurer and Pontil, 2009, Theorem 4).

    For ``n >= 2`` i.i.d. scores in [0, 1] with empirical mean ``mean`` and
    unbiased sample variance ``variance``::

        mean - sqrt(2 variance log(2 / alpha) / n) - 7 log(2 / alpha) / (3 (n - 1))

    holds with probability at least ``1 - alpha``.

    Parameters
    ----------
    mean, variance : array-like of float
        Empirical mean and unbiased (``n - 1``) sample variance.
    n : int or array-like of int
        Number of draws, at least 2.
    alpha : float
        Failure probability, in (0, 1).

    Returns
    -------
    lower : ndarray of float64
    """
    alpha = _check_alpha(alpha)
    mean = np.asarray(mean, dtype=np.float64)
    variance = np.maximum(np.asarray(variance, dtype=np.float64), 0.0)
    n = np.asarray(n, dtype=np.float64)
    if np.any(n < 2):
        raise ValueError("The empirical Bernstein bound needs at least 2 draws.")
    log_term = np.log(2.0 / alpha)
    bound = mean - np.sqrt(2.0 * variance * log_term / n) - 7.0 * log_term / (3.0 * (n - 1.0))
    return np.clip(bound, 0.0, 1.0)


def soft_lower_bound(mean, variance, n, alpha):
    """Lower bound for the mean of [0, 1] scores used by soft smoothing.

    The larger of the Hoeffding and the empirical Bernstein bounds, each at
    level ``alpha / 2``: by the union bound the result holds with probability
    at least ``1 - alpha``. Bernstein wins when the scores vary little (a
    confident base model), Hoeffding when they vary a lot.

    Parameters
    ----------
    mean, variance : array-like of float
        Empirical mean and unbiased sample variance of the scores.
    n : int
        Number of draws, at least 2.
    alpha : float
        Failure probability, in (0, 1).

    Returns
    -------
    lower : ndarray of float64
    """
    alpha = _check_alpha(alpha)
    return np.maximum(
        hoeffding_lower(mean, n, alpha / 2.0),
        empirical_bernstein_lower(mean, variance, n, alpha / 2.0),
    )


def binomial_test_pvalue(k_top, k_second):
    """Two-sided p-value of the binomial test ``k_top ~ Bin(k_top + k_second, 1/2)``.

    Vectorized and exact: for ``p = 1/2`` the distribution is symmetric, so the
    two-sided p-value of :func:`scipy.stats.binomtest` equals
    ``min(1, 2 * P(X <= min(k_top, k_second)))``.

    Parameters
    ----------
    k_top, k_second : array-like of int
        Counts of the two most frequent classes.

    Returns
    -------
    pvalue : ndarray of float64
        1 where both counts are 0.
    """
    k_top = np.asarray(k_top, dtype=np.float64)
    k_second = np.asarray(k_second, dtype=np.float64)
    total = k_top + k_second
    low = np.minimum(k_top, k_second)
    with np.errstate(invalid="ignore"):
        p = np.minimum(1.0, 2.0 * stats.binom.cdf(low, total, 0.5))
    return np.where(total > 0, p, 1.0)


def mahalanobis_radius(p_lower, p_upper_second=None):
    """Certified radius in the whitened (Mahalanobis) metric.

    ``Phi^-1(p_lower)`` (Cohen et al., 2019) or, with an upper bound on the
    runner-up, ``(Phi^-1(p_lower) - Phi^-1(p_upper_second)) / 2``; 0 where the
    certificate abstains (``p_lower <= 1/2``).

    Parameters
    ----------
    p_lower : array-like of float
        Lower confidence bound of the top-class probability.
    p_upper_second : array-like of float, optional
        Upper confidence bound of the runner-up probability.

    Returns
    -------
    radius : ndarray of float64
        Finite and non-negative.
    """
    p_lower = np.asarray(p_lower, dtype=np.float64)
    if np.any((p_lower < 0) | (p_lower > 1)) or np.any(np.isnan(p_lower)):
        raise ValueError("p_lower must lie in [0, 1].")
    tiny = np.finfo(np.float64).eps
    p = np.clip(p_lower, tiny, 1.0 - tiny)
    if p_upper_second is None:
        r = stats.norm.ppf(p)
    else:
        q = np.clip(np.asarray(p_upper_second, dtype=np.float64), tiny, 1.0 - tiny)
        r = 0.5 * (stats.norm.ppf(p) - stats.norm.ppf(q))
    return np.where(p_lower > 0.5, np.maximum(r, 0.0), 0.0)


def radius_ceiling(n_samples, alpha):
    """Largest Mahalanobis radius hard-vote CERTIFY can return.

    Reached when all ``n_samples`` estimation draws vote for the top class:
    ``Phi^-1(alpha^(1/n))``. The l2 radius of :class:`SmoothedClassifier` is
    ``sigma`` times this.

    Parameters
    ----------
    n_samples : int
        Number of estimation draws.
    alpha : float
        Failure probability, in (0, 1).

    Returns
    -------
    ceiling : float

    Examples
    --------
    >>> from smoothcert._certify._stats import radius_ceiling
    >>> round(radius_ceiling(100_000, 0.001), 3)
    3.811
    """
    return float(mahalanobis_radius(clopper_pearson_lower(n_samples, n_samples, alpha)))
