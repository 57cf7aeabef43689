"""CERTIFY's and PREDICT's reducers of the engine loop: bounds computed on the fly.

* :class:`SoftCertifyBound` -- soft-vote CERTIFY with a fixed number of draws:
  the top class's scores feed a betting confidence sequence and an exact sum,
  for :func:`~smoothcert._certify._soft_bounds.combined_soft_lower_bound`'s
  bound (Bentkus' bound or the betting bound, ``alpha`` split between them).
* :class:`SequentialCertify` -- early-stopping CERTIFY: one
  :class:`~smoothcert._certify._sequential.SequentialCertifier` per group of
  rows, fed the top class's votes; rows stop at its looks.
* :class:`SequentialPredict` -- PREDICT with early stopping
  (:class:`~smoothcert._certify._sequential_predict.SequentialPredictor`).

The looks are the same for every row, and blocks end exactly at them, so a row's
stopping time and result depend only on its own draws. Scores are accumulated as
exact integer sums, so results are bit-identical whatever the batch size.
"""

import numpy as np

from .._engine._reducers import Reducer
from ._betting import SCORE_UNIT, BettingConfidenceSequence, score_sums
from ._looks import geometric_looks
from ._sequential import SequentialCertifier
from ._sequential_predict import SequentialPredictor
from ._stats import bentkus_lower_bound

__all__ = ["SoftCertifyBound", "SequentialCertify", "SequentialPredict"]


def _top_scores(out, active, top, n_classes):
    """Per-draw scores of each row's top class, ``(r, m)``."""
    scores = out.reshape(active.size, -1, n_classes)
    return np.take_along_axis(scores, top[:, None, None], axis=2)[:, :, 0]


def _top_votes(out, active, top):
    """Per-row number of draws voting for the row's top class."""
    labels = out.reshape(active.size, -1)
    return (labels == top[:, None]).sum(axis=1)


class SoftCertifyBound(Reducer):
    """Lower bound of the top class's mean soft score after ``n_draws`` draws.

    The bound is the larger of Bentkus' bound at ``(1 - betting_share) alpha``
    and the betting bound (bets tuned for ``n_draws``, updated at doubling looks)
    at ``betting_share * alpha``; by a union bound it holds at level ``alpha``.

    Parameters
    ----------
    n_classes : int
    top : ndarray of int, shape (n,)
        Each row's top class (chosen on separate selection draws).
    n_draws : int
    alpha : float
    betting_share : float
    """

    output = "scores"

    def __init__(self, n_classes, top, n_draws, alpha, betting_share):
        self.n_classes = int(n_classes)
        self.top = np.asarray(top)
        self.n_draws = int(n_draws)
        self.alpha = float(alpha)
        self.betting_share = float(betting_share)
        self.looks = geometric_looks(1, self.n_draws)

    def begin(self, rows):
        sequence = BettingConfidenceSequence(
            len(rows), self.looks, self.betting_share * self.alpha, horizon=self.n_draws
        )
        return {"rows": rows, "cs": sequence, "s1": np.zeros(len(rows), dtype=np.int64)}

    def update(self, state, active, out, z, factor):
        scores = _top_scores(out, active, self.top[state["rows"][active]], self.n_classes)
        state["s1"][active] += score_sums(scores)[0]
        state["cs"].update(active, scores)

    def end(self, state):
        mean = np.clip(state["s1"] / SCORE_UNIT / self.n_draws, 0.0, 1.0)
        bentkus = bentkus_lower_bound(mean, self.n_draws, (1.0 - self.betting_share) * self.alpha)
        return (np.maximum(bentkus, state["cs"].lower_bound()),)

    def empty_shapes(self):
        return [()]


class SequentialCertify(Reducer):
    """Early-stopping CERTIFY of each row's top class.

    Parameters
    ----------
    n_classes : int
    top : ndarray of int, shape (n,)
        Each row's top class (chosen on separate selection draws).
    vote : {"hard", "soft"}
    target_p : ndarray of shape (n,) or None
        Per-row target probability (certify the ball of the target radius).
    **certifier
        Passed to :class:`~smoothcert._certify._sequential.SequentialCertifier`
        (``budget``, ``alpha``, ``radius_tol``, ...).

    Result: ``(p_lower, n_draws, certified)`` per row.
    """

    def __init__(self, n_classes, top, vote, target_p=None, **certifier):
        self.n_classes = int(n_classes)
        self.top = np.asarray(top)
        self.vote = vote
        self.output = "labels" if vote == "hard" else "scores"
        self.target_p = target_p
        self.certifier = certifier

    def begin(self, rows):
        target = None if self.target_p is None else self.target_p[rows]
        certifier = SequentialCertifier(
            len(rows), vote=self.vote, target_p=target, **self.certifier
        )
        return {"rows": rows, "certifier": certifier}

    def update(self, state, active, out, z, factor):
        top = self.top[state["rows"][active]]
        if self.vote == "hard":
            counts = _top_votes(out, active, top)
            state["certifier"].update(active, counts, out.size // active.size)
        else:
            state["certifier"].update(active, _top_scores(out, active, top, self.n_classes))

    def next_look(self, state, done):
        return int(state["certifier"].looks()[np.searchsorted(state["certifier"].looks(), done,
                                                               side="right")])

    def decide(self, state, active, done):
        stop = state["certifier"].decide(active, done)
        return active[~stop]

    def end(self, state):
        result = state["certifier"].result()
        return result.p_lower, result.n_draws, result.certified

    def empty_shapes(self):
        return [(), (), ()]


class SequentialPredict(Reducer):
    """PREDICT with abstention and early stopping.

    Parameters
    ----------
    n_classes : int
    vote : {"hard", "soft"}
    **predictor
        Passed to :class:`~smoothcert._certify._sequential_predict.SequentialPredictor`
        (``budget``, ``alpha``, ...).

    Result: ``(top, abstained, n_draws)`` per row.
    """

    def __init__(self, n_classes, vote, **predictor):
        self.n_classes = int(n_classes)
        self.vote = vote
        self.output = "labels" if vote == "hard" else "scores"
        self.predictor = predictor

    def begin(self, rows):
        predictor = SequentialPredictor(len(rows), self.n_classes, vote=self.vote, **self.predictor)
        return {"predictor": predictor}

    def update(self, state, active, out, z, factor):
        c = self.n_classes
        if self.vote == "hard":
            labels = out.reshape(active.size, -1)
            m = labels.shape[1]
            sums = np.bincount(
                (labels + (np.arange(active.size) * c)[:, None]).ravel(), minlength=active.size * c
            ).reshape(active.size, c)
        else:
            scores = out.reshape(active.size, -1, c)
            m = scores.shape[1]
            # exact sums (multiples of 2**-32), so that the totals do not depend
            # on how the draws were split into blocks
            units = np.floor(np.clip(scores, 0.0, 1.0) * SCORE_UNIT).astype(np.int64)
            sums = units.sum(axis=1) / SCORE_UNIT
        state["predictor"].update(active, sums, m)

    def next_look(self, state, done):
        looks = state["predictor"].looks()
        return int(looks[np.searchsorted(looks, done, side="right")])

    def decide(self, state, active, done):
        stop = state["predictor"].decide(active, done)
        return active[~stop]

    def end(self, state):
        return state["predictor"].result()

    def empty_shapes(self):
        return [(), (), ()]
