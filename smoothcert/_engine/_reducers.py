"""Reducers: what the engine loop computes from the base model's outputs.

A reducer declares what it needs from the loop (class attributes) and
accumulates block by block, per group of rows:

* ``output`` -- which adapter call the loop makes: ``"labels"`` (hard votes),
  ``"scores"`` (``predict_proba``) or ``"scores_and_gradient"`` (input
  gradients of a torch base);
* ``whole_rows`` -- all draws of a row in one block (for estimates centred over
  a row's draws); ``antithetic`` -- draws in pairs ``z``, ``-z``;
  ``keeps_normals`` -- the reducer receives the standard normals ``z``;
* ``begin(rows)`` -> a state for one group; ``update(state, active, out, z,
  factor)`` for each block (``active``: positions in the group of the rows
  drawn in this block, ``out``: the adapter's output for their points,
  ``factor``: their float64 square-root factor); ``end(state)`` -> a tuple
  of arrays; ``combine(parts)`` joins the groups;
* sequential reducers also implement ``next_look(state, done)`` (the next draw
  count at which they decide, or ``None``) and ``decide(state, active, done)``
  (the rows still drawing after that look).

Reducers must be picklable: the groups may run in joblib workers.
"""

import numpy as np

__all__ = ["Reducer", "VoteCounts", "ScoreSums", "SUM_BLOCK", "ordered_sum"]

#: Draws summed together before being added, in order, to a running soft-vote sum.
SUM_BLOCK = 256


def ordered_sum(acc, values):
    """``acc + values.sum(axis=1)`` with a summation order fixed by the draw index.

    ``values`` (r, m, C) are summed in consecutive blocks of :data:`SUM_BLOCK`
    draws, and the block sums are added to ``acc`` left to right, so the float
    result is the same however the draws were split into chunks (chunks hold
    whole blocks).
    """
    r, m, c = values.shape
    full = m - m % SUM_BLOCK
    parts = [acc[:, None, :]]
    if full:
        parts.append(values[:, :full].reshape(r, -1, SUM_BLOCK, c).sum(axis=2))
    if m > full:
        parts.append(values[:, full:].sum(axis=1, keepdims=True))
    return np.cumsum(np.concatenate(parts, axis=1), axis=1)[:, -1]


class Reducer:
    """Base class of the reducers (see the module docstring).

    Parameters
    ----------
    n_classes : int
        Classes of the base model (subclasses with more parameters set it too).
    """

    output = "labels"
    whole_rows = False
    antithetic = False
    keeps_normals = False

    def __init__(self, n_classes):
        self.n_classes = int(n_classes)

    def granularity(self, n_draws):
        """Blocks hold a multiple of this many draws (1: any split)."""
        return 1

    def begin(self, rows):
        raise NotImplementedError

    def extra_inputs(self, state, active, points_per_row):
        """Extra arguments of the adapter call for the rows ``active``."""
        return ()

    def update(self, state, active, out, z, factor):
        raise NotImplementedError

    def next_look(self, state, done):
        """Next draw count at which the reducer decides which rows go on."""
        return None

    def decide(self, state, active, done):
        """Rows (positions in the group) that keep drawing after a look."""
        return active

    def end(self, state):
        raise NotImplementedError

    def combine(self, parts):
        """Join the groups' results (each a tuple of arrays) row-wise."""
        if not parts:
            return tuple(np.zeros((0,) + shape) for shape in self.empty_shapes())
        return tuple(np.concatenate(arrays) for arrays in zip(*parts))

    def empty_shapes(self):
        """Trailing shapes of the result arrays (for zero rows)."""
        raise NotImplementedError


class VoteCounts(Reducer):
    """Hard votes: how often each class is predicted, ``(n, n_classes)`` int64."""

    output = "labels"

    def begin(self, rows):
        return {"acc": np.zeros(len(rows) * self.n_classes, dtype=np.int64), "r": len(rows)}

    def update(self, state, active, out, z, factor):
        c = self.n_classes
        labels = out.reshape(active.size, -1)
        state["acc"] += np.bincount(
            (labels + (active * c)[:, None]).ravel(), minlength=state["r"] * c
        )

    def end(self, state):
        return (state["acc"].reshape(state["r"], self.n_classes),)

    def empty_shapes(self):
        return [(self.n_classes,)]


class ScoreSums(Reducer):
    """Soft votes: sums of the scores and of their squares, ``(n, n_classes)`` each.

    The sums are taken in an order fixed by the draw index (:func:`ordered_sum`),
    so they are bit-identical whatever the batch size.
    """

    output = "scores"

    def granularity(self, n_draws):
        # whole summation blocks; up to one block, all of a row's draws at once
        return min(SUM_BLOCK, n_draws)

    def begin(self, rows):
        r = len(rows)
        return {"sum": np.zeros((r, self.n_classes)), "sq": np.zeros((r, self.n_classes))}

    def update(self, state, active, out, z, factor):
        scores = out.reshape(active.size, -1, self.n_classes)
        if active.size == len(state["sum"]):
            state["sum"] = ordered_sum(state["sum"], scores)
            state["sq"] = ordered_sum(state["sq"], np.square(scores))
        else:
            state["sum"][active] = ordered_sum(state["sum"][active], scores)
            state["sq"][active] = ordered_sum(state["sq"][active], np.square(scores))

    def end(self, state):
        return state["sum"], state["sq"]

    def empty_shapes(self):
        return [(self.n_classes,), (self.n_classes,)]
