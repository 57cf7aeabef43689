"""Fixed-n soft-vote bounds built on the betting confidence sequence.

:func:`combined_soft_lower_bound` is the bound of soft-vote CERTIFY: the larger
of Bentkus' bound (nearly exact on one-hot scores) and the betting bound (which
rewards a small variance), ``alpha`` split between them.
"""

import numpy as np

from ._betting import DEFAULT_PRIOR, SCORE_UNIT, BettingConfidenceSequence, _check_scores, score_sums
from ._looks import _check_int, _check_looks, geometric_looks
from ._stats import _check_alpha, bentkus_lower_bound

__all__ = ["betting_confidence_sequence", "betting_lower_bound", "combined_soft_lower_bound"]

#: Share of ``alpha`` given to the betting bound in :func:`combined_soft_lower_bound`.
BETTING_SHARE = 0.2


def _score_rows(scores):
    """``scores`` as an array of rows of draws, with at least one draw."""
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError("scores must be a 2-D array (rows, draws) with at least one draw.")
    return scores


def _blocks(scores, block_size):
    """The draws (columns) of ``scores``, ``block_size`` at a time, in order."""
    block_size = _check_int(block_size, "block_size")
    starts = range(0, scores.shape[1], block_size)
    return (scores[:, start : start + block_size] for start in starts)


def betting_confidence_sequence(scores, alpha, looks, *, prior=DEFAULT_PRIOR, horizon=None):
    """Lower confidence sequence of the mean of each row's scores at each look.

    Parameters
    ----------
    scores : array-like of float, shape (r, n)
        Scores in [0, 1], in draw order; ``n`` must be at least the last look.
    alpha : float
        Failure probability, in (0, 1): with probability at least ``1 - alpha``
        every value of a row is below that row's true mean.
    looks : array-like of int
        Increasing draw counts.
    prior : (float, float), default=(1.0, 0.05)
        See :class:`BettingConfidenceSequence`.
    horizon : int, optional
        Tune the bets for this number of draws (see :class:`BettingConfidenceSequence`).

    Returns
    -------
    lower : ndarray of float64, shape (r, len(looks))
        Non-decreasing along each row.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._certify._soft_bounds import betting_confidence_sequence
    >>> lower = betting_confidence_sequence(np.ones((1, 400)), 0.01, [50, 100, 200, 400])
    >>> bool(np.all(np.diff(lower) > 0))
    True
    """
    scores = _check_scores(scores)
    looks = _check_looks(looks)
    if scores.shape[1] < looks[-1]:
        raise ValueError("scores has fewer draws than the last look.")
    cs = BettingConfidenceSequence(scores.shape[0], looks, alpha, prior=prior, horizon=horizon)
    rows = np.arange(scores.shape[0])
    out = np.empty((scores.shape[0], looks.size))
    start = 0
    for k, look in enumerate(looks):
        cs.update(rows, scores[:, start:look])
        out[:, k] = cs.lower_bound()
        start = look
    return out


def betting_lower_bound(
    scores, alpha, *, first_look=1, ratio=2.0, prior=DEFAULT_PRIOR, block_size=8192
):
    """Fixed-n betting lower bound for the mean of each row's [0, 1] scores.

    The bets are tuned for a bound after all ``n`` scores (``horizon=n``) and
    updated at the looks ``first_look * ratio^k``; the bound holds with
    probability ``1 - alpha`` (it is in fact valid at every look, by Ville's
    inequality, and the largest is returned). It depends on the order of the
    scores.

    Parameters
    ----------
    scores : array-like of float, shape (r, n)
        Scores in [0, 1], in draw order.
    alpha : float
        Failure probability, in (0, 1).
    first_look : int, default=1
        First update of the bets.
    ratio : float, default=2
        Growth factor of the epochs.
    prior : (float, float), default=(1.0, 0.05)
        See :class:`BettingConfidenceSequence`.
    block_size : int, default=8192
        Draws converted at a time (memory only; the result does not depend on it).

    Returns
    -------
    lower : ndarray of float64, shape (r,)

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._certify._soft_bounds import betting_lower_bound
    >>> rng = np.random.default_rng(0)
    >>> scores = rng.beta(90, 10, size=(1, 20_000))
    >>> bool(0.895 < float(betting_lower_bound(scores, 0.001)[0]) < scores.mean())
    True
    """
    scores = _score_rows(scores)
    n = scores.shape[1]
    looks = geometric_looks(first_look, n, ratio)
    cs = BettingConfidenceSequence(scores.shape[0], looks, alpha, prior=prior, horizon=n)
    rows = np.arange(scores.shape[0])
    for block in _blocks(scores, block_size):
        cs.update(rows, block)
    return cs.lower_bound()


def combined_soft_lower_bound(scores, alpha, *, betting_share=0.2, block_size=8192):
    """Fixed-n soft-vote bound: the larger of Bentkus' and the betting bound.

    Bentkus' bound (:func:`~smoothcert._certify._stats.bentkus_lower_bound`) at
    level ``(1 - betting_share) alpha`` is nearly exact on one-hot scores but
    ignores their variance; the betting bound (:func:`betting_lower_bound`) at
    level ``betting_share alpha`` rewards a small variance. By a union bound the
    larger holds with probability ``1 - alpha``. On one-hot scores at
    ``N = 100,000`` and ``alpha = 0.001`` its radius is within 0.6 % of the
    hard-vote Clopper-Pearson radius; on Beta-distributed scores it is at least
    the Hoeffding / empirical-Bernstein union's.

    Parameters
    ----------
    scores, alpha
        As in :func:`betting_lower_bound`.
    betting_share : float, default=0.2
        Fraction of ``alpha`` given to the betting bound, in (0, 1).
    block_size : int, default=8192
        Draws converted at a time (memory only).

    Returns
    -------
    lower : ndarray of float64, shape (r,)
        Never below Bentkus' bound at level ``(1 - betting_share) alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._certify._soft_bounds import combined_soft_lower_bound
    >>> from smoothcert._certify._stats import clopper_pearson_lower
    >>> votes = np.ones((1, 10_000)); votes[0, :30] = 0.0
    >>> votes = np.random.default_rng(0).permuted(votes, axis=1)  # i.i.d. order
    >>> soft = float(combined_soft_lower_bound(votes, 0.001)[0])
    >>> hard = float(clopper_pearson_lower(9_970, 10_000, 0.001))
    >>> bool(hard - 0.0005 < soft < hard)
    True
    """
    alpha = float(_check_alpha(alpha))
    betting_share = float(betting_share)
    if not (0.0 < betting_share < 1.0):
        raise ValueError(
            f"betting_share must lie in the open interval (0, 1), got {betting_share!r}."
        )
    scores = _score_rows(scores)
    n = scores.shape[1]
    s1 = np.zeros(scores.shape[0], dtype=np.int64)
    for block in _blocks(scores, block_size):
        s1 += score_sums(block)[0]
    mean = np.clip(s1 / SCORE_UNIT / n, 0.0, 1.0)
    bentkus = bentkus_lower_bound(mean, n, (1.0 - betting_share) * alpha)
    betting = betting_lower_bound(scores, betting_share * alpha, block_size=block_size)
    return np.maximum(bentkus, betting)
