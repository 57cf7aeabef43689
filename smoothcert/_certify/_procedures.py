"""Cohen et al.'s CERTIFY and PREDICT procedures, for any per-row covariances.

These functions orchestrate the sampling engine and the statistics module; both
estimators call them, so the statistical rules (design page, *Statistical rules*) are
implemented exactly once.
"""

import numpy as np

from .._engine._loop import sample
from .._engine._reducers import ScoreSums, VoteCounts
from .._engine._streams import STAGE_ESTIMATION, STAGE_PREDICTION, STAGE_SELECTION
from ._reducers import SequentialCertify, SequentialPredict, SoftCertifyBound
from ._stats import (
    binomial_test_pvalue,
    clopper_pearson_lower,
    hoeffding_lower,
    mahalanobis_radius,
)

__all__ = ["certify_rows", "count_votes", "predict_rows", "smoothed_frequencies"]

#: Level of the futility rule of certification at a target radius: a row stops
#: (abstaining) once, even with its success probability at this upper
#: confidence bound, the full budget could not certify it. Futility makes no
#: claim, so it costs no validity; it trades the power lost on inputs right at
#: the threshold for draws (measured in bench_sequential.py: about 1 % of the
#: inputs that the fixed test certifies, for 40x to 400x fewer calls).
FUTILITY_ALPHA = 0.1

#: Share of ``alpha`` given to the betting bound of soft-vote CERTIFY (the rest
#: goes to Bentkus' bound); measured on the benchmarks of sequential.rst.
SOFT_BETTING_SHARE = 0.2


def _top(counts):
    return np.argmax(counts, axis=1)


def count_votes(adapter, X, covariances, n_draws, *, seed, stage, vote="hard",
                batch_size=10_000, progress=None):
    """Hard vote counts (int64) or soft score sums and squared sums, ``(n, n_classes)``.

    Returns ``(counts, None)`` for hard votes and ``(sums, sq_sums)`` for soft ones.
    """
    reducer = (VoteCounts if vote == "hard" else ScoreSums)(adapter.n_classes)
    out = sample(
        adapter, X, covariances, n_draws, reducer, seed=seed, stage=stage,
        batch_size=batch_size, progress=progress,
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
    progress=None,
    target_p=None,
    radius_tol=None,
):
    """CERTIFY (Cohen et al., 2019) at every row, with that row's covariance.

    1. ``n_samples_selection`` draws (selection stage) choose the top class ``A``.
    2. Fresh draws (estimation stage) bound ``P(f(x + e) = A)`` from below:
       one-sided Clopper-Pearson for hard votes; for the mean soft score of
       ``A``, the larger of Bentkus' bound and a betting bound (``alpha``
       split between them, :data:`SOFT_BETTING_SHARE` to the betting bound).
    3. Abstain when the bound is ``<= 1/2``; else the Mahalanobis radius is
       ``Phi^-1(p_lower)``.

    With ``target_p`` (one probability per row: the ball of a target radius
    lies in the region exactly when ``p_lower >= target_p``) the estimation
    draws arrive in doubling blocks and each row stops as soon as it is
    certified at its target or the target is out of reach; rows not certified
    at their target abstain. With ``radius_tol`` a row stops once its radius is
    within that relative tolerance of what its full budget could give. Both
    pay for their repeated looks by spending ``alpha`` over them
    (:class:`~smoothcert._certify._sequential.SequentialCertifier`); at most
    ``n_samples`` draws are used per row.

    Returns
    -------
    top : ndarray of int, shape (n,)
        Index of the selected class.
    p_lower : ndarray of shape (n,)
    abstained : ndarray of bool, shape (n,)
    radius : ndarray of shape (n,)
        Mahalanobis radius, 0 when abstaining.
    n_draws : ndarray of int64, shape (n,)
        Estimation draws behind ``p_lower``.
    """
    common = dict(batch_size=batch_size, progress=progress)
    selection, _ = count_votes(
        adapter, X, covariances, n_samples_selection, seed=seed, stage=STAGE_SELECTION,
        vote=vote, **common,
    )
    top = _top(selection)
    n_classes = adapter.n_classes
    estimation = dict(seed=seed, stage=STAGE_ESTIMATION, **common)
    if target_p is None and radius_tol is None:
        if vote == "hard":
            counts, _ = count_votes(adapter, X, covariances, n_samples, vote="hard", **estimation)
            p_lower = clopper_pearson_lower(counts[np.arange(X.shape[0]), top], n_samples, alpha)
        else:
            reducer = SoftCertifyBound(n_classes, top, n_samples, alpha, SOFT_BETTING_SHARE)
            (p_lower,) = sample(adapter, X, covariances, n_samples, reducer, **estimation)
        n_draws = np.full(X.shape[0], n_samples, dtype=np.int64)
        abstained = p_lower <= 0.5
        return top, p_lower, abstained, mahalanobis_radius(p_lower), n_draws
    reducer = SequentialCertify(
        n_classes, top, vote, target_p=target_p, budget=n_samples, alpha=alpha,
        radius_tol=radius_tol, futility_alpha=FUTILITY_ALPHA if target_p is not None else None,
    )
    p_lower, n_draws, certified = sample(adapter, X, covariances, n_samples, reducer, **estimation)
    if target_p is not None:
        abstained = ~certified
        radius = np.where(certified, mahalanobis_radius(p_lower), 0.0)
    else:
        abstained = p_lower <= 0.5
        radius = mahalanobis_radius(p_lower)
    return top, p_lower, abstained, radius, n_draws


def smoothed_frequencies(
    adapter, X, covariances, *, n_samples, vote, seed, batch_size, progress=None
):
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
        progress=progress,
    )
    return sums / float(n_samples)


def predict_rows(
    adapter, X, covariances, *, n_samples, alpha, vote, seed, batch_size,
    sampling="fixed", progress=None,
):
    """PREDICT with abstention (Cohen et al., 2019).

    Hard votes: return the top class when the two-sided binomial test of the top
    two counts rejects equality at level ``alpha``, else abstain. Soft votes:
    return the top class when the Hoeffding lower bound of
    ``(F_A - F_B + 1) / 2`` exceeds 1/2 for the runner-up ``B`` at level
    ``alpha / (C (C - 1))`` (a union bound over ordered pairs, which keeps the
    test valid although ``A`` and ``B`` are chosen on the same draws).

    With ``sampling="sequential"`` the test is made at doubling looks with
    ``alpha`` spent over them, and each row stops as soon as it is decided
    (:class:`~smoothcert._certify._sequential_predict.SequentialPredictor`).

    Returns
    -------
    top : ndarray of int, shape (n,)
    abstained : ndarray of bool, shape (n,)
    n_draws : ndarray of int64, shape (n,)
        Draws each row used.
    """
    if sampling == "sequential" and adapter.n_classes >= 2:
        reducer = SequentialPredict(adapter.n_classes, vote, budget=n_samples, alpha=alpha)
        top, abstained, n_draws = sample(
            adapter, X, covariances, n_samples, reducer, seed=seed, stage=STAGE_PREDICTION,
            batch_size=batch_size, progress=progress,
        )
        return top, abstained, n_draws
    freq = smoothed_frequencies(
        adapter,
        X,
        covariances,
        n_samples=n_samples,
        vote=vote,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    order = np.argsort(-freq, axis=1, kind="stable")
    rows = np.arange(X.shape[0])
    top = order[:, 0]
    n_draws = np.full(X.shape[0], n_samples, dtype=np.int64)
    if freq.shape[1] < 2:
        return top, np.zeros(X.shape[0], dtype=bool), n_draws
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
    return top, abstained, n_draws
