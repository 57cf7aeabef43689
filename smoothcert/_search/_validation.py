"""The end-of-stage check of the covariance search, and its tempering guard.

Keep-best steps compare two noisy estimates on the same draws and keep the
better one; over many steps this selection favours lucky draws and lets the
true objective drift down. So a stage ends with a check on independent
*validation* draws (stage tags after the stage's own iterations): a row keeps
the stage's end only where it beats the stage's start by ``VALIDATION_Z``
standard errors of the search's own objective.

Tempered draws (``x + tau L z``) read the margin of ``Sigma`` from the
classifier at ``tau^2 Sigma``, which is exact only for a boundary that is
flat at that scale. The check therefore also scores the rows searched on
tempered draws *untempered*, on the same draws, and distrusts a row where

* the end is significantly worse than the start untempered (the guard), or
* the tempered margin at the end contradicts the untempered one
  (:func:`inconsistent_margins`): a forest's staircase, a curved boundary, a
  model evaluated far from its data.

A distrusted row is sent back to the stage's start and searched again
untempered, with the blended step (:mod:`._ascent`).
"""

import numpy as np
from scipy import stats

__all__ = ["validated", "inconsistent_margins", "validation_batches", "VALIDATION_FACTOR",
           "VALIDATION_Z", "CONSISTENCY_RATIO"]

#: Most validation batches (of ``n_samples_optim`` draws) at the end of a stage.
VALIDATION_FACTOR = 4
#: Standard errors by which a stage's end must beat its start on validation draws.
VALIDATION_Z = 2.0
#: Tempered and untempered margins further apart than this ratio contradict each other.
CONSISTENCY_RATIO = 0.8


def validation_batches(n_iter):
    """Validation batches of a stage: grows with the number of steps (the drift
    it guards against), at most ``VALIDATION_FACTOR``."""
    return int(min(VALIDATION_FACTOR, max(1, n_iter // 5)))


def validated(sampler, start, end, rows, tags, settings, tau):
    """Rows where ``end`` beats ``start`` on independent validation draws, and rows to distrust.

    Each tag is a batch of ``n_samples_optim`` fresh draws shared by both points
    (common random numbers). With one batch the end point must simply score
    higher; with ``k >= 2`` batches the mean improvement must exceed
    ``VALIDATION_Z`` standard errors (estimated from the spread between
    batches). Tempered rows are also scored untempered (see the module
    docstring).

    Parameters
    ----------
    sampler : the search's sampler (``scores(covs, tag, rows)``)
    start, end : RowCovariances
        The stage's start and end for ``rows``.
    rows : ndarray of int
        Positions of these rows in the sampler's block.
    tags : list of int
        Stage tags of the validation batches.
    settings : SearchSettings
    tau : ndarray of shape (len(rows),)

    Returns
    -------
    keep, distrust : ndarray of bool, shape (len(rows),)
        ``keep`` excludes the distrusted rows.
    """
    tau2 = tau**2
    tempered = np.flatnonzero(tau > 1.0)
    ones = np.ones(tempered.size)
    diffs, plain, end_t, end_1 = [], [], [], []
    for tag in tags:
        psi_s = sampler.scores(start.rescaled(tau2), tag, rows)
        psi_e = sampler.scores(end.rescaled(tau2), tag, rows)
        diffs.append(settings.value(psi_e, end, tau) - settings.value(psi_s, start, tau))
        if tempered.size:
            sub_s, sub_e = start.take(tempered), end.take(tempered)
            psi_s1 = sampler.scores(sub_s, tag, rows[tempered])
            psi_e1 = sampler.scores(sub_e, tag, rows[tempered])
            end_t.append(psi_e[tempered])
            end_1.append(psi_e1)
            plain.append(settings.value(psi_e1, sub_e, ones) - settings.value(psi_s1, sub_s, ones))
    diffs = np.array(diffs)
    mean = diffs.mean(axis=0)
    distrust = np.zeros(len(rows), dtype=bool)
    if len(tags) == 1:
        keep = mean > 0
        if tempered.size:
            distrust[tempered] = plain[0] < 0
    else:
        keep = mean > VALIDATION_Z * diffs.std(axis=0, ddof=1) / np.sqrt(len(tags))
        if tempered.size:
            plain = np.array(plain)
            se = plain.std(axis=0, ddof=1) / np.sqrt(len(tags))
            distrust[tempered] = plain.mean(axis=0) < -VALIDATION_Z * se
    if tempered.size:
        distrust[tempered] |= inconsistent_margins(
            np.mean(end_1, axis=0), np.mean(end_t, axis=0), tau[tempered], settings.n_draws * len(tags)
        )
    return keep & ~distrust, distrust


def inconsistent_margins(psi_1, psi_t, tau, n_draws):
    """Rows whose tempered margin contradicts the untempered one, on the same draws.

    The margins of the top class ``A`` (of the untempered scores):
    ``m_1 = Phi^-1(psi_1[A])`` and ``m_t = tau Phi^-1(psi_t[A])``, equal in
    expectation for a flat boundary. ``m_1`` is only a lower bound when
    (almost) every draw agrees, so a tempered margin below
    ``CONSISTENCY_RATIO * m_1`` contradicts it always, one above
    ``m_1 / CONSISTENCY_RATIO`` only when ``m_1`` is resolved (at least 8
    failing draws).

    Parameters
    ----------
    psi_1, psi_t : ndarray of shape (n, n_classes)
        Untempered and tempered mean scores.
    tau : ndarray of shape (n,)
    n_draws : int
        Draws behind each mean.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    top = np.argmax(psi_1, axis=1)
    pick = np.arange(len(top))
    eps = 0.5 / n_draws
    p1 = psi_1[pick, top]
    m1 = stats.norm.ppf(np.clip(p1, eps, 1 - eps))
    mt = tau * stats.norm.ppf(np.clip(psi_t[pick, top], eps, 1 - eps))
    resolved = p1 < 1.0 - 8.0 / n_draws
    low = (m1 > 0) & (mt < CONSISTENCY_RATIO * m1)
    high = resolved & (m1 > 0) & (mt > m1 / CONSISTENCY_RATIO)
    return low | high
