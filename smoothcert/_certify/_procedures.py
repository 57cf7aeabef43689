"""Cohen et al.'s CERTIFY and PREDICT procedures, for any per-row covariances.

These functions orchestrate the sampling engine and the statistics module; both
estimators call them, so the statistical rules (design page, *Statistical rules*) are
implemented exactly once.
"""

import numpy as np

from .._engine._loop import sample
from .._engine._reducers import ScoreSums, VoteCounts
from .._engine._streams import STAGE_ESTIMATION, STAGE_PREDICTION, STAGE_SELECTION
from ._stats import (
    binomial_test_pvalue,
    clopper_pearson_lower,
    hoeffding_lower,
    mahalanobis_radius,
    soft_lower_bound,
)

__all__ = ["certify_rows", "predict_rows", "smoothed_frequencies"]


def _top(counts):
    return np.argmax(counts, axis=1)


def count_votes(adapter, X, covariances, n_draws, *, seed, stage, vote="hard",
                batch_size=10_000, n_jobs=None, verbose=False):
    """Hard vote counts (int64) or soft score sums and squared sums, ``(n, n_classes)``.

    Returns ``(counts, None)`` for hard votes and ``(sums, sq_sums)`` for soft ones.
    """
    reducer = (VoteCounts if vote == "hard" else ScoreSums)(adapter.n_classes)
    out = sample(
        adapter, X, covariances, n_draws, reducer, seed=seed, stage=stage,
        batch_size=batch_size, n_jobs=n_jobs, verbose=verbose,
    )
    return (out[0], None) if vote == "hard" else out


def certify_rows(
    adapter,
    X,
    covariances,
    *,
    n_samples,
    n_samples_selection,
    alpha,
    vote,
    seed,
    batch_size,
    n_jobs=None,
    verbose=False,
):
    """CERTIFY (Cohen et al., 2019) at every row, with that row's covariance.

    1. ``n_samples_selection`` draws (selection stage) choose the top class ``A``.
    2. ``n_samples`` fresh draws (estimation stage) bound ``P(f(x + e) = A)``
       from below: one-sided Clopper-Pearson for hard votes, Hoeffding /
       empirical Bernstein for the mean soft score of ``A``.
    3. Abstain when the bound is ``<= 1/2``; else the Mahalanobis radius is
       ``Phi^-1(p_lower)``.

    Returns
    -------
    top : ndarray of int, shape (n,)
        Index of the selected class.
    p_lower : ndarray of shape (n,)
    abstained : ndarray of bool, shape (n,)
    radius : ndarray of shape (n,)
        Mahalanobis radius, 0 when abstaining.
    """
    common = dict(vote=vote, batch_size=batch_size, n_jobs=n_jobs)
    selection, _ = count_votes(
        adapter, X, covariances, n_samples_selection, seed=seed, stage=STAGE_SELECTION, **common
    )
    top = _top(selection)
    rows = np.arange(X.shape[0])
    sums, sq_sums = count_votes(
        adapter,
        X,
        covariances,
        n_samples,
        seed=seed,
        stage=STAGE_ESTIMATION,
        verbose=verbose,
        **common,
    )
    if vote == "hard":
        p_lower = clopper_pearson_lower(sums[rows, top], n_samples, alpha)
    else:
        mean = sums[rows, top] / n_samples
        var = (sq_sums[rows, top] - n_samples * mean**2) / (n_samples - 1)
        p_lower = soft_lower_bound(mean, var, n_samples, alpha)
    abstained = p_lower <= 0.5
    return top, p_lower, abstained, mahalanobis_radius(p_lower)


def smoothed_frequencies(adapter, X, covariances, *, n_samples, vote, seed, batch_size, n_jobs=None):
    """Monte-Carlo estimate of the smoothed class probabilities, ``(n, n_classes)``."""
    sums, _ = count_votes(
        adapter,
        X,
        covariances,
        n_samples,
        seed=seed,
        stage=STAGE_PREDICTION,
        vote=vote,
        batch_size=batch_size,
        n_jobs=n_jobs,
    )
    return sums / float(n_samples)


def predict_rows(adapter, X, covariances, *, n_samples, alpha, vote, seed, batch_size, n_jobs=None):
    """PREDICT with abstention (Cohen et al., 2019).

    Hard votes: return the top class when the two-sided binomial test of the top
    two counts rejects equality at level ``alpha``, else abstain. Soft votes:
    return the top class when the Hoeffding lower bound of
    ``(F_A - F_B + 1) / 2`` exceeds 1/2 for the runner-up ``B`` at level
    ``alpha / (C (C - 1))`` (a union bound over ordered pairs, which keeps the
    test valid although ``A`` and ``B`` are chosen on the same draws).

    Returns
    -------
    top : ndarray of int, shape (n,)
    abstained : ndarray of bool, shape (n,)
    """
    freq = smoothed_frequencies(
        adapter,
        X,
        covariances,
        n_samples=n_samples,
        vote=vote,
        seed=seed,
        batch_size=batch_size,
        n_jobs=n_jobs,
    )
    order = np.argsort(-freq, axis=1, kind="stable")
    rows = np.arange(X.shape[0])
    top = order[:, 0]
    if freq.shape[1] < 2:
        return top, np.zeros(X.shape[0], dtype=bool)
    second = order[:, 1]
    if vote == "hard":
        k_top = np.rint(freq[rows, top] * n_samples)
        k_second = np.rint(freq[rows, second] * n_samples)
        abstained = binomial_test_pvalue(k_top, k_second) > alpha
    else:
        n_classes = freq.shape[1]
        level = alpha / (n_classes * (n_classes - 1))
        shifted = 0.5 * (freq[rows, top] - freq[rows, second] + 1.0)
        abstained = hoeffding_lower(shifted, n_samples, level) <= 0.5
    return top, abstained
