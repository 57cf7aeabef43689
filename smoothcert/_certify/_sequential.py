"""Sequential certification: the state machine of early-stopping CERTIFY.

CERTIFY spends a fixed number of Monte-Carlo draws on every input, but most inputs
are decided long before: an input whose draws all agree reaches a target
``p* = Phi(R / sqrt(lambda_min(Sigma)))`` after about ``log(alpha) / log(p*)``
draws. Looking at the votes more than once must be paid for, and this module holds
the two ways of paying and the state machines the Monte-Carlo engine drives.

* **Alpha spending over a fixed grid of looks** (``method="spending"``). The looks
  ``n_1, 2 n_1, 4 n_1, ...`` end at the budget; look ``k`` uses a fixed-n bound at
  level ``alpha_k`` with ``sum(alpha_k) = alpha`` (:func:`spend_alpha`), so that by
  a union bound *every* bound reported at *any* look holds with probability
  ``1 - alpha``. Hard votes use Clopper-Pearson, soft votes Bentkus' bound (both
  in :mod:`smoothcert._certify._stats`).
* **A betting confidence sequence** (``method="betting"``,
  :class:`BettingConfidenceSequence`), after Waudby-Smith and Ramdas (JRSS-B,
  2023): for each candidate mean ``m`` a gambler bets on every score ``X`` with a
  payoff ``1 + lambda (X - m)``; if the mean is at most ``m`` the capital is a
  nonnegative supermartingale, so by Ville's inequality it ever reaches
  ``1 / alpha`` with probability at most ``alpha``. The bound is anytime-valid:
  it holds simultaneously at every look, however many, and at any stopping
  time.

:class:`SequentialCertifier` tests ``p_A >= p*`` (with a target), or stops once
the radius is within a relative tolerance of what the budget could still give
(without a target), and reports a lower bound valid at level ``alpha`` for every
row whatever its stopping time; :class:`SequentialPredictor` is Cohen's PREDICT
with early stopping. A row's stopping time depends only on its own draws: the
looks are the same for every row and all the state is per row, so results do not
depend on how rows are batched.

Scores enter the betting state as exact integer sums in units of ``2**-32``
(each score rounded down, its square rounded up, both of which can only lower the
capital), so that feeding the same stream in blocks of any sizes gives
bit-identical results.
"""

import numpy as np

from ._betting import (
    DEFAULT_PRIOR,
    SCORE_UNIT,
    BettingConfidenceSequence,
    _check_counts,
    _check_scores,
    score_sums,
)
from ._looks import (
    LookSchedule,
    _CERTIFIED,
    _EXHAUSTED,
    _FUTILE,
    _RUNNING,
    _STATUS_NAMES,
    STATUS_CERTIFIED,
    _check_int,
    _check_rows,
    geometric_looks,
    spend_alpha,
)
from ._stats import (
    _check_alpha,
    bentkus_lower_bound,
    clopper_pearson_lower,
    clopper_pearson_upper,
    kl_lower_bound,
    kl_upper_bound,
    mahalanobis_radius,
)

__all__ = ["SequentialCertifier", "SequentialResult"]

#: Default first look of each mode.
DEFAULT_FIRST_LOOK = {"target": 32, "tol": 100, "fixed": None}


class SequentialResult:
    """Outcome of a :class:`SequentialCertifier`, one entry per row.

    Parameters
    ----------
    p_lower : ndarray of float64
        Lower confidence bound of the top-class probability, valid at level
        ``alpha`` whatever the row's stopping time (0 before the first look).
    n_draws : ndarray of int64
        Estimation draws the row used.
    status : ndarray of str
        ``"certified"`` (the target was reached, or, without a target, the row
        stopped with ``p_lower > 1/2``), ``"futile"`` (stopped early without a
        claim: the target cannot be reached, or the row abstains), ``"exhausted"``
        (the budget was spent) or ``"running"``.
    target_p : ndarray of float64 or None
        The rows' targets.

    Attributes
    ----------
    certified : ndarray of bool
        ``status == "certified"``.
    radius : ndarray of float64
        Mahalanobis radius ``Phi^-1(p_lower)`` (0 when ``p_lower <= 1/2``).
    """

    def __init__(self, p_lower, n_draws, status, target_p=None):
        self.p_lower = p_lower
        self.n_draws = n_draws
        self.status = status
        self.target_p = target_p

    @property
    def certified(self):
        return self.status == STATUS_CERTIFIED

    @property
    def radius(self):
        return mahalanobis_radius(self.p_lower)

    def __repr__(self):
        names, counts = np.unique(self.status, return_counts=True)
        summary = ", ".join(f"{name}={count}" for name, count in zip(names, counts))
        return f"SequentialResult(n_rows={self.p_lower.size}, {summary}, mean_draws={self.n_draws.mean():.1f})"


class SequentialCertifier(LookSchedule):
    """Early-stopping CERTIFY: the state the Monte-Carlo engine feeds look by look.

    Every row has the same looks (:meth:`looks`), so its stopping time depends
    only on its own draws. The engine draws up to the next look of the rows
    still running (:meth:`next_look`), feeds the votes (:meth:`update`), calls
    :meth:`decide` at the look and drops the rows it returns; :meth:`result`
    gives every row's bound, draws and status.

    Three modes:

    * **target** (``target_p``): test ``p_A >= p*`` (``p* = Phi(R / sqrt(lambda_min))``
      for the question "is the ball of radius R certified?"). A row stops
      *certified* once its lower bound reaches ``p*``; *futile* (free: it makes no
      claim) once an upper bound at level ``futility_alpha`` falls below ``p*`` or
      even all successes on the rest of the budget could not reach it.
    * **tol** (``radius_tol``): a row stops once its certified radius is at least
      ``1 - radius_tol`` times the radius it can expect at the full budget
      (``predictor``: from its current frequency, or from all successes on the
      remaining draws).
    * **fixed** (neither): plain CERTIFY with a single look at the budget (for
      hard votes with ``method="spending"``, bit-identical to Clopper-Pearson).

    Two ways of paying for the looks (``method``):

    * ``"spending"``: a fixed-n bound at each look ``k`` at level ``alpha_k``
      (:func:`spend_alpha`) -- Clopper-Pearson for hard
      votes, ``soft_bound`` (Bentkus by default) for soft votes. By a union bound
      over the looks, the bound reported at any stop is valid at ``alpha``.
    * ``"betting"``: the anytime-valid :class:`BettingConfidenceSequence` at level
      ``alpha`` (exact on votes, two-point bound on soft scores), with bets tuned
      to the target in target mode.

    In every mode and status, ``result().p_lower`` is a lower confidence bound of
    ``p_A`` valid at level ``alpha`` (for the pair of the row's class and
    covariance), so the certified radius ``Phi^-1(p_lower)`` is at least the
    target radius when a row is certified.

    Parameters
    ----------
    n_rows : int
        Number of inputs.
    budget : int, default=100_000
        Largest number of estimation draws per row (the last look).
    alpha : float, default=0.001
        Failure probability of each row's bound.
    vote : {"hard", "soft"}, default="hard"
        Hard: per-block counts of top-class votes; soft: per-draw top-class scores.
    target_p : float or array-like of shape (n_rows,), optional
        Target probability of each row, in (0, 1).
    radius_tol : float, optional
        Relative radius tolerance, in (0, 1).
    method : {"spending", "betting"}, default="spending"
    first_look : int, optional
        First look; default 32 with a target, 100 with a tolerance, and (fixed
        mode) the budget for ``"spending"`` or 1 for ``"betting"``.
    ratio : float, default=2
        Growth factor of the looks.
    spending : {"auto", "uniform", "sqrt", "proportional"} or float, default="auto"
        ``"spending"`` only: how ``alpha`` is split over the looks (see
        :func:`spend_alpha`). ``"auto"``: ``"uniform"`` with a target (a stop at
        any look is as good as another), ``"sqrt"`` with a tolerance (it keeps
        more of ``alpha`` for the late looks, where most of the radius is).
    futility_alpha : float, optional
        Level of the upper bound of the futility rule (target mode); default
        ``alpha``. Futility never affects the validity of a claim, only power.
    futility : {"budget", "upper"}, default="budget"
        Target mode: a row stops futile when, with ``p`` at its upper bound,
        the bound at the last look would stay below the target (``"budget"``:
        the budget cannot get there), or only when the upper bound itself is
        below the target (``"upper"``). Rows whose target no look could reach
        even with all successes stop in both cases.
    predictor : {"frequency", "optimistic"}, default="frequency"
        Tolerance mode: the radius expected at the budget, from the current
        frequency or from all successes on the remaining draws.
    soft_bound : {"bentkus", "kl"}, default="bentkus"
        Fixed-n bound of soft votes with ``"spending"``.
    prior : (float, float), default=(1.0, 0.05)
        Pseudo-observations of the betting plug-in estimate.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> from smoothcert._certify._sequential import SequentialCertifier
    >>> rng = np.random.default_rng(0)
    >>> p_true = np.array([1.0, 0.999, 0.7, 0.5])
    >>> cert = SequentialCertifier(4, target_p=norm.cdf(1.0))
    >>> rows = np.arange(4)
    >>> while rows.size:
    ...     look = cert.next_look(rows)
    ...     n_new = look - cert.n_seen[rows]
    ...     cert.update(rows, rng.binomial(n_new, p_true[rows]), n_new)
    ...     rows = rows[~cert.decide(rows, look)]
    >>> res = cert.result()
    >>> res.status.tolist()
    ['certified', 'certified', 'futile', 'futile']
    >>> res.n_draws.tolist()
    [64, 64, 128, 32]
    >>> bool(np.all(res.radius[:2] >= 1.0))
    True
    """

    def __init__(
        self,
        n_rows,
        *,
        budget=100_000,
        alpha=0.001,
        vote="hard",
        target_p=None,
        radius_tol=None,
        method="spending",
        first_look=None,
        ratio=2.0,
        spending="auto",
        futility_alpha=None,
        futility="budget",
        predictor="frequency",
        soft_bound="bentkus",
        prior=DEFAULT_PRIOR,
    ):
        self.n_rows = _check_int(n_rows, "n_rows")
        self.budget = _check_int(budget, "budget")
        if self.budget >= 2**31:
            raise ValueError("budget must stay below 2**31 draws.")
        self.alpha = float(_check_alpha(alpha))
        if vote not in ("hard", "soft"):
            raise ValueError(f"vote must be 'hard' or 'soft', got {vote!r}.")
        if method not in ("spending", "betting"):
            raise ValueError(f"method must be 'spending' or 'betting', got {method!r}.")
        if predictor not in ("frequency", "optimistic"):
            raise ValueError(f"predictor must be 'frequency' or 'optimistic', got {predictor!r}.")
        if soft_bound not in ("bentkus", "kl"):
            raise ValueError(f"soft_bound must be 'bentkus' or 'kl', got {soft_bound!r}.")
        if predictor == "optimistic" and method == "betting":
            raise ValueError("predictor='optimistic' is implemented for method='spending' only.")
        if target_p is not None and radius_tol is not None:
            raise ValueError("give target_p or radius_tol, not both.")
        self.vote, self.method, self.predictor, self.soft_bound = (
            vote,
            method,
            predictor,
            soft_bound,
        )
        if target_p is not None:
            target_p = np.broadcast_to(
                np.asarray(target_p, dtype=np.float64), (self.n_rows,)
            ).copy()
            if np.any(~np.isfinite(target_p)) or np.any((target_p <= 0.0) | (target_p >= 1.0)):
                raise ValueError("target_p must lie in the open interval (0, 1).")
            self.mode = "target"
        elif radius_tol is not None:
            radius_tol = float(radius_tol)
            if not (0.0 < radius_tol < 1.0):
                raise ValueError(
                    f"radius_tol must lie in the open interval (0, 1), got {radius_tol!r}."
                )
            self.mode = "tol"
        else:
            self.mode = "fixed"
        self.target_p, self.radius_tol = target_p, radius_tol
        if first_look is None:
            if self.mode == "fixed":
                first_look = 1 if method == "betting" else self.budget
            else:
                first_look = DEFAULT_FIRST_LOOK[self.mode]
        self._start_looks(geometric_looks(first_look, self.budget, ratio))
        n_looks = self._looks.size
        if method == "spending":
            if isinstance(spending, str) and spending == "auto":
                spending = "sqrt" if self.mode == "tol" else "uniform"
            self.levels = spend_alpha(self.alpha, self._looks, spending)
        else:
            if not (isinstance(spending, str) and spending == "auto"):
                raise ValueError("spending applies to method='spending' only.")
            self.levels = np.full(n_looks, self.alpha)
        if futility not in ("budget", "upper"):
            raise ValueError(f"futility must be 'budget' or 'upper', got {futility!r}.")
        self.futility = futility
        self.futility_alpha = (
            self.alpha if futility_alpha is None else float(_check_alpha(futility_alpha))
        )
        self.n_seen = np.zeros(self.n_rows, dtype=np.int64)
        self._s1 = np.zeros(self.n_rows, dtype=np.int64)
        self._p_lower = np.zeros(self.n_rows)
        self._n_used = np.zeros(self.n_rows, dtype=np.int64)
        self._cs = None
        if method == "betting":
            horizon = self.budget if self.mode == "fixed" else None
            self._cs = BettingConfidenceSequence(
                self.n_rows,
                self._looks,
                self.alpha,
                target=target_p if self.mode == "target" else None,
                horizon=horizon,
                prior=prior,
            )





    # -- feeding ------------------------------------------------------------

    def update(self, rows, block, n_draws=None):
        """Feed one block of estimation draws for ``rows``.

        Parameters
        ----------
        rows : array-like of int
            Distinct running rows.
        block : ndarray
            Hard votes: per-row count of top-class votes, int array ``(r,)``
            (with ``n_draws``), or 0/1 votes ``(r, m)``. Soft votes: per-draw
            top-class scores, float array ``(r, m)`` in [0, 1], in draw order.
        n_draws : int or array-like of int, optional
            Draws in the block, for hard counts.

        A block must not go beyond a row's next look (:meth:`next_look`).
        """
        rows = _check_rows(rows, self.n_rows)
        self._check_running(rows)
        block = np.asarray(block)
        if self.vote == "hard":
            if block.ndim == 2:
                if np.any((block != 0) & (block != 1)):
                    raise ValueError("hard votes given per draw must be 0 or 1.")
                if n_draws is not None and np.any(np.asarray(n_draws) != block.shape[1]):
                    raise ValueError("n_draws does not match the block's number of columns.")
                n_draws = block.shape[1]
                block = block.sum(axis=1)
            if block.ndim != 1 or block.shape[0] != rows.size:
                raise ValueError(f"block must hold one vote count per row ({rows.size}).")
            if n_draws is None:
                raise ValueError("n_draws is required with hard vote counts.")
            counts, n_draws = _check_counts(block, n_draws, rows.size)
            s1 = counts * np.int64(2**32)
            s2 = s1
        else:
            if n_draws is not None and np.any(np.asarray(n_draws) != np.shape(block)[-1]):
                raise ValueError("n_draws does not match the block's number of columns.")
            block = _check_scores(block)
            if block.shape[0] != rows.size:
                raise ValueError(f"block has {block.shape[0]} rows, rows has {rows.size}.")
            n_draws = np.full(rows.size, block.shape[1], dtype=np.int64)
            s1, s2 = score_sums(block)
        self._count_draws(rows, n_draws)
        self._s1[rows] += s1
        if self._cs is not None:
            self._cs.update_sums(rows, n_draws, s1, s2)

    # -- decisions ----------------------------------------------------------

    def _bound(self, successes, n, level):
        if self.vote == "hard":
            return clopper_pearson_lower(np.round(successes), n, level)
        mean = np.clip(successes / n, 0.0, 1.0)
        if self.soft_bound == "kl":
            return kl_lower_bound(mean, n, level)
        return bentkus_lower_bound(mean, n, level)

    def _upper(self, successes, n, level):
        if self.vote == "hard":
            return clopper_pearson_upper(np.round(successes), n, level)
        return kl_upper_bound(np.clip(successes / n, 0.0, 1.0), n, level)

    def _successes(self, rows):
        if self.vote == "hard":
            return (self._s1[rows] // np.int64(2**32)).astype(np.float64)
        return self._s1[rows] / SCORE_UNIT

    def _unreachable(self, rows, successes, n, look):
        """Rows whose target no future look could reach, even with all successes."""
        target = self.target_p[rows]
        if self.method == "betting":
            log_now = self._cs._target_log[rows]
            gain = (self.budget - n) * np.log(1.0 / target)
            return (log_now + gain < self._cs.threshold) & (
                self._cs._target_best[rows] < self._cs.threshold
            )
        reachable = np.zeros(rows.size, dtype=bool)
        for j in range(look + 1, self._looks.size):
            n_j = float(self._looks[j])
            best = successes + (n_j - n)
            todo = ~reachable
            if self.vote == "soft":
                # Bentkus is never below the relative-entropy bound: a cheap first pass.
                quick = (
                    kl_lower_bound(np.clip(best / n_j, 0.0, 1.0), n_j, self.levels[j]) >= target
                )
                reachable |= quick
                todo &= ~quick
            if np.any(todo):
                reachable[todo] |= self._bound(best[todo], n_j, self.levels[j]) >= target[todo]
        return ~reachable

    def decide(self, rows, n_seen):
        """Decide at a look which rows stop.

        Parameters
        ----------
        rows : array-like of int
            Distinct running rows, all at a look.
        n_seen : int or array-like of int
            Draws seen by each row (a check: it must equal the row's count and
            its next look).

        Returns
        -------
        stop : ndarray of bool, shape (len(rows),)
            Rows that stop now (certified, futile or budget exhausted).
        """
        rows = _check_rows(rows, self.n_rows)
        self._check_running(rows)
        n_seen = np.broadcast_to(np.asarray(n_seen), rows.shape)
        if np.any(n_seen != self.n_seen[rows]):
            raise ValueError("n_seen does not match the draws fed to these rows.")
        if np.any(n_seen != self.next_look(rows)):
            raise ValueError("n_seen must be each row's next look (see next_look).")
        look = self._decided[rows]
        last = look == self._looks.size - 1
        n = n_seen.astype(np.float64)
        successes = self._successes(rows)
        if self.method == "spending":
            lower = self._bound(successes, n, self.levels[look])
        else:
            lower = self._cs.lower_bound(rows)
        certified = np.zeros(rows.size, dtype=bool)
        futile = np.zeros(rows.size, dtype=bool)
        if self.mode == "target":
            target = self.target_p[rows]
            if self.method == "spending":
                certified = lower >= target
            else:
                certified = self._cs.target_log_capital(rows) >= self._cs.threshold
            futile = ~certified & ~last
            if np.any(futile):
                idx = np.flatnonzero(futile)
                upper = self._upper(successes[idx], n[idx], self.futility_alpha)
                if self.futility == "budget":
                    # even if p were as large as its upper bound, the test at
                    # the last look would not reach the target
                    at_budget = upper * self.budget
                    if self.vote == "hard":
                        at_budget = np.floor(at_budget)
                    reach = self._bound(at_budget, float(self.budget), self.levels[-1])
                    upper_low = reach < target[idx]
                else:
                    upper_low = upper < target[idx]
                rest = idx[~upper_low]
                if rest.size:
                    hopeless = np.zeros(rest.size, dtype=bool)
                    for k in np.unique(look[rest]):
                        sel = look[rest] == k
                        hopeless[sel] = self._unreachable(
                            rows[rest[sel]], successes[rest[sel]], n[rest[sel]], int(k)
                        )
                    upper_low[~upper_low] = hopeless
                futile[idx] = upper_low
        elif self.mode == "tol":
            r_now = mahalanobis_radius(lower)
            expected = self._expected_radius(rows, successes, n)
            good = r_now >= (1.0 - self.radius_tol) * expected
            certified = good & (lower > 0.5) & ~last
            futile = good & ~certified & ~last
        stop = certified | futile | last
        self._decided[rows] += 1
        self._p_lower[rows] = lower
        status = np.where(
            certified, _CERTIFIED, np.where(futile, _FUTILE, np.where(last, _EXHAUSTED, _RUNNING))
        )
        if self.mode == "target":
            status = np.where(last & certified, _CERTIFIED, status)
        self._status[rows] = status
        self._n_used[rows[stop]] = n_seen[stop]
        return stop

    def _expected_radius(self, rows, successes, n):
        budget = float(self.budget)
        if self.predictor == "optimistic":
            at_budget = successes + (budget - n)
        else:
            at_budget = successes / n * budget
        if self.method == "betting":
            return mahalanobis_radius(self._cs.projected_lower_bound(self.budget, rows))
        if self.vote == "hard":
            at_budget = np.round(at_budget)
        return mahalanobis_radius(self._bound(at_budget, budget, self.levels[-1]))

    def result(self):
        """Per-row bound, draws used and status (see :class:`SequentialResult`)."""
        n_draws = np.where(self._status == _RUNNING, self.n_seen, self._n_used)
        return SequentialResult(
            self._p_lower.copy(),
            n_draws.astype(np.int64),
            _STATUS_NAMES[self._status],
            None if self.target_p is None else self.target_p.copy(),
        )
