"""Covariance searches: one class per parametrization of the noise, behind one interface.

A search takes the rows of ``X`` and returns one noise covariance per row
(:class:`~smoothcert._geometry._forms.RowCovariances`). Every search is a
chain of *stages* (:mod:`._stages`), one per covariance form, each started
from the previous stage's optimum (isotropic, then diagonal, then a full SPD
matrix or its low-rank form). A stage owns the mathematics of its form
(parameters, bounds, tangent, step, the projections of the gradient
estimates and of the shape term's gradient, the adaptive-moment policy); the
search owns the objective and the loop, and every stage runs the same
**projected adaptive-moment ascent** of

    ``J(Sigma) = gap(Sigma) * M(Sigma)``,
    ``gap = Phi^-1(psi_A) - Phi^-1(psi_B)``,

with ``psi_A >= psi_B`` the two largest smoothed scores of ``x`` under
``N(0, Sigma)``, each clipped into ``[1 - max_probability, max_probability]``
(where a score is clipped, its gradient is zero), and the shape term
``M = det(Sigma)^(1/(2d)) + kappa sqrt(lambda_min(Sigma))`` (``"volume"``:
the certified volume, ANCER's proxy radius, plus the inscribed ball, with
ANCER's ``kappa = 2`` except in the full stage, ``kappa = 1``) or
``M = sqrt(lambda_min(Sigma))`` (``"ball"``).

Each iteration makes one Monte-Carlo pass through the engine
(:func:`~._gradients.search_statistics`): the smoothed scores and the
gradient of ``E[h]``, ``h = sum_c w_c F_c`` with ``w = d gap / d psi`` read
from the previous pass, on the stage's whitened tangent -- pathwise (autograd
through a torch base) or score-function (any black box: the natural-gradient
estimator of evolution strategies). The gradient of ``J`` is then
``M grad(gap) + gap grad(M)``, and the step is the adaptive-moment direction
(Adam: first and second moments of the gradient, bias-corrected) times the
learning rate, in the log of the noise scales, projected back into the bounds:

* ``IsotropicSearch``: one log-scale per row;
* ``DiagonalSearch``: one log-scale per feature and row (moments per
  coordinate, as ANCER's ascent);
* ``RiemannianSearch``: the full SPD matrix moved by the exponential map of
  the Fisher-Rao metric, ``Sigma^(1/2) expm(W) Sigma^(1/2)``, with the second
  moment of the whole whitened gradient (a per-row scalar, so the step does
  not depend on the basis the inputs are written in); above
  ``MAX_FULL_FEATURES`` features it optimizes the low-rank form;
* ``LowRankSearch``: ``(D^-1 + V V^T)^-1``, a diagonal shrunk along a few
  directions that follow the gradient of the smoothed score (the boundary
  normal), at ``O(d)`` cost per draw.

Every noise scale stays at least the row's isotropic optimum in the diagonal
and low-rank stages (the *superset* floor: the certified ellipsoid contains
the isotropic ball, as ANCER's) and at least 0.7 times it in the full stage,
which must thin the noise across a curved boundary to turn along it; and at
most the cap of ``sigma_bounds``.
"""

import numbers
import time

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from .._engine._loop import noise_dimension, sample
from .._engine._streams import optimization_stage
from .._geometry._forms import RowCovariances
from ._gradients import SearchScores, search_statistics
from ._objectives import shape_factor
from ._stages import AdamMoments, DiagonalStage, FullStage, IsotropicStage, LowRankStage

__all__ = [
    "CovarianceSearch",
    "FixedNoise",
    "IsotropicSearch",
    "DiagonalSearch",
    "RiemannianSearch",
    "LowRankSearch",
    "MAX_FULL_FEATURES",
    "make_search",
]

#: Above this dimension ``RiemannianSearch`` optimizes the low-rank form
#: (a full ``d x d`` eigendecomposition per input and step would dominate).
MAX_FULL_FEATURES = 512
#: Most floats held by the per-block optimization state.
_STATE_BUDGET = 2**24
#: Draws of the end-of-stage check, in units of ``n_samples_optim``.
CHECK_FACTOR = 4
#: A row of a stage that stops when converged (the isotropic one) stops once
#: the mean of its objective over the last ``CONVERGENCE_WINDOW`` iterations
#: is at most ``1 + CONVERGENCE_TOL`` times that of the window before. (With
#: 20 iterations and 1 %, rows of the moons' pathwise search stopped while
#: still rising: -0.05 to -0.18 nats.)
CONVERGENCE_WINDOW = 25
CONVERGENCE_TOL = 0.0


def clipped_gap(psi, max_probability):
    """The top-two gap ``Phi^-1(psi_A) - Phi^-1(psi_B)`` (clipped) and ``d gap / d psi``.

    Parameters
    ----------
    psi : ndarray of shape (n, n_classes)
        Smoothed scores (or vote frequencies).
    max_probability : float
        Both scores are clipped into ``[1 - max_probability, max_probability]``;
        the derivative is zero where a score is clipped.

    Returns
    -------
    gap : ndarray of shape (n,)
    weights : ndarray of shape (n, n_classes)
    """
    n = psi.shape[0]
    rows = np.arange(n)
    order = np.argsort(-psi, axis=1, kind="stable")
    a, b = order[:, 0], order[:, 1]
    lo, hi = 1.0 - max_probability, max_probability
    pa, pb = psi[rows, a], psi[rows, b]
    za = stats.norm.ppf(np.clip(pa, lo, hi))
    zb = stats.norm.ppf(np.clip(pb, lo, hi))
    weights = np.zeros_like(psi)
    weights[rows, a] = np.where((pa > lo) & (pa < hi), 1.0 / stats.norm.pdf(za), 0.0)
    weights[rows, b] = np.where((pb > lo) & (pb < hi), -1.0 / stats.norm.pdf(zb), 0.0)
    return za - zb, weights


class _Block:
    """The Monte-Carlo calls of one search on a block of rows, through the engine."""

    def __init__(self, adapter, X, n_draws, gradient, common):
        self.adapter, self.X, self.n_draws = adapter, X, n_draws
        self.gradient, self.votes = gradient, "soft"
        self.has_proba = getattr(adapter, "has_proba", True)
        self.common = common

    def rows(self, index):
        """The same calls on the rows ``index`` only (their draws do not change: row-keyed streams)."""
        block = _Block(self.adapter, self.X[index], self.n_draws, self.gradient, self.common)
        block.votes, block.has_proba = self.votes, self.has_proba
        return block

    def scores(self, covs, tag, n_draws=None):
        (psi,) = sample(self.adapter, self.X, covs, n_draws or self.n_draws,
                        SearchScores(self.adapter.n_classes, self.votes), stage=tag, **self.common)
        return psi

    def statistics(self, covs, tag, weights, *, basis=None, diagonal=False, projection=None):
        return search_statistics(
            self.adapter, self.X, covs, self.n_draws, stage=tag, weights=weights, gradient=self.gradient,
            votes=self.votes, basis=basis, diagonal=diagonal, projection=projection, **self.common,
        )


class CovarianceSearch(BaseEstimator):
    """Base class of the covariance searches (not used directly).

    Parameters
    ----------
    learning_rate : float, default=0.05
        Step of the adaptive-moment ascent, in the log of the noise scales:
        each iteration changes a scale by a factor of about
        ``exp(learning_rate)`` at most.
    objective : {"volume", "ball"}, default="volume"
        Shape term of the objective ``gap * M``: ``"volume"``,
        ``M = det(Sigma)^(1/(2d)) + kappa sqrt(lambda_min)``; ``"ball"``,
        ``M = sqrt(lambda_min)``.
    kappa : float or "auto", default="auto"
        Weight of the inscribed-ball term of ``"volume"``. ``"auto"``: each
        stage's own (:attr:`~._stages.SearchStage.auto_kappa`): 2 (ANCER's)
        in the isotropic, diagonal and low-rank stages, 1 in the full stage,
        where a heavier ball term keeps the ellipsoids round (measured on the
        benchmarks page).
    gradient : {"auto", "score", "pathwise"}, default="auto"
        ``"pathwise"``: autograd through a skorch / torch base model;
        ``"score"``: score-function estimates, for any black box; ``"auto"``:
        pathwise where the base model has input gradients.
    max_probability : float, default=0.999
        Smoothed scores are clipped into ``[1 - max_probability,
        max_probability]`` in the gap.
    sigma_bounds : tuple of two floats, default=(0.25, 10.0)
        Bounds of the noise scales, in units of the estimator's ``sigma``:
        every scale at least ``sigma_bounds[0] * sigma``, capped as
        ``scale_cap`` says by ``sigma_bounds[1] * sigma``. The cap stops
        noise from growing without end far from any decision boundary.
    scale_cap : {"volume", "axis"}, default="volume"
        ``"volume"``: the geometric mean of the scales at most
        ``sigma_bounds[1] * sigma`` and each scale at most
        ``sigma_bounds[1]^2 / sigma_bounds[0] * sigma`` (an ellipsoid may be
        long along a boundary and thin across it); ``"axis"``: every scale at
        most ``sigma_bounds[1] * sigma``.
    floor : {"isotropic", "bounds"}, default="isotropic"
        Smallest scale of the stages after the first: the row's isotropic
        optimum times the stage's
        :attr:`~._stages.SearchStage.floor_fraction` (1 in the diagonal and
        low-rank stages: the certified ellipsoid then contains the isotropic
        ball; 0.7 in the full stage), or ``sigma_bounds[0] * sigma``; never
        below ``sigma_bounds[0] * sigma``.
    votes : {"auto", "hard", "soft"}, default="auto"
        What score-function estimates read: the base model's
        ``predict_proba`` scores (``"soft"``: smooth and informative where
        every vote agrees, which favours the isotropic and diagonal stages),
        its predicted labels (``"hard"``: the votes hard-vote CERTIFY counts,
        whose failures locate the boundary sharply), or ``"auto"``: soft in
        the isotropic and diagonal stages, hard in the full and low-rank
        ones. Models without ``predict_proba`` always use their votes;
        pathwise estimates always differentiate the scores.
    """

    #: The stages optimized, in order (subclasses): one :class:`~._stages.SearchStage` per form.
    _stages = ()

    _parameter_constraints: dict = {
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "objective": [StrOptions({"volume", "ball"})],
        "kappa": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"})],
        "gradient": [StrOptions({"auto", "score", "pathwise"})],
        "max_probability": [Interval(numbers.Real, 0.5, 1, closed="neither")],
        "sigma_bounds": [tuple, list],
        "scale_cap": [StrOptions({"volume", "axis"})],
        "floor": [StrOptions({"isotropic", "bounds"})],
        "votes": [StrOptions({"auto", "soft", "hard"})],
    }

    def __init__(self, *, learning_rate=0.05, objective="volume", kappa="auto", gradient="auto",
                 max_probability=0.999, sigma_bounds=(0.25, 10.0), scale_cap="volume", floor="isotropic",
                 votes="auto"):
        self.learning_rate = learning_rate
        self.objective = objective
        self.kappa = kappa
        self.gradient = gradient
        self.max_probability = max_probability
        self.sigma_bounds = sigma_bounds
        self.scale_cap = scale_cap
        self.floor = floor
        self.votes = votes

    # ----------------------------------------------------------------- checks
    def check(self, sigma):
        """Validate the parameters (before any draw); return ``(low, high)`` scales.

        ``high`` is the largest any single scale may reach.
        """
        self._validate_params()
        bounds = self.sigma_bounds
        if (
            len(bounds) != 2
            or not all(isinstance(b, numbers.Real) and np.isfinite(b) for b in bounds)
            or not 0 < bounds[0] <= 1 <= bounds[1]
        ):
            raise ValueError(
                "sigma_bounds must be two finite numbers (low, high) with "
                f"0 < low <= 1 <= high, got {bounds!r}."
            )
        low, high = (float(b) for b in bounds)
        largest = high**2 / low if self.scale_cap == "volume" else high
        return low * float(sigma), largest * float(sigma)

    def stages(self, n_features):
        """The stages optimized at dimension ``n_features``, in order.

        Each is a search stage (``smoothcert._search._stages``) whose ``kind``
        names its covariance form.
        """
        return self._stages

    def n_predictions(self, n_iter, n_samples_optim, n_features):
        """Base-model predictions per input, at most: per stage, ``n_iter + 1`` passes and the end check.

        The isotropic stage stops a row once its objective stops rising, so it
        may make fewer.
        """
        n_draws = 2 * (-(-int(n_samples_optim) // 2))
        stages = self.stages(n_features)
        return 0 if n_iter == 0 else len(stages) * (int(n_iter) + 1 + 2 * CHECK_FACTOR) * n_draws

    # ----------------------------------------------------------------- search
    def search(self, adapter, X, *, sigma, n_iter, n_samples_optim, seed, batch_size, progress=None):
        """Optimize one noise covariance per row of ``X``.

        Parameters
        ----------
        adapter : base-model adapter
        X : ndarray of shape (n, d)
        sigma : float
            Starting noise level.
        n_iter : int
            Iterations per stage.
        n_samples_optim : int
            Draws per row and iteration (antithetic pairs); independent of the
            certification draws.
        seed : tuple of int
        batch_size : int
        progress : Progress, default=None

        Returns
        -------
        covariances : RowCovariances
        info : dict
            ``stages`` (form names), ``seconds_per_iteration`` per stage and
            ``n_base_predictions`` per input.
        """
        n, d = X.shape[0], noise_dimension(adapter, X)
        stages = self.stages(d) if n_iter > 0 else ()
        info = {"stages": [stage.kind for stage in stages], "seconds_per_iteration": {},
                "n_base_predictions": self.n_predictions(n_iter, n_samples_optim, d) if stages else 0}
        if not stages:
            return RowCovariances.isotropic(np.full(n, float(sigma) ** 2), d), info
        gradient = self.gradient
        if gradient == "auto":
            gradient = "pathwise" if adapter.supports_gradient else "score"
        elif gradient == "pathwise" and not adapter.supports_gradient:
            raise ValueError("gradient='pathwise' needs a skorch/torch base model.")
        n_draws = 2 * (-(-int(n_samples_optim) // 2))
        common = dict(seed=seed, batch_size=batch_size, progress=progress)
        per_row = 4 * d * max(int(np.prod(stage.tangent_shape(d))) // d for stage in stages)
        block = max(1, min(n, _STATE_BUDGET // max(per_row, 1)))
        parts = []
        for start in range(0, n, block):
            rows = slice(start, min(n, start + block))
            sampler = _Block(adapter, X[rows], n_draws, gradient, common)
            parts.append(self._search_block(sampler, stages, float(sigma), int(n_iter), info))
        return RowCovariances.concatenate(parts), info

    def _search_block(self, sampler, stages, sigma, n_iter, info):
        n, d = sampler.X.shape[0], noise_dimension(sampler.adapter, sampler.X)
        low_scale = float(self.sigma_bounds[0]) * sigma
        high_scale = float(self.sigma_bounds[1]) * sigma
        bounds_floor = np.full(n, 2.0 * np.log(low_scale))
        isotropic = None
        cap = np.full(n, 2.0 * np.log(high_scale))
        volume = None
        if self.scale_cap == "volume":
            volume = cap.copy()
            cap = cap + 2.0 * np.log(float(self.sigma_bounds[1]) / float(self.sigma_bounds[0]))
        theta, previous = np.full(n, 2.0 * np.log(sigma)), None
        for phase, stage in enumerate(stages):
            start = time.perf_counter()
            sampler.votes = self._stage_votes(stage, sampler)
            theta = stage.parameters_from(previous, theta, d)
            floor = bounds_floor
            if isotropic is not None:
                floor = np.maximum(isotropic + 2.0 * np.log(stage.floor_fraction), bounds_floor)
            low, high = stage.bounds(floor, cap)
            end, passes = self._ascent(phase, stage, theta, low, high, volume, sampler, n_iter)
            theta = self._checked(phase, stage, theta, end, sampler, n_iter)
            info["seconds_per_iteration"].setdefault(stage.kind, []).append(
                (time.perf_counter() - start) / max(1, passes))
            previous = stage
            if phase == 0 and self.floor == "isotropic":
                isotropic = theta.copy()
        return previous.from_parameters(theta, d)

    def _stage_votes(self, stage, sampler):
        """What the stage's score-function estimates read (see ``votes``)."""
        if sampler.gradient != "score":
            return "soft"  # pathwise estimates differentiate the scores
        if not sampler.has_proba:
            return "hard"
        return stage.auto_votes if self.votes == "auto" else self.votes

    def _kappa(self, stage):
        """Weight of the inscribed-ball term in ``stage`` (see ``kappa``)."""
        return stage.auto_kappa if isinstance(self.kappa, str) else float(self.kappa)

    def _objective(self, stage, psi, covs):
        gap, _ = clipped_gap(psi, self.max_probability)
        return gap * shape_factor(covs, self.objective, self._kappa(stage))

    def _checked(self, phase, stage, start, end, sampler, n_iter):
        """The stage's end, or its start where the start scores higher on fresh draws.

        Both are evaluated on the same ``CHECK_FACTOR * n_samples_optim``
        draws (common random numbers), independent of the ascent's: a row
        never leaves a stage worse, by this estimate, than it entered it.
        """
        d = noise_dimension(sampler.adapter, sampler.X)
        tag = optimization_stage(phase, n_iter + 1)
        n_draws = CHECK_FACTOR * sampler.n_draws
        covs_start, covs_end = stage.from_parameters(start, d), stage.from_parameters(end, d)
        j_start = self._objective(stage, sampler.scores(covs_start, tag, n_draws), covs_start)
        j_end = self._objective(stage, sampler.scores(covs_end, tag, n_draws), covs_end)
        back = j_end < j_start
        if not np.any(back):
            return end
        out = end.copy()
        out[back] = start[back]
        return out

    # ----------------------------------------------------------------- ascent
    def _ascent(self, phase, stage, theta, low, high, volume, sampler, n_iter):
        """Projected adaptive-moment ascent of ``gap * M`` on one stage.

        In a stage that stops when converged, a row leaves the ascent once its
        objective no longer rises (see ``CONVERGENCE_WINDOW``) and the ascent
        ends when none is left. A row's draws are keyed by the row, so the rows
        still ascending get the draws they would get with every row: a row's
        result does not depend on the others.

        Returns the parameters and the number of passes made (at most ``n_iter``).
        """
        d = noise_dimension(sampler.adapter, sampler.X)
        n, window = len(theta), CONVERGENCE_WINDOW
        moments = AdamMoments()
        theta = theta.copy()  # the stage's start stays as it is (the end-of-stage check reads it)
        _, weights = clipped_gap(sampler.scores(stage.from_parameters(theta, d), optimization_stage(phase, n_iter)),
                                 self.max_probability)
        path = np.zeros((n, d))
        history = np.zeros((n_iter, n))
        active = np.arange(n)
        passes = 0
        for t in range(n_iter):
            every = len(active) == n
            rows, part = (slice(None), sampler) if every else (active, sampler.rows(active))
            covs = stage.from_parameters(theta[rows], d)
            # the weights d gap / d psi of each pass come from the previous one
            tangent, weights[rows], path[rows], history[t, rows] = self._gradient(
                stage, covs, weights[rows], part, optimization_stage(phase, t), path[rows])
            if not every:
                # every row's moments move (zero gradients for the stopped
                # rows, whose moments are no longer read): one step count
                full = np.zeros((n,) + stage.tangent_shape(d))
                full[active] = tangent
                tangent = full
            direction = stage.direction(moments, tangent, self.learning_rate)
            theta[rows] = stage.step(theta[rows], direction if every else direction[active], low[rows], high[rows],
                                     None if volume is None else volume[rows])
            passes = t + 1
            if stage.stops_when_converged and passes >= 2 * window:
                recent = history[passes - window:passes, active].mean(axis=0)
                before = history[passes - 2 * window:passes - window, active].mean(axis=0)
                done = recent <= (1.0 + CONVERGENCE_TOL) * before
                if np.any(done):
                    progress = getattr(sampler, "common", {}).get("progress")
                    if progress is not None:  # the passes the stopped rows skip
                        progress.update(int(done.sum()) * (n_iter - passes) * sampler.n_draws)
                    active = active[~done]
                    if not active.size:
                        break
        return theta, passes

    def _gradient(self, stage, covs, weights, sampler, tag, path):
        """Whitened natural gradient of ``J = gap * M`` on the stage's tangent.

        Returns the gradient, the gap's weights at this pass's scores (for the
        next pass), the updated ``path`` (the running input gradient, which
        stages that follow the boundary normal read) and the objective ``J``
        at this pass.
        """
        psi, moment, path = stage.estimate(sampler, covs, tag, weights, path)
        gap, weights = clipped_gap(psi, self.max_probability)
        kappa = self._kappa(stage)
        shape = shape_factor(covs, self.objective, kappa)
        return stage.gradient(moment, covs, gap, shape, self.objective, kappa), weights, path, gap * shape


class FixedNoise(CovarianceSearch):
    """No search: every input keeps ``sigma^2 I`` (Cohen et al.'s smoothing).

    Examples
    --------
    >>> from smoothcert.search import FixedNoise
    >>> FixedNoise().stages(10)
    ()
    """

    _stages = ()


class IsotropicSearch(CovarianceSearch):
    """Per-input isotropic noise ``sigma_x^2 I`` (data-dependent smoothing, DDRS).

    The ascent moves ``log sigma_x``. Parameters as in :class:`CovarianceSearch`.

    Examples
    --------
    >>> from smoothcert.search import IsotropicSearch
    >>> [stage.kind for stage in IsotropicSearch(learning_rate=0.1).stages(784)]
    ['isotropic']
    """

    _stages = (IsotropicStage(),)


class DiagonalSearch(CovarianceSearch):
    """Per-input diagonal noise ``diag(s_x^2)`` (ANCER), started from the isotropic optimum.

    The ascent moves each ``log s_i`` with its own moments. Parameters as in
    :class:`CovarianceSearch`.

    Examples
    --------
    >>> from smoothcert.search import DiagonalSearch
    >>> [stage.kind for stage in DiagonalSearch().stages(2)]
    ['isotropic', 'diagonal']
    """

    _stages = (IsotropicStage(), DiagonalStage())


class RiemannianSearch(CovarianceSearch):
    """Per-input full SPD covariance, moved on the manifold with the Fisher-Rao metric.

    Isotropic, then diagonal, then full matrices stepped by the exponential
    map ``Sigma^(1/2) expm(W) Sigma^(1/2)`` (every iterate SPD); the step's
    second moment is that of the whole whitened gradient, so the search
    commutes with rotations of the input space. Above
    ``MAX_FULL_FEATURES`` features the last stage is the low-rank form of
    :class:`LowRankSearch`. Parameters as in :class:`CovarianceSearch`.

    Examples
    --------
    >>> from smoothcert.search import RiemannianSearch
    >>> [stage.kind for stage in RiemannianSearch().stages(2)]
    ['isotropic', 'diagonal', 'full']
    >>> [stage.kind for stage in RiemannianSearch().stages(784)]
    ['isotropic', 'diagonal', 'lowrank']
    """

    _stages = (IsotropicStage(), DiagonalStage(), FullStage())

    def stages(self, n_features):
        if n_features > MAX_FULL_FEATURES:
            return LowRankSearch._stages
        return self._stages


class LowRankSearch(CovarianceSearch):
    """Per-input ``(D^-1 + V V^T)^-1``: a diagonal shrunk along a few learned directions.

    After the isotropic and diagonal stages, the diagonal ``D`` keeps moving
    while ``V`` follows the running gradient of the smoothed score (the
    boundary normal) and the form's own directions: ``O(d)`` numbers per
    input, any orientation. Parameters as in :class:`CovarianceSearch`.

    Examples
    --------
    >>> from smoothcert.search import LowRankSearch
    >>> [stage.kind for stage in LowRankSearch().stages(784)]
    ['isotropic', 'diagonal', 'lowrank']
    """

    _stages = (IsotropicStage(), DiagonalStage(), LowRankStage())


#: The search each ``method`` string builds.
SEARCHES = {
    "fixed": FixedNoise,
    "isotropic": IsotropicSearch,
    "diagonal": DiagonalSearch,
    "riemannian": RiemannianSearch,
    "lowrank": LowRankSearch,
}


def make_search(method, search=None):
    """The search an estimator runs: ``search`` if given, else the default one of ``method``."""
    if search is not None:
        if not isinstance(search, CovarianceSearch):
            raise TypeError(
                "search must be a covariance search (e.g. smoothcert.search.DiagonalSearch()), "
                f"got {type(search).__name__}."
            )
        return search
    return SEARCHES[method]()


def merge_search_info(infos):
    """One ``search_info`` from those of several chunks of inputs (None if none)."""
    infos = [info for info in infos if info is not None]
    if not infos:
        return None
    merged = {"stages": infos[0]["stages"], "n_base_predictions": infos[0]["n_base_predictions"],
              "seconds_per_iteration": {}}
    for info in infos:
        for kind, values in info["seconds_per_iteration"].items():
            merged["seconds_per_iteration"].setdefault(kind, []).extend(values)
    return merged
