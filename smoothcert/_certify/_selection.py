"""Certificates of a smoothed covariance selector and of the members it may select.

``CertifiedRegion(guarantee="deployed")`` smooths each input with one member
of an ordered family of covariances ``Sigma_0, ..., Sigma_{K-1}`` (ordered by
smallest eigenvalue). The member is chosen by a selector ``h`` (a classifier
from inputs to member indices) smoothed with isotropic noise ``N(0, s^2 I)``:
the deployed member at ``x'`` is the *median* of the distribution of
``h(x' + e)`` or, more generally, its lower ``tau``-quantile: the smallest
``k`` with ``P(h <= k) >= tau``. ``tau < 1/2`` favours the smallest members
(the least noise), which are switched away from only where the selector is
confident.

The quantile moves little: ``P(h <= b)`` is the smoothed probability of a
binary classifier, and ``Phi^-1`` of a smoothed probability is
``1/s``-Lipschitz (Cohen et al., 2019; Salman et al., 2019). A lower bound
``p_lower`` of ``P(h <= b)`` at ``x`` thus keeps ``P(h <= b) >= tau`` (the
member is at most ``b``) on the ball of radius
``s (Phi^-1(p_lower) - Phi^-1(tau))``, and a lower bound of ``P(h > b)``
keeps the member above ``b`` on the ball of radius
``s (Phi^-1(p_lower) - Phi^-1(1 - tau))``. On such balls the deployed member
stays in an interval ``[a, b]``; if every member of the interval certifies
the same class on its ellipsoid, the deployed classifier predicts that class
on the intersection.
Every claim (``K - 1`` thresholds, ``K`` members) holds simultaneously except
with probability at most the sum of their levels, so the interval may be
chosen after all of them are computed.
"""

import numpy as np

from ._stats import binomial_test_pvalue, clopper_pearson_lower, clopper_pearson_upper, threshold_radius

__all__ = ["best_interval", "selected_member", "selection_undecided", "threshold_certificates"]


def selected_member(freq, tau=0.5):
    """Lower ``tau``-quantile of the selector's member distribution, per row.

    Parameters
    ----------
    freq : ndarray of shape (n, K)
        Member frequencies (or counts) of the smoothed selector.
    tau : float in (0, 1), default=0.5
        ``1/2``: the lower median.

    Returns
    -------
    member : ndarray of int, shape (n,)
        Smallest ``k`` with ``P(h <= k) >= tau``.
    """
    freq = np.asarray(freq, dtype=np.float64)
    cumulative = np.cumsum(freq, axis=1)
    total = cumulative[:, -1:]
    return np.argmax(cumulative >= tau * total, axis=1)


def selection_undecided(counts, member, alpha, tau=0.5):
    """Whether ``member`` is not significantly the ``tau``-quantile.

    At ``tau = 1/2`` (the median) it is decided when both ``P(h <= k) > 1/2``
    and ``P(h >= k) > 1/2`` are significant for the two-sided binomial test at
    level ``alpha`` (the test of :func:`binomial_test_pvalue`, event against
    its complement); otherwise when the Clopper-Pearson bounds at level
    ``alpha / 2`` each give ``P(h <= k) >= tau`` and ``P(h <= k - 1) < tau``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    rows = np.arange(counts.shape[0])
    total = counts.sum(axis=1)
    at_most = np.cumsum(counts, axis=1)[rows, member]
    below = at_most - counts[rows, member]
    undecided = np.zeros(counts.shape[0], dtype=bool)
    if tau == 0.5:
        for k in (at_most, total - below):
            undecided |= (2 * k <= total) | (binomial_test_pvalue(k, total - k) > alpha)
        return undecided
    undecided |= clopper_pearson_lower(at_most, total, alpha / 2) < tau
    undecided |= (member > 0) & (clopper_pearson_upper(below, total, alpha / 2) >= tau)
    return undecided


def threshold_certificates(selection_counts, counts, alpha, tau=0.5):
    """Certified sides of the ``K - 1`` thresholds of the selector's ``tau``-quantile.

    For each threshold ``b = 0 .. K - 2``, the selection counts choose the
    side (``member <= b`` when ``P(h <= b) >= tau`` on them, else
    ``member >= b + 1``); the estimation counts bound the probability of that
    side's event from below (one-sided Clopper-Pearson at level
    ``alpha / (K - 1)``), and the side holds on the ball of Mahalanobis radius
    ``Phi^-1(p_lower) - Phi^-1(tau)`` (``member <= b``) or
    ``Phi^-1(p_lower) - Phi^-1(1 - tau)`` (``member > b``).

    Parameters
    ----------
    selection_counts, counts : ndarray of shape (n, K)
        Selector vote counts on the selection and (independent) estimation
        draws.
    alpha : float
        Total level of the ``K - 1`` claims.
    tau : float in (0, 1), default=0.5
        The quantile of :func:`selected_member`.

    Returns
    -------
    at_most : ndarray of bool, shape (n, K - 1)
        True where the side of threshold ``b`` is ``member <= b``.
    radius : ndarray of shape (n, K - 1)
        Mahalanobis radius (in units of the selector's noise scale) of the
        ball on which that side holds; 0 where not certified.
    """
    selection_counts = np.asarray(selection_counts, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    n, k = counts.shape
    n_draws = int(counts[0].sum()) if n else 0
    below_sel = np.cumsum(selection_counts, axis=1)[:, :-1]
    at_most = below_sel >= tau * selection_counts.sum(axis=1, keepdims=True)
    below = np.cumsum(counts, axis=1)[:, :-1]
    success = np.where(at_most, below, n_draws - below)
    level = alpha / max(k - 1, 1)
    p_lower = clopper_pearson_lower(success, n_draws, level) if n_draws else np.zeros_like(success, float)
    return at_most, threshold_radius(p_lower, np.where(at_most, tau, 1.0 - tau))


def best_interval(at_most, selection_radius, member_class, member_radius, inner_scale):
    """The interval of members, and its region, that certifies the largest l2 ball.

    Parameters
    ----------
    at_most : ndarray of bool, shape (n, K - 1)
    selection_radius : ndarray of shape (n, K - 1)
        l2 radius of each threshold's certified side (0 where not certified).
    member_class : ndarray of int, shape (n, K)
        Class certified by each member (-1 where it abstains).
    member_radius : ndarray of shape (n, K)
        l2 radius of each member's certified ellipsoid (0 where abstaining).
    inner_scale : callable
        ``inner_scale(rows, a, b)`` returns, for the rows given, the member
        ``k*`` of ``[a, b]`` and the factor ``t <= 1`` such that ``t`` times
        the ellipsoid of ``k*`` lies inside every member's ellipsoid of
        ``[a, b]``, and the l2 radius of that scaled ellipsoid.

    Returns
    -------
    member : ndarray of int, shape (n,)
        ``k*`` of the chosen interval (-1 where nothing is certified).
    scale : ndarray of shape (n,)
        Its factor ``t``.
    selection : ndarray of shape (n,)
        l2 radius on which the selection stays in the interval (``inf`` for
        the whole family).
    radius : ndarray of shape (n,)
        l2 radius of the certified region (0 where nothing is certified).
    """
    n, K = member_class.shape
    best = np.zeros(n)
    member = np.full(n, -1, dtype=np.intp)
    scale = np.ones(n)
    selection = np.zeros(n)
    for a in range(K):
        low = np.full(n, np.inf) if a == 0 else np.where(~at_most[:, a - 1], selection_radius[:, a - 1], 0.0)
        for b in range(a, K):
            high = np.full(n, np.inf) if b == K - 1 else np.where(at_most[:, b], selection_radius[:, b], 0.0)
            sel = np.minimum(low, high)
            classes = member_class[:, a:b + 1]
            same = (classes[:, 0] >= 0) & np.all(classes == classes[:, :1], axis=1)
            # an upper bound on the region's radius, to skip hopeless intervals
            bound = np.minimum(sel, member_radius[:, a:b + 1].min(axis=1))
            rows = np.flatnonzero(same & (bound > best))
            if rows.size == 0:
                continue
            k_star, t, r = inner_scale(rows, a, b)
            r = np.minimum(r, sel[rows])
            better = r > best[rows]
            rows, k_star, t, r = rows[better], k_star[better], t[better], r[better]
            best[rows] = r
            member[rows] = k_star
            scale[rows] = t
            selection[rows] = sel[rows]
    return member, scale, selection, best
