"""Confidence bounds, hypothesis tests and certified radii.

Every statistical decision of the library is made here, in float64, so that the
rules of the design page (*Statistical rules*) live in a single place:

* hard votes use the one-sided Clopper-Pearson lower bound,
* soft votes use a bound valid for the mean of scores in [0, 1]
  (Hoeffding and empirical Bernstein, combined by a union bound); two tighter
  sums-only candidates are also here, the Chernoff-Hoeffding relative-entropy
  bound and Bentkus' bound, which on one-hot scores come within 1 % and 0.5 %
  of the Clopper-Pearson radius,
* PREDICT with abstention uses the two-sided binomial test of the top two counts.
"""

import numpy as np
from scipy import special, stats

__all__ = [
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "hoeffding_lower",
    "empirical_bernstein_lower",
    "soft_lower_bound",
    "kl_lower_bound",
    "kl_upper_bound",
    "bentkus_lower_bound",
    "binomial_test_pvalue",
    "mahalanobis_radius",
    "threshold_radius",
    "radius_ceiling",
    "target_probability",
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
    k, n, alpha
        As in :func:`clopper_pearson_lower`.

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
    n, alpha
        As in :func:`hoeffding_lower` (``n`` at least 2).

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
    mean, variance, n, alpha
        As in :func:`empirical_bernstein_lower`.

    Returns
    -------
    lower : ndarray of float64
    """
    alpha = _check_alpha(alpha)
    return np.maximum(
        hoeffding_lower(mean, n, alpha / 2.0),
        empirical_bernstein_lower(mean, variance, n, alpha / 2.0),
    )


#: Bisection steps of the sums-only bounds: enough to reach adjacent floats in [0, 1].
_BISECTION_STEPS = 64
#: Newton / bisection steps of Bentkus' bound, and its convergence tolerance (in log p).
_BENTKUS_STEPS = 40
_BENTKUS_TOL = 1e-10
#: Bentkus' search over the threshold h is restricted to ``t - _BENTKUS_WINDOW * sd <= h < t``;
#: a narrower window can only loosen the bound, never invalidate it.
_BENTKUS_WINDOW = 8.0


def _check_means(mean, n):
    mean = np.asarray(mean, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(~np.isfinite(mean)) or np.any((mean < 0) | (mean > 1)):
        raise ValueError("mean must lie in [0, 1].")
    if np.any(~np.isfinite(n)) or np.any(n < 1):
        raise ValueError("The number of draws n must be at least 1.")
    return mean, n


def _bernoulli_kl(p, m):
    """Relative entropy ``KL(Bernoulli(p) || Bernoulli(m))``, infinite where undefined."""
    return special.rel_entr(p, m) + special.rel_entr(1.0 - p, 1.0 - m)


def kl_lower_bound(mean, n, alpha):
    """Chernoff-Hoeffding (relative-entropy) lower bound for a mean of [0, 1] scores.

    Hoeffding (1963, Theorem 1): for ``n`` independent scores in [0, 1] with mean
    ``mu`` and empirical mean ``mean``, ``P(mean >= mu + t) <= exp(-n KL(mu + t || mu))``
    where ``KL`` is the Bernoulli relative entropy. Inverting it gives the lower
    bound: the ``m < mean`` solving ``n KL(mean || m) = log(1 / alpha)``, or 0.
    It needs only the sum of the scores, holds for any distribution on [0, 1], is
    never looser than Hoeffding's ``mean - sqrt(log(1/alpha) / (2n))`` (Pinsker's
    inequality), and with all scores equal to 1 it is Clopper-Pearson's
    ``alpha^(1/n)``. The root is found by bisection and the end of the bracket
    that is still rejected is returned, so rounding never makes it optimistic.

    Parameters
    ----------
    mean, n, alpha
        Empirical means in [0, 1], numbers of scores, failure probability: as in
        :func:`hoeffding_lower`.

    Returns
    -------
    lower : ndarray of float64

    Examples
    --------
    >>> from smoothcert._certify._stats import kl_lower_bound
    >>> round(float(kl_lower_bound(0.99, 100_000, 0.001)), 5)
    0.98878
    >>> float(kl_lower_bound(1.0, 100, 0.001)) == 0.001 ** (1 / 100)
    True
    """
    alpha = _check_alpha(alpha)
    mean, n = _check_means(mean, n)
    mean, n, alpha = np.broadcast_arrays(mean, n, alpha)
    target = np.log(1.0 / alpha) / n
    lo = np.zeros(mean.shape)
    hi = mean.copy()
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        reject = _bernoulli_kl(mean, mid) >= target
        lo = np.where(reject, mid, lo)
        hi = np.where(reject, hi, mid)
    return np.where(mean == 1.0, alpha ** (1.0 / n), lo)


def kl_upper_bound(mean, n, alpha):
    """Chernoff-Hoeffding upper bound: ``1 - kl_lower_bound(1 - mean, n, alpha)``.

    Takes the parameters of :func:`kl_lower_bound` and returns an ndarray of
    float64. With no success in 100 scores at ``alpha = 0.001``:

    >>> from smoothcert._certify._stats import kl_upper_bound
    >>> round(float(kl_upper_bound(0.0, 100, 0.001)), 5)
    0.06675
    """
    mean = np.asarray(mean, dtype=np.float64)
    return 1.0 - kl_lower_bound(1.0 - mean, n, alpha)


def _bentkus_log_pvalue(t, n, m):
    """``log min_h E(S - h)_+ / (t - h)`` over integers ``h < t`` near ``t``, ``S ~ Bin(n, m)``.

    Also returns the derivative in ``m`` of that logarithm at the minimizing ``h``
    (``n P(Bin(n - 1, m) >= h) / E(S - h)_+``, by the envelope theorem). The ratio
    is quasi-convex in ``h`` (a convex function over a positive linear one), so
    its minimum over the integers of the window is found by bisection on the
    sign of its increments. Rows with no integer ``h`` in the window get
    ``log p = 0`` (the trivial p-value 1) and slope 0.
    """
    sd = np.sqrt(n * m * (1.0 - m))
    upper = np.ceil(t) - 1.0
    lower = np.maximum(0.0, np.floor(t - _BENTKUS_WINDOW * sd) - 1.0)
    empty = upper < lower
    lower = np.where(empty, 0.0, lower)
    upper = np.where(empty, 0.0, upper)
    n_m = n * m

    def ratio(h):
        h = np.minimum(h, upper)
        tail_prev = np.where(h >= 1.0, special.betainc(np.maximum(h, 1.0), n - h, m), 1.0)
        tail = special.betainc(h + 1.0, n - h, m)
        excess = np.maximum(n_m * tail_prev - h * tail, np.finfo(np.float64).tiny)
        return excess / np.maximum(t - h, np.finfo(np.float64).tiny), excess, tail_prev

    a, b = lower, upper
    width = float(np.max(b - a)) if a.size else 0.0
    for _ in range(int(np.ceil(np.log2(width + 1.0))) + 1):
        mid = np.floor(0.5 * (a + b))
        going = a < b
        right = going & (ratio(mid + 1.0)[0] < ratio(mid)[0])
        a = np.where(right, mid + 1.0, a)
        b = np.where(going & ~right, mid, b)
    value, excess, tail_prev = ratio(a)
    log_p = np.where(empty, 0.0, np.minimum(np.log(value), 0.0))
    slope = np.where(empty | (value >= 1.0), 0.0, n * tail_prev / excess)
    return log_p, slope


def bentkus_lower_bound(mean, n, alpha):
    """Bentkus' lower bound for a mean of [0, 1] scores (Bentkus, 2004).

    A score in [0, 1] with mean ``mu`` is smaller in convex order than a
    Bernoulli(``mu``) variable, and so is a sum of ``n`` independent scores
    than ``S ~ Bin(n, mu)``. For every ``h < t`` the increasing convex function
    ``(x - h)_+`` and Markov's inequality then give
    ``P(sum >= t) <= E(S - h)_+ / (t - h)``. The p-value is the smallest of these
    ratios; the bound is the largest ``m`` whose p-value at ``t = n mean`` is
    still ``<= alpha``. It is valid for any scores in [0, 1], needs only their
    sum, is never below :func:`kl_lower_bound` (whose p-value is the best
    exponential function's, and an exponential is a mixture of the ``(x - h)_+``)
    and equals Clopper-Pearson's ``alpha^(1/n)`` when all scores are 1. Its
    p-value is within a factor of about ``e`` of the binomial tail, where the
    relative-entropy bound's is within a factor of about ``sqrt(n)``.

    Computed by a safeguarded Newton iteration started from the
    relative-entropy bound; every accepted iterate is a point whose p-value is
    ``<= alpha``, so the result is never above the exact root.

    Parameters
    ----------
    mean, n, alpha
        As in :func:`kl_lower_bound`, with ``n`` an integer.

    Returns
    -------
    lower : ndarray of float64
        Never below ``kl_lower_bound(mean, n, alpha)``.

    Examples
    --------
    >>> from smoothcert._certify._stats import (
    ...     bentkus_lower_bound, clopper_pearson_lower, kl_lower_bound)
    >>> kl = float(kl_lower_bound(0.9, 100_000, 0.001))
    >>> bk = float(bentkus_lower_bound(0.9, 100_000, 0.001))
    >>> cp = float(clopper_pearson_lower(90_000, 100_000, 0.001))
    >>> bool(kl < bk < cp)
    True
    >>> round(bk, 5)
    0.89677
    """
    alpha = _check_alpha(alpha)
    mean, n = _check_means(mean, n)
    if np.any(n != np.floor(n)):
        raise ValueError("The number of draws n must be an integer.")
    lower = kl_lower_bound(mean, n, alpha)
    mean, n, log_alpha = np.broadcast_arrays(mean, n, np.log(alpha))
    lower = np.array(lower, dtype=np.float64, copy=True).reshape(mean.shape)
    todo = np.flatnonzero(((mean > 0.0) & (mean < 1.0)).ravel())
    if todo.size == 0:
        return lower
    flat = lower.reshape(-1)
    mu, nn, la = mean.ravel()[todo], n.ravel()[todo], log_alpha.ravel()[todo]
    t = nn * mu
    lo, hi = flat[todo].copy(), mu.copy()
    log_p, slope = _bentkus_log_pvalue(t, nn, lo)
    phi = log_p - la
    newton = np.ones(todo.size, dtype=bool)
    active = np.arange(todo.size)
    for _ in range(_BENTKUS_STEPS):
        if active.size == 0:
            break
        a_lo, a_hi, a_phi, a_slope = lo[active], hi[active], phi[active], slope[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = a_lo - a_phi / a_slope
        use_newton = newton[active] & (a_phi <= 0) & (step > a_lo) & (step < a_hi)
        trial = np.where(use_newton, step, 0.5 * (a_lo + a_hi))
        t_log_p, t_slope = _bentkus_log_pvalue(t[active], nn[active], trial)
        t_phi = t_log_p - la[active]
        ok = t_phi <= 0.0
        lo[active] = np.where(ok, trial, a_lo)
        hi[active] = np.where(ok, a_hi, trial)
        phi[active] = np.where(ok, t_phi, a_phi)
        slope[active] = np.where(ok, t_slope, a_slope)
        newton[active] = ok
        done = (ok & (t_phi > -_BENTKUS_TOL)) | (hi[active] - lo[active] <= 4e-16 * hi[active])
        active = active[~done]
    flat[todo] = np.maximum(flat[todo], lo)
    return lower


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


def threshold_radius(p_lower, level):
    """Mahalanobis radius on which a smoothed probability stays at least ``level``.

    ``Phi^-1`` of a Gaussian-smoothed probability is 1-Lipschitz in the
    whitened metric, so a lower bound ``p_lower`` at ``x`` keeps the
    probability at least ``level`` on the ball of radius
    ``Phi^-1(p_lower) - Phi^-1(level)``; 0 where that is not positive
    (``level = 1/2`` gives :func:`mahalanobis_radius`).

    Parameters
    ----------
    p_lower : array-like of float
        Lower confidence bounds, in ``[0, 1]``.
    level : float or array-like of float
        Levels in ``(0, 1)``.

    Returns
    -------
    radius : ndarray of float64
        Finite and non-negative.
    """
    p_lower = np.asarray(p_lower, dtype=np.float64)
    level = np.asarray(level, dtype=np.float64)
    if np.any((p_lower < 0) | (p_lower > 1)) or np.any(np.isnan(p_lower)):
        raise ValueError("p_lower must lie in [0, 1].")
    if np.any((level <= 0) | (level >= 1)) or np.any(np.isnan(level)):
        raise ValueError("level must lie in (0, 1).")
    tiny = np.finfo(np.float64).eps
    r = stats.norm.ppf(np.clip(p_lower, tiny, 1.0 - tiny)) - stats.norm.ppf(level)
    return np.where(p_lower > level, np.maximum(r, 0.0), 0.0)


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
    if p_upper_second is None:
        return threshold_radius(p_lower, 0.5)
    tiny = np.finfo(np.float64).eps
    p = np.clip(p_lower, tiny, 1.0 - tiny)
    q = np.clip(np.asarray(p_upper_second, dtype=np.float64), tiny, 1.0 - tiny)
    r = 0.5 * (stats.norm.ppf(p) - stats.norm.ppf(q))
    return np.where(p_lower > 0.5, np.maximum(r, 0.0), 0.0)


def target_probability(radius, min_eigenvalue):
    """Probability a row must certify for its region to contain ``B2(x, radius)``.

    ``p* = Phi(radius / sqrt(lambda_min(Sigma)))``, kept strictly inside
    ``(1/2, 1)``: a radius of 0 asks for ``p_lower > 1/2`` (a certificate at
    all), an unreachable one for a probability no finite number of draws can
    certify.

    Parameters
    ----------
    radius : float
        l2 radius, finite and non-negative.
    min_eigenvalue : array-like of shape (n,)
        Smallest eigenvalue of each row's covariance (in the space where
        ``radius`` is measured).

    Returns
    -------
    target : ndarray of shape (n,)

    Examples
    --------
    >>> from smoothcert._certify._stats import target_probability
    >>> target_probability(0.25, [0.0625]).round(4)
    array([0.8413])
    """
    scale = np.sqrt(np.asarray(min_eigenvalue, dtype=np.float64))
    target = stats.norm.cdf(float(radius) / scale)
    return np.clip(target, np.nextafter(0.5, 1.0), np.nextafter(1.0, 0.0))


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
