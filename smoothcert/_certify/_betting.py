"""Betting confidence bounds and sequences for means of [0, 1] scores.

After Waudby-Smith and Ramdas (JRSS-B, 2023): for each candidate mean ``m`` a
gambler bets on every score ``X`` with a payoff ``1 + lambda (X - m)``; if the
mean is at most ``m`` the capital is a nonnegative supermartingale, so by Ville's
inequality it ever reaches ``1 / alpha`` with probability at most ``alpha``. The
bound is anytime-valid: it holds simultaneously at every look and at any
stopping time.

Scores enter the betting state as exact integer sums in units of ``2**-32``
(each score rounded down, its square rounded up, both of which can only lower the
capital), so that feeding the same stream in blocks of any sizes gives
bit-identical results.
"""

import numpy as np

from ._looks import _check_int, _check_looks, _check_rows
from ._stats import _check_alpha

__all__ = ["BettingConfidenceSequence", "score_sums"]

#: Scores are summed as integers in units of ``2**-32``.
SCORE_UNIT = float(2**32)
#: Largest fraction of the capital a bet may stake on a score of 0 (it keeps the
#: capital positive; any value below 1 is valid).
MAX_STAKE = 1.0 - 2.0**-20
#: Bisection steps of the confidence-sequence bound and of the bet's boundary.
_CS_STEPS = 52
#: Default pseudo-observations (ones, zeros) of the plug-in estimate behind the bets.
DEFAULT_PRIOR = (1.0, 0.05)


def _check_scores(block):
    block = np.asarray(block, dtype=np.float64)
    if block.ndim != 2:
        raise ValueError(
            f"block must be a 2-D array of scores (rows, draws), got shape {block.shape}."
        )
    # min / max propagate NaN, which fails both comparisons
    if block.size and not (block.min() >= 0.0 and block.max() <= 1.0):
        raise ValueError("block scores must lie in [0, 1] (and be finite).")
    return block


def score_sums(block):
    """Exact integer sums of a block of [0, 1] scores, in units of ``2**-32``.

    Each score ``x`` is rounded down to ``u = floor(x 2^32) 2^-32`` and its square
    is rounded up (and kept ``<= u``, since ``u^2 <= u``); both can only lower a
    betting capital, so the rounding is conservative. Integer sums do not depend
    on the order or the grouping of the additions.

    Parameters
    ----------
    block : array-like of float, shape (r, m)
        Scores in [0, 1], one row per input, in draw order.

    Returns
    -------
    s1, s2 : ndarray of int64, shape (r,)
        Sums of the rounded scores and of their rounded squares, in units of
        ``2**-32``.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._certify._betting import score_sums
    >>> s1, s2 = score_sums(np.array([[1.0, 0.0, 1.0], [0.5, 0.5, 0.25]]))
    >>> (s1 / 2**32).tolist(), (s2 / 2**32).round(6).tolist()
    ([2.0, 1.25], [2.0, 0.5625])
    """
    block = _check_scores(block)
    s1 = np.zeros(block.shape[0], dtype=np.int64)
    s2 = np.zeros(block.shape[0], dtype=np.int64)
    # Integer-valued float64 terms below 2**33 add up exactly while the total stays
    # below 2**53, whatever the order: chunks of 2**19 draws are safe.
    for start in range(0, block.shape[1], 2**19):
        units = np.floor(block[:, start : start + 2**19] * SCORE_UNIT)
        s1 += units.sum(axis=1).astype(np.int64)
        squares = units * units
        squares *= 1.0 / SCORE_UNIT  # the exact square, rounded: at most 2**-21 off
        np.ceil(squares, out=squares)
        squares += 1.0
        np.minimum(squares, units, out=squares)
        s2 += squares.sum(axis=1).astype(np.int64)
    return s1, s2


def _two_point(n, s1, s2):
    """Two-point summary ``(a, x1)`` of ``n`` scores with sums ``s1``, ``s2`` (floats).

    Of all distributions on [0, 1] with a given mean and second moment, the one
    on ``{0, x1}`` (``x1 = s2 / s1``, mass ``a / n = s1^2 / (n s2)`` at ``x1``) has
    the smallest expected ``log(1 + lambda (X - m))`` (the function's third
    derivative is positive), so it gives an exact lower bound of a block's
    log-capital from the two sums. On 0/1 votes it is the votes themselves.
    """
    positive = s1 > 0.0
    x1 = np.where(positive, np.minimum(s2 / np.where(positive, s1, 1.0), 1.0), 1.0)
    x1 = np.where(x1 > 0.0, x1, 1.0)
    a = np.where(positive, np.minimum(s1 / x1, n), 0.0)
    return a, x1


def _log_growth(n, a, x1, lam, cap, m):
    """Lower bound of ``sum log(1 + lambda(m) (X_i - m))`` from a two-point summary.

    ``lambda(m) = min(lam, cap / m)`` with ``cap < 1``: the bet ``lam`` is the
    same for every candidate ``m`` up to the mean it was tuned at, above which
    the stake ``lambda m`` (what a score of 0 loses) stays at ``cap``, the stake
    at that mean. Each factor is then non-increasing in ``m``, so the capital
    is too: the set of rejected means is an interval ``[0, L)``. Arrays
    broadcast; ``lam = 0`` or ``n = 0`` contributes 0.
    """
    stake = lam * m
    capped = stake > cap
    stake = np.where(capped, cap, stake)
    safe_m = np.where(capped, m, 1.0)
    gain = np.where(capped, cap * (x1 - m) / safe_m, lam * (x1 - m))
    return (n - a) * np.log1p(-stake) + a * np.log1p(gain)


def _kl_two_point(mu, x1, m):
    """Best growth rate ``max_lambda E log(1 + lambda (X - m))`` of a two-point law.

    For the law on ``{0, x1}`` with mean ``mu``, the optimal (Kelly) bet is
    ``(mu - m) / (m (x1 - m))`` and the growth rate is
    ``(1 - w) log((x1 - mu) / (x1 - m)) + w log(mu / m)`` with ``w = mu / x1``:
    Bernoulli relative entropy ``KL(mu || m)`` when ``x1 = 1``. Zero for ``m >= mu``.
    """
    w = mu / x1
    below = m < mu
    safe_m = np.where(below, m, 0.5 * mu)
    value = (1.0 - w) * np.log((x1 - mu) / (x1 - safe_m)) + w * np.log(mu / safe_m)
    return np.where(below, value, 0.0)


# --------------------------------------------------------------- betting sequence


def _check_prior(prior):
    try:
        ones, zeros = (float(v) for v in prior)
    except (TypeError, ValueError):
        raise ValueError(
            f"prior must be a pair (ones, zeros) of positive numbers, got {prior!r}."
        ) from None
    if not (np.isfinite(ones) and np.isfinite(zeros) and ones > 0 and zeros > 0):
        raise ValueError(f"prior must be a pair (ones, zeros) of positive numbers, got {prior!r}.")
    return ones, zeros


class BettingConfidenceSequence:
    """Anytime-valid lower confidence bounds for means of [0, 1] scores, by betting.

    One independent sequence per row. For a candidate mean ``m`` the capital is
    ``K_t(m) = prod_i (1 + lambda_i(m) (X_i - m))`` with a predictable bet; if the
    true mean is at most ``m`` it is a nonnegative supermartingale, and by Ville's
    inequality ``P(sup_t K_t(m) >= 1 / alpha) <= alpha``. The lower bound at a look
    is the largest ``m`` rejected so far (Waudby-Smith and Ramdas, 2023).

    Bets are constant between consecutive looks (an *epoch*) and set at the
    start of the epoch from the draws before it, so each epoch's log-capital is
    bounded from below by two integer sums only (see :func:`score_sums`): exactly
    for 0/1 votes, and by the two-point law of the same mean and second moment
    for other scores, which still rewards a small variance. The bet is the
    Kelly bet of the plug-in estimate (with ``prior`` pseudo-observations) at the
    mean ``m_b`` it aims to reject: the row's ``target`` when there is one,
    otherwise the mean that would be on the boundary at the horizon (the end of
    the epoch for a time-uniform sequence, or a fixed ``horizon``). The bet does
    not depend on ``m`` (beyond a truncation that keeps the capital positive), so
    the capital is non-increasing in ``m``, the rejected means form an interval,
    and the bound is found by bisection; the reported value is always an ``m``
    whose capital did reach ``1 / alpha``, so its validity does not depend on
    the precision of the search.

    Parameters
    ----------
    n_rows : int
        Number of independent sequences.
    looks : array-like of int
        Strictly increasing draw counts where epochs end and the bound is updated.
    alpha : float
        Failure probability of each row's sequence, in (0, 1).
    target : float or array-like of shape (n_rows,), optional
        Mean each row tests (``H0: mean <= target``); bets are tuned to it.
    horizon : int, optional
        Tune the bets for a bound at this number of draws (a fixed-n bound that
        stays valid at every look) instead of at the end of each epoch.
    prior : (float, float), default=(1.0, 0.05)
        Pseudo-observations (ones, zeros) of the plug-in estimate. Few zeros make
        the bets bold when no 0 has been seen yet, which is what a one-hot base
        model rewards.

    Attributes
    ----------
    n_seen : ndarray of int64, shape (n_rows,)
        Draws fed to each row.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._certify._betting import BettingConfidenceSequence
    >>> cs = BettingConfidenceSequence(2, [10, 100, 1000], alpha=0.05)
    >>> scores = np.ones((2, 1000)); scores[1, ::10] = 0.0
    >>> for start in range(0, 1000, 250):
    ...     cs.update([0, 1], scores[:, start:start + 250])
    >>> bool(cs.lower_bound()[0] > 0.99), bool(0.85 < cs.lower_bound()[1] < 0.9)
    (True, True)
    """

    def __init__(self, n_rows, looks, alpha, *, target=None, horizon=None, prior=DEFAULT_PRIOR):
        self.n_rows = _check_int(n_rows, "n_rows")
        self.looks = _check_looks(looks)
        self.alpha = float(_check_alpha(alpha))
        self.threshold = float(np.log(1.0 / self.alpha))
        self.prior = _check_prior(prior)
        if target is not None:
            target = np.broadcast_to(np.asarray(target, dtype=np.float64), (self.n_rows,)).copy()
            if np.any(~np.isfinite(target)) or np.any((target <= 0.0) | (target >= 1.0)):
                raise ValueError("target must lie in the open interval (0, 1).")
        self.target = target
        self.horizon = None if horizon is None else _check_int(horizon, "horizon")
        n_looks = self.looks.size
        self.n_seen = np.zeros(self.n_rows, dtype=np.int64)
        self._closed = np.zeros(self.n_rows, dtype=np.int64)
        self._current = np.zeros((self.n_rows, 2), dtype=np.int64)
        self._total = np.zeros((self.n_rows, 2), dtype=np.int64)
        shape = (self.n_rows, n_looks)
        self._ep_n = np.zeros(shape)
        self._ep_a = np.zeros(shape)
        self._ep_x1 = np.ones(shape)
        self._ep_lam = np.zeros(shape)
        self._ep_cap = np.zeros(shape)
        self._mean_max = np.zeros(self.n_rows)
        self._lower = np.zeros(self.n_rows)
        self._target_log = np.zeros(self.n_rows)
        self._target_best = np.full(self.n_rows, -np.inf)
        self._lam, self._cap = self._bet(np.arange(self.n_rows))

    # -- queries ------------------------------------------------------------

    def next_look(self, rows=None):
        """Next look of each row (``-1`` once a row has passed the last one)."""
        rows = np.arange(self.n_rows) if rows is None else _check_rows(rows, self.n_rows)
        closed = self._closed[rows]
        done = closed >= self.looks.size
        return np.where(done, -1, self.looks[np.minimum(closed, self.looks.size - 1)])

    def looks_passed(self, rows=None):
        """Number of looks each row has passed."""
        rows = np.arange(self.n_rows) if rows is None else _check_rows(rows, self.n_rows)
        return self._closed[rows].copy()

    def lower_bound(self, rows=None):
        """Running lower confidence bound at the last look passed (0 before the first)."""
        rows = np.arange(self.n_rows) if rows is None else _check_rows(rows, self.n_rows)
        return self._lower[rows].copy()

    def log_capital(self, m, rows=None):
        """Log-capital (lower bound) against the mean ``m`` at the last look passed.

        Parameters
        ----------
        m : float or array-like broadcastable to ``(len(rows),)`` or ``(len(rows), g)``
            Candidate means in [0, 1].
        rows : array-like of int, optional
            Rows (all by default).

        Returns
        -------
        log_capital : ndarray of float64
        """
        rows = np.arange(self.n_rows) if rows is None else _check_rows(rows, self.n_rows)
        m = np.asarray(m, dtype=np.float64)
        if np.any(~np.isfinite(m)) or np.any((m < 0.0) | (m > 1.0)):
            raise ValueError("m must lie in [0, 1].")
        if m.ndim == 2:
            return self._log_capital(rows[:, None], np.broadcast_to(m, (rows.size, m.shape[1])))
        return self._log_capital(rows, np.broadcast_to(m, rows.shape))

    def projected_lower_bound(self, horizon, rows=None):
        """Bound the sequence would reach at ``horizon`` draws if the estimate is right.

        The mean ``m`` at which the current log-capital plus ``horizon - n``
        draws at the plug-in law's best growth rate would just reach
        ``log(1 / alpha)``: a forecast used to decide when more draws are not
        worth their cost, not a confidence bound.
        """
        rows = np.arange(self.n_rows) if rows is None else _check_rows(rows, self.n_rows)
        horizon = _check_int(horizon, "horizon")
        mu, x1, seen = self._estimate(rows)
        remaining = np.maximum(horizon - self.n_seen[rows], 0).astype(np.float64)
        return np.maximum(self._boundary(rows, mu, x1, remaining), self._lower[rows])

    def target_log_capital(self, rows=None):
        """Largest log-capital against the target seen at any look so far."""
        if self.target is None:
            raise ValueError("target_log_capital needs a sequence built with a target.")
        rows = np.arange(self.n_rows) if rows is None else _check_rows(rows, self.n_rows)
        return self._target_best[rows].copy()

    # -- feeding ------------------------------------------------------------

    def update(self, rows, block):
        """Feed per-draw scores ``block`` (``(len(rows), m)``, in draw order).

        A block may span several looks: it is cut at each look the rows cross.
        """
        rows = _check_rows(rows, self.n_rows)
        block = _check_scores(block)
        if block.shape[0] != rows.size:
            raise ValueError(f"block has {block.shape[0]} rows, rows has {rows.size}.")
        self._check_room(rows, block.shape[1], crossing=True)
        start = 0
        width = block.shape[1]
        while start < width:
            room = self.next_look(rows) - self.n_seen[rows]
            step = int(min(width - start, room.min()))
            s1, s2 = score_sums(block[:, start : start + step])
            self._add(rows, step, s1, s2)
            start += step

    def update_counts(self, rows, counts, n_draws):
        """Feed hard votes: ``counts`` ones among ``n_draws`` draws for each row.

        The block must not cross a look (counts cannot be cut); see :meth:`next_look`.
        """
        rows = _check_rows(rows, self.n_rows)
        counts, n_draws = _check_counts(counts, n_draws, rows.size)
        self._check_room(rows, n_draws, crossing=False)
        units = counts * np.int64(2**32)
        self._add_rows(rows, n_draws, units, units)

    def update_sums(self, rows, n_draws, s1, s2):
        """Feed sums from :func:`score_sums` of ``n_draws`` draws (no look may be crossed)."""
        rows = _check_rows(rows, self.n_rows)
        n_draws = np.broadcast_to(np.asarray(n_draws, dtype=np.int64), rows.shape)
        s1 = np.broadcast_to(np.asarray(s1, dtype=np.int64), rows.shape)
        s2 = np.broadcast_to(np.asarray(s2, dtype=np.int64), rows.shape)
        if np.any(n_draws < 0) or np.any(s1 < 0) or np.any(s2 < 0) or np.any(s2 > s1):
            raise ValueError("sums must satisfy 0 <= s2 <= s1 and n_draws >= 0.")
        if np.any(s1 > n_draws * np.int64(2**32)):
            raise ValueError("s1 exceeds n_draws (scores above 1).")
        self._check_room(rows, n_draws, crossing=False)
        self._add_rows(rows, n_draws, s1, s2)

    # -- internals ----------------------------------------------------------

    def _check_room(self, rows, n_draws, crossing):
        nxt = self.next_look(rows)
        if np.any(nxt < 0) and np.any(np.asarray(n_draws) > 0):
            raise ValueError("some rows have already passed the last look.")
        limit = self.looks[-1] if crossing else nxt
        if np.any(self.n_seen[rows] + n_draws > limit):
            what = "the last look" if crossing else "the next look (see next_look)"
            raise ValueError(f"the block would go beyond {what}.")

    def _add(self, rows, step, s1, s2):
        self._add_rows(rows, np.full(rows.size, step, dtype=np.int64), s1, s2)

    def _add_rows(self, rows, n_draws, s1, s2):
        self.n_seen[rows] += n_draws
        self._current[rows, 0] += s1
        self._current[rows, 1] += s2
        at_look = self.n_seen[rows] == self.next_look(rows)
        if np.any(at_look):
            self._close(rows[at_look])

    def _epoch_sums(self, rows):
        closed = self._closed[rows]
        start = np.where(closed > 0, self.looks[np.maximum(closed - 1, 0)], 0)
        n = (self.n_seen[rows] - start).astype(np.float64)
        return n, self._current[rows, 0] / SCORE_UNIT, self._current[rows, 1] / SCORE_UNIT

    def _close(self, rows):
        n, s1, s2 = self._epoch_sums(rows)
        a, x1 = _two_point(n, s1, s2)
        epoch = self._closed[rows]
        self._ep_n[rows, epoch] = n
        self._ep_a[rows, epoch] = a
        self._ep_x1[rows, epoch] = x1
        self._ep_lam[rows, epoch] = self._lam[rows]
        self._ep_cap[rows, epoch] = self._cap[rows]
        self._mean_max[rows] = np.maximum(
            self._mean_max[rows], np.where(n > 0, s1 / np.maximum(n, 1.0), 0.0)
        )
        self._total[rows] += self._current[rows]
        self._current[rows] = 0
        self._closed[rows] += 1
        self._update_lower(rows)
        live = self._closed[rows] < self.looks.size
        if np.any(live):
            self._lam[rows[live]], self._cap[rows[live]] = self._bet(rows[live])

    def _log_capital(self, rows, m):
        m = np.asarray(m, dtype=np.float64)[..., None]
        return _log_growth(
            self._ep_n[rows],
            self._ep_a[rows],
            self._ep_x1[rows],
            self._ep_lam[rows],
            self._ep_cap[rows],
            m,
        ).sum(axis=-1)

    def _update_lower(self, rows):
        threshold = self.threshold
        lower = self._lower[rows]
        start = lower.copy()
        if self.target is not None:
            target = self.target[rows]
            log_t = self._log_capital(rows, target)
            self._target_log[rows] = log_t
            self._target_best[rows] = np.maximum(self._target_best[rows], log_t)
            start = np.where((log_t >= threshold) & (target > lower), target, lower)
        ok = self._log_capital(rows, start) >= threshold
        if not np.any(ok):
            return
        sel = rows[ok]
        lo = start[ok]
        hi = np.maximum(self._mean_max[sel], lo)
        for _ in range(_CS_STEPS):
            mid = 0.5 * (lo + hi)
            reject = self._log_capital(sel, mid) >= threshold
            lo = np.where(reject, mid, lo)
            hi = np.where(reject, hi, mid)
        self._lower[sel] = np.maximum(self._lower[sel], lo)

    def _estimate(self, rows):
        ones, zeros = self.prior
        s1 = self._total[rows, 0] / SCORE_UNIT + ones
        s2 = self._total[rows, 1] / SCORE_UNIT + ones
        closed = self._closed[rows]
        seen = np.where(closed > 0, self.looks[np.maximum(closed - 1, 0)], 0)
        mu = s1 / (seen + ones + zeros)
        x1 = np.minimum(s2 / s1, 1.0)
        return mu, np.maximum(x1, mu * (1.0 + 1e-12)), seen

    def _bet(self, rows):
        mu, x1, seen = self._estimate(rows)
        if self.target is not None:
            m = self.target[rows]
        else:
            closed = self._closed[rows]
            if self.horizon is None:
                horizon = self.looks[np.minimum(closed, self.looks.size - 1)]
            else:
                horizon = np.full(rows.size, self.horizon)
            m = self._boundary(rows, mu, x1, np.maximum(horizon - seen, 0).astype(np.float64))
        below = m < mu
        safe_m = np.where(below, m, 0.5)
        stake = np.where(below, np.minimum((mu - safe_m) / (x1 - safe_m), MAX_STAKE), 0.0)
        return stake / safe_m, stake

    def _boundary(self, rows, mu, x1, remaining):
        """Mean ``m`` with ``log K(m) + remaining * growth(m) = log(1 / alpha)``.

        The mean a bet tuned at it would just reject at the horizon, if the
        estimate is right; found by bisection on ``(0, mu)``.
        """
        threshold = self.threshold
        lo = np.zeros(rows.size)
        hi = mu.copy()
        for _ in range(_CS_STEPS):
            mid = 0.5 * (lo + hi)
            total = self._log_capital(rows, mid) + remaining * _kl_two_point(mu, x1, mid)
            reject = total >= threshold
            lo = np.where(reject, mid, lo)
            hi = np.where(reject, hi, mid)
        return np.maximum(lo, 1e-12)


def _check_counts(counts, n_draws, size):
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size != size:
        raise ValueError(f"counts must be a 1-D array of {size} vote counts.")
    if counts.size and not np.issubdtype(counts.dtype, np.integer):
        if np.any(counts != np.floor(counts)):
            raise ValueError("counts must be integers.")
    n_draws = np.asarray(n_draws)
    if n_draws.size and np.any(n_draws != np.floor(n_draws)):
        raise ValueError("n_draws must be an integer.")
    counts = counts.astype(np.int64)
    n_draws = np.broadcast_to(n_draws.astype(np.int64), counts.shape)
    if np.any(n_draws < 0) or np.any(counts < 0) or np.any(counts > n_draws):
        raise ValueError("counts must satisfy 0 <= counts <= n_draws.")
    return counts, n_draws
