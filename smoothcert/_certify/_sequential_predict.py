"""Cohen's PREDICT with early stopping (alpha spent over the looks)."""

import numpy as np

from ._looks import (
    LookSchedule,
    _CERTIFIED,
    _EXHAUSTED,
    _FUTILE,
    _RUNNING,
    _check_int,
    _check_rows,
    geometric_looks,
    spend_alpha,
)
from ._stats import _check_alpha, binomial_test_pvalue, hoeffding_lower

__all__ = ["SequentialPredictor"]


class SequentialPredictor(LookSchedule):
    """Cohen's PREDICT with early stopping at the looks, alpha spent over them.

    At look ``k`` the top two classes (by count, ties broken by class index as
    in :func:`~smoothcert._certify._procedures.predict_rows`) are tested at level
    ``alpha_k``: hard votes with the two-sided binomial test of their counts,
    soft votes with the Hoeffding bound of ``(F_A - F_B + 1) / 2`` at
    ``alpha_k / (C (C - 1))``. A row stops with its top class as soon as the test
    rejects; it stops abstaining when even all the remaining draws going to its
    top class could not make any later look reject (abstaining makes no claim,
    so this is free), and abstains at the budget otherwise. Each look is a valid
    PREDICT at its own level, so by a union bound a returned class differs from
    the smoothed classifier's with probability at most ``sum(alpha_k) = alpha``.
    With a single look (``first_look = budget``) it is exactly PREDICT.

    Parameters
    ----------
    n_rows : int
        Number of inputs.
    n_classes : int
        Number of classes (at least 2).
    budget : int, default=100_000
        Largest number of draws per row.
    alpha : float, default=0.001
        Failure probability.
    vote : {"hard", "soft"}, default="hard"
    first_look : int, default=100
        First look.
    ratio : float, default=2
        Growth factor of the looks.
    spending : {"uniform", "sqrt", "proportional"} or float, default="uniform"
        How ``alpha`` is split over the looks (see :func:`spend_alpha`).

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._certify._sequential_predict import SequentialPredictor
    >>> rng = np.random.default_rng(0)
    >>> probs = np.array([[0.9, 0.1, 0.0], [0.34, 0.33, 0.33]])
    >>> pred = SequentialPredictor(2, 3, budget=10_000, alpha=0.01)
    >>> rows = np.arange(2)
    >>> while rows.size:
    ...     look = pred.next_look(rows)
    ...     new = look - pred.n_seen[rows]
    ...     counts = np.array([rng.multinomial(m, probs[r]) for m, r in zip(new, rows)])
    ...     pred.update(rows, counts, new)
    ...     rows = rows[~pred.decide(rows, look)]
    >>> top, abstained, n_draws = pred.result()
    >>> int(top[0]), abstained.tolist(), n_draws.tolist()
    (0, [False, True], [100, 10000])
    """

    def __init__(
        self,
        n_rows,
        n_classes,
        *,
        budget=100_000,
        alpha=0.001,
        vote="hard",
        first_look=100,
        ratio=2.0,
        spending="uniform",
    ):
        self.n_rows = _check_int(n_rows, "n_rows")
        self.n_classes = _check_int(n_classes, "n_classes", minimum=2)
        self.budget = _check_int(budget, "budget")
        self.alpha = float(_check_alpha(alpha))
        if vote not in ("hard", "soft"):
            raise ValueError(f"vote must be 'hard' or 'soft', got {vote!r}.")
        self.vote = vote
        self._start_looks(geometric_looks(first_look, self.budget, ratio))
        self.levels = spend_alpha(self.alpha, self._looks, spending)
        self.n_seen = np.zeros(self.n_rows, dtype=np.int64)
        dtype = np.int64 if vote == "hard" else np.float64
        self._sums = np.zeros((self.n_rows, self.n_classes), dtype=dtype)
        self._top = np.zeros(self.n_rows, dtype=np.int64)
        self._n_used = np.zeros(self.n_rows, dtype=np.int64)




    def update(self, rows, sums, n_draws):
        """Feed per-class vote counts (hard) or score sums (soft) of one block.

        Parameters
        ----------
        rows : array-like of int
            Distinct running rows.
        sums : array-like, shape (len(rows), n_classes)
            Hard: integer counts of each class; soft: sums of each class's scores.
        n_draws : int or array-like of int
            Draws in the block; it must not go beyond a row's next look.
        """
        rows = _check_rows(rows, self.n_rows)
        self._check_running(rows)
        sums = np.asarray(sums)
        if sums.shape != (rows.size, self.n_classes):
            raise ValueError(
                f"sums must have shape ({rows.size}, {self.n_classes}), got {sums.shape}."
            )
        n_draws = np.asarray(n_draws)
        if np.any(n_draws != np.floor(n_draws)) or np.any(n_draws < 0):
            raise ValueError("n_draws must be a non-negative integer.")
        n_draws = np.broadcast_to(n_draws.astype(np.int64), rows.shape)
        if self.vote == "hard":
            if (
                np.any(sums != np.floor(sums))
                or np.any(sums < 0)
                or np.any(sums.sum(axis=1) != n_draws)
            ):
                raise ValueError("hard sums must be non-negative counts adding up to n_draws.")
            sums = sums.astype(np.int64)
        else:
            sums = sums.astype(np.float64)
            if (
                np.any(~np.isfinite(sums))
                or np.any(sums < 0)
                or np.any(sums > n_draws[:, None] * (1 + 1e-9))
            ):
                raise ValueError("soft sums must lie in [0, n_draws].")
        self._count_draws(rows, n_draws)
        self._sums[rows] += sums

    def _rejects(self, top, second, n, level):
        if self.vote == "hard":
            return binomial_test_pvalue(top, second) <= level
        pair_level = level / (self.n_classes * (self.n_classes - 1))
        # sums may be rounded down to multiples of 2**-32 per draw (exact
        # block-invariant sums): the runner-up's mean may then be up to 2**-32
        # too low, so the difference is lowered by that much
        shifted = np.clip(0.5 * ((top - second) / n - 2.0**-32 + 1.0), 0.0, 1.0)
        return hoeffding_lower(shifted, n, pair_level) > 0.5

    def decide(self, rows, n_seen):
        """Decide at a look which rows stop; returns a boolean mask over ``rows``."""
        rows = _check_rows(rows, self.n_rows)
        self._check_running(rows)
        n_seen = np.broadcast_to(np.asarray(n_seen), rows.shape)
        if np.any(n_seen != self.n_seen[rows]) or np.any(n_seen != self.next_look(rows)):
            raise ValueError("n_seen must equal the draws fed and each row's next look.")
        look = self._decided[rows]
        last = look == self._looks.size - 1
        sums = self._sums[rows]
        order = np.argsort(-sums, axis=1, kind="stable")
        top_class = order[:, 0]
        index = np.arange(rows.size)
        top = sums[index, top_class].astype(np.float64)
        second = sums[index, order[:, 1]].astype(np.float64)
        n = n_seen.astype(np.float64)
        returned = self._rejects(top, second, n, self.levels[look])
        hopeless = ~returned & ~last
        if np.any(hopeless):
            idx = np.flatnonzero(hopeless)
            possible = np.zeros(idx.size, dtype=bool)
            for j in range(self._looks.size):
                later = self._looks[j] > n[idx]
                if not np.any(later):
                    continue
                n_j = np.full(idx.size, float(self._looks[j]))
                best = top[idx] + (n_j - n[idx])
                possible |= later & self._rejects(best, second[idx], n_j, self.levels[j])
            hopeless[idx] = ~possible
        stop = returned | hopeless | last
        self._decided[rows] += 1
        self._status[rows] = np.where(
            returned, _CERTIFIED, np.where(hopeless, _FUTILE, np.where(last, _EXHAUSTED, _RUNNING))
        )
        self._top[rows] = top_class
        self._n_used[rows[stop]] = n_seen[stop]
        return stop

    def result(self):
        """``(top, abstained, n_draws)``: the top class, whether the row abstains, its draws.

        A running row counts as abstaining.
        """
        n_draws = np.where(self._status == _RUNNING, self.n_seen, self._n_used)
        return self._top.copy(), self._status != _CERTIFIED, n_draws.astype(np.int64)
