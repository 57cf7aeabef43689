"""Looks and alpha spending of the sequential procedures, and their shared checks.

A sequential procedure looks at a row's votes at fixed draw counts, the same for
every row (:func:`geometric_looks`), so that a row's stopping time depends only on
its own draws. Looking more than once is paid for by splitting ``alpha`` over the
looks (:func:`spend_alpha`): by a union bound every bound reported at any look
then holds with probability ``1 - alpha``.
"""

import numpy as np

from ._stats import _check_alpha

__all__ = ["geometric_looks", "spend_alpha", "LookSchedule"]

STATUS_RUNNING = "running"
STATUS_CERTIFIED = "certified"
STATUS_FUTILE = "futile"
STATUS_EXHAUSTED = "exhausted"
_STATUS_NAMES = np.array([STATUS_RUNNING, STATUS_CERTIFIED, STATUS_FUTILE, STATUS_EXHAUSTED])
_RUNNING, _CERTIFIED, _FUTILE, _EXHAUSTED = range(4)


def _check_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}.")
    return int(value)


def geometric_looks(first_look, budget, ratio=2.0):
    """Draw counts at which a sequential procedure looks: ``n_1 ratio^k``, then the budget.

    Parameters
    ----------
    first_look : int
        The first look ``n_1`` (at least 1).
    budget : int
        The last look, the largest number of draws (at least ``first_look``; a
        larger ``first_look`` gives the single look ``[budget]``).
    ratio : float, default=2
        Growth factor between looks, greater than 1. Looks are rounded up to
        integers and kept strictly increasing.

    Returns
    -------
    looks : ndarray of int64
        Sorted, ending with ``budget``.

    Examples
    --------
    >>> from smoothcert._certify._looks import geometric_looks
    >>> geometric_looks(100, 1000).tolist()
    [100, 200, 400, 800, 1000]
    >>> geometric_looks(32, 100_000).size
    13
    """
    first_look = _check_int(first_look, "first_look")
    budget = _check_int(budget, "budget")
    ratio = float(ratio)
    if not np.isfinite(ratio) or ratio <= 1.0:
        raise ValueError(f"ratio must be a finite number greater than 1, got {ratio!r}.")
    looks = []
    value = float(first_look)
    while value < budget:
        look = int(np.ceil(value - 1e-9))
        if not looks or look > looks[-1]:
            looks.append(look)
        value *= ratio
    looks.append(budget)
    return np.asarray(looks, dtype=np.int64)


def spend_alpha(alpha, looks, schedule="uniform"):
    """Split ``alpha`` over the looks (Bonferroni-style spending).

    Parameters
    ----------
    alpha : float
        Total failure probability, in (0, 1).
    looks : array-like of int
        The looks (draw counts), increasing.
    schedule : {"uniform", "sqrt", "proportional"} or float, default="uniform"
        ``"uniform"``: ``alpha / K`` at each of the ``K`` looks. ``"sqrt"`` and
        ``"proportional"``: ``alpha_k`` proportional to ``sqrt(n_k)`` or to
        ``n_k``, which keeps more for the late looks, where a stop costs the
        most radius. A float in (0, 1): that fraction of ``alpha`` at the last
        look, the rest shared equally by the early looks.

    Returns
    -------
    levels : ndarray of float64, shape (K,)
        Positive, summing to ``alpha`` (up to rounding).

    Examples
    --------
    >>> from smoothcert._certify._looks import spend_alpha
    >>> spend_alpha(0.001, [10, 20, 40, 80]).tolist()
    [0.00025, 0.00025, 0.00025, 0.00025]
    >>> spend_alpha(0.001, [100, 400, 1600], "sqrt").round(7).tolist()
    [0.0001429, 0.0002857, 0.0005714]
    >>> spend_alpha(0.001, [100, 200, 400], 0.5).round(6).tolist()
    [0.00025, 0.00025, 0.0005]
    """
    alpha = float(_check_alpha(alpha))
    looks = _check_looks(looks)
    n_looks = looks.size
    if n_looks == 1:
        return np.array([alpha])
    if isinstance(schedule, str):
        weights = {
            "uniform": np.ones(n_looks),
            "sqrt": np.sqrt(looks),
            "proportional": looks.astype(np.float64),
        }
        if schedule not in weights:
            raise ValueError(
                f"schedule must be 'uniform', 'sqrt', 'proportional' or a final share, got {schedule!r}."
            )
        w = weights[schedule]
        return alpha * w / w.sum()
    final_share = float(schedule)
    if not (0.0 < final_share < 1.0):
        raise ValueError(
            f"schedule as a final share must lie in the open interval (0, 1), got {schedule!r}."
        )
    levels = np.full(n_looks, alpha * (1.0 - final_share) / (n_looks - 1))
    levels[-1] = alpha * final_share
    return levels


def _check_rows(rows, n_rows):
    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
        raise ValueError("rows must be a 1-D array of integer row indices.")
    rows = rows.astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"rows must lie in [0, {n_rows}), got values outside.")
    if np.unique(rows).size != rows.size:
        raise ValueError("rows must not repeat.")
    return rows


def _check_looks(looks):
    looks = np.asarray(looks)
    if looks.ndim != 1 or looks.size == 0 or not np.issubdtype(looks.dtype, np.integer):
        raise ValueError("looks must be a non-empty 1-D array of integers.")
    looks = looks.astype(np.int64)
    if looks[0] < 1 or np.any(np.diff(looks) <= 0):
        raise ValueError("looks must be positive and strictly increasing.")
    if looks[-1] >= 2**31:
        raise ValueError("looks must stay below 2**31 draws (the score sums are int64).")
    return looks


class LookSchedule:
    """Per-row progress through a shared schedule of looks (base of the sequential tests).

    Subclasses set ``n_rows`` and ``n_seen`` (draws fed to each row) and call
    :meth:`_start_looks` with the looks; they count fed draws with
    :meth:`_count_draws` and update ``_decided`` (looks passed) and ``_status``
    (running, certified, futile, exhausted) as rows are decided.
    """

    def _start_looks(self, looks):
        self._looks = np.asarray(looks, dtype=np.int64)
        self._decided = np.zeros(self.n_rows, dtype=np.int64)
        self._status = np.zeros(self.n_rows, dtype=np.int8)

    def looks(self):
        """Draw counts at which every row is looked at (the last is the budget)."""
        return self._looks.copy()

    def active(self):
        """Boolean mask of the rows still running."""
        return self._status == _RUNNING

    def next_look(self, rows=None):
        """The look each row is heading to: draw up to it, then ``decide``."""
        rows = np.arange(self.n_rows) if rows is None else _check_rows(rows, self.n_rows)
        return self._looks[np.minimum(self._decided[rows], self._looks.size - 1)]

    def _check_running(self, rows):
        if np.any(self._status[rows] != _RUNNING):
            raise ValueError("rows contains rows that have already stopped.")

    def _count_draws(self, rows, n_draws):
        """Add ``n_draws`` to ``n_seen[rows]``, refusing draws beyond a row's next look."""
        seen = self.n_seen[rows]
        nxt = self.next_look(rows)
        if np.any((seen == nxt) & (n_draws > 0)):
            raise ValueError("some rows are at a look: call decide before feeding more draws.")
        if np.any(seen + n_draws > nxt):
            raise ValueError("the block would go beyond the rows' next look (see next_look).")
        self.n_seen[rows] += n_draws
