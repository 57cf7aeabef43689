"""Per-input search of the noise covariance (data-dependent smoothing): the ascent.

Objective (:mod:`._objectives`): ``J = 2 r_cert(t) * M(Sigma)``, with
``t = tau Phi^-1(psi_A)`` the margin read from the top-class probability on
tempered optimization draws and ``r_cert`` the radius CERTIFY returns at that
margin, and ``M`` the shape term (``"volume"``: ``det^(1/(2d)) + kappa
sqrt(lambda_min)``; ``"ball"``: ``sqrt(lambda_min)``).

Every step is a Fisher-Rao natural-gradient step written in the whitened
coordinates of the noise factor ``L`` (``W = L^-1 grad L^-T``):

* ``"isotropic"`` moves ``log sigma_x^2`` along ``tr(W) / d``;
* ``"diagonal"`` moves each ``log s_i^2`` along ``W_ii``;
* ``"full"`` moves the SPD matrix by the exponential map
  ``Sigma^(1/2) expm(eta W) Sigma^(1/2)`` (geomstats);
* ``"lowrank"`` moves ``(D^-1 + V V^T)^-1`` on its diagonal and its few
  shrink directions (:mod:`smoothcert._geometry._forms._lowrank`).

``W`` is the structured estimate of :mod:`._structure` (a path estimates the
boundary normal, the step is split along it), from hard votes for
score-function searches whose certificates count hard votes. Steps have
Fisher-Rao length ``eta_t = learning_rate * sqrt(d / 2) / sqrt(t + 1)``; a
step is kept only for the inputs where it improves the objective, evaluated on
the same fresh optimization draws as the current point (common random
numbers). Stages chain (isotropic -> diagonal -> full or low-rank), each
started from the previous optimum; every eigenvalue stays in
``[floor, (sigma_bounds[1] sigma)^2]``, the floor being the isotropic
optimum of the row in the later stages (the "superset" rule of ANCER). A
stage ends with a check on independent validation draws of the same
objective: a row keeps the stage's result only where it beats the stage's
start by ``VALIDATION_Z`` standard errors, else it returns to the start
(keep-best on noisy estimates alone lets the true objective drift down).
All inputs are optimized together in array code.
"""

import time

import numpy as np

from .._engine._loop import noise_dimension, sample
from .._engine._streams import optimization_stage
from .._geometry._forms import (
    DiagonalCovariances,
    FullCovariances,
    IsotropicCovariances,
    LowRankCovariances,
    RowCovariances,
)
from ._gradients import SearchScores, search_statistics
from ._objectives import RadiusCurve, gap_and_weights, objective_value, shape_factor, shape_tangent
from ._structure import combine, path_direction, split_step, step_basis, structured_tangent
from ._validation import validated, validation_batches

__all__ = ["search_covariances", "search_predictions", "merge_search_info", "stages_of", "STAGES",
           "SearchSettings"]

#: The chain of covariance forms optimized by each method, in order.
STAGES = {
    "fixed": (),
    "isotropic": (IsotropicCovariances,),
    "diagonal": (IsotropicCovariances, DiagonalCovariances),
    "riemannian": (IsotropicCovariances, DiagonalCovariances, FullCovariances),
    "lowrank": (IsotropicCovariances, DiagonalCovariances, LowRankCovariances),
}
#: Above this dimension ``"riemannian"`` optimizes the low-rank form instead of
#: full matrices (a full ``d x d`` eigendecomposition per input and step).
MAX_FULL_FEATURES = 512

#: Weight of the unstructured estimate for rows searched again untempered.
FALLBACK_BLEND = 0.3
#: Phase offset of the stage tags of those second searches (independent draws).
_RERUN_PHASE = 64
#: Most floats held by the per-block optimization state.
_STATE_BUDGET = 2**24


def stages_of(method, n_features):
    """The forms the search optimizes for ``method`` at dimension ``n_features``."""
    if method == "riemannian" and n_features > MAX_FULL_FEATURES:
        method = "lowrank"
    return STAGES[method]


class SearchSettings:
    """The settings of one search (plain attributes; see :func:`search_covariances`)."""

    def __init__(self, *, n_iter, learning_rate, n_samples_optim, objective, kappa, curve, tau,
                 gradient, votes, blend, split=True, superset=True, rerun=True):
        self.n_iter = int(n_iter)
        self.learning_rate = float(learning_rate)
        self.n_draws = 2 * (-(-int(n_samples_optim) // 2))
        self.objective, self.kappa = objective, float(kappa)
        self.curve, self.tau = curve, float(tau)
        self.gradient, self.votes = gradient, votes
        self.blend, self.split, self.superset = float(blend), bool(split), bool(superset)
        self.rerun = bool(rerun)

    def value(self, psi, covariances, tau):
        return objective_value(psi, covariances, self.objective, self.kappa, self.curve, tau, self.n_draws)


class _Stage:
    """One stage of the search for a block of rows: a covariance form, its
    parameters ``theta`` and their per-row bounds."""

    def __init__(self, form, theta, low, high, n_features, volume=None):
        self.form = form
        self.theta = theta
        self.low = low
        self.high = high
        self.volume = volume
        self.d = n_features

    @property
    def kind(self):
        return self.form.kind

    def covariances(self, theta=None):
        return self.form.from_parameters(self.theta if theta is None else theta, self.d)

    def step(self, direction):
        return self.form.step(self.theta, direction, self.low, self.high, self.volume)

    def accept(self, candidate, mask):
        theta = self.theta.copy()
        theta[mask] = candidate[mask]
        self.theta = theta


class _Sampler:
    """The search's Monte-Carlo calls for one block of rows, through the engine."""

    def __init__(self, adapter, X, settings, *, seed, batch_size, n_jobs, progress):
        self.adapter, self.X, self.settings = adapter, X, settings
        self.common = dict(seed=seed, batch_size=batch_size, n_jobs=n_jobs, progress=progress)

    def statistics(self, covs, tag, weights, basis, blend):
        """Scores and gradient statistics at ``covs`` (already tempered)."""
        s = self.settings
        kind = covs.kind
        blended = bool(np.any(blend > 0))
        return search_statistics(
            self.adapter, self.X, covs, s.n_draws, stage=tag, weights=weights, gradient=s.gradient,
            votes=s.votes if s.gradient == "score" else "soft", basis=basis,
            diagonal=kind == "diagonal" or (kind == "lowrank" and blended),
            form=FullCovariances if kind == "full" and blended else None, **self.common,
        )

    def subset(self, rows):
        """The sampler of some of the rows."""
        new = _Sampler.__new__(_Sampler)
        new.adapter, new.X, new.settings, new.common = self.adapter, self.X[rows], self.settings, self.common
        return new

    def scores(self, covs, tag, rows=None):
        """Mean scores (or vote frequencies) at ``covs`` (already tempered)."""
        s = self.settings
        votes = s.votes if s.gradient == "score" else "soft"
        X = self.X if rows is None else self.X[rows]
        (psi,) = sample(self.adapter, X, covs, s.n_draws, SearchScores(self.adapter.n_classes, votes),
                        stage=tag, **self.common)
        return psi


def _one_hot(psi):
    out = np.zeros_like(psi)
    out[np.arange(len(psi)), np.argmax(psi, axis=1)] = 1.0
    return out


def _run_stage(phase, stage, sampler, settings, path, tau, blend):
    """Natural-gradient ascent with keep-best steps for one stage, then validation.

    ``path`` (n, d) is updated in place. Returns the stage and a dict:
    ``accepted`` (steps kept), ``moved`` and ``reverted`` (bool per row) and
    ``distrust`` (rows whose tempered search failed the guard of
    :func:`~._validation.validated`).
    """
    s = settings
    n_rows, d = stage.theta.shape[0], stage.d
    tau2 = tau**2
    start = stage.theta.copy()
    covs = stage.covariances()
    psi = sampler.scores(covs.rescaled(tau2), optimization_stage(phase, s.n_iter))
    accepted = 0
    rows = np.arange(n_rows)
    for t in range(s.n_iter):
        tag = optimization_stage(phase, t)
        u = None if stage.kind == "isotropic" else path_direction(covs, path)
        basis = None if u is None else step_basis(covs, u)
        weights = _one_hot(psi)
        stats = sampler.statistics(covs.rescaled(tau2), tag, weights, basis, blend)
        psi_cur = stats["psi"]
        path += covs.inverse_factor_transpose(stats["v"]) / tau[:, None]
        gap, w_gap = gap_and_weights(psi_cur, s.curve, tau, s.n_draws)
        shape = shape_factor(covs, s.objective, s.kappa)
        j_cur = gap * shape
        w_top = w_gap[rows, np.argmax(weights, axis=1)]
        # natural gradient of gap * M: M dgap/dpsi_A grad psi_A + gap grad M
        grad = combine(
            shape * w_top, structured_tangent(covs, stats, basis, blend),
            gap, shape_tangent(covs, s.objective, s.kappa, basis),
        )
        eta = np.full(n_rows, s.learning_rate * np.sqrt(0.5 * d) / np.sqrt(t + 1.0))
        candidate = stage.step(split_step(stage.kind, grad, u, d, eta, s.split))
        cand_covs = stage.covariances(candidate)
        psi_new = sampler.scores(cand_covs.rescaled(tau2), tag)
        improved = s.value(psi_new, cand_covs, tau) > j_cur
        accepted += int(improved.sum())
        stage.accept(candidate, improved)
        psi = np.where(improved[:, None], psi_new, psi_cur)
        covs = stage.covariances()
    moved = np.zeros(n_rows, dtype=bool)
    revert = np.zeros(n_rows, dtype=bool)
    distrust = np.zeros(n_rows, dtype=bool)
    if s.n_iter > 0:
        moved = np.any((stage.theta != start).reshape(n_rows, -1), axis=1)
        if np.any(moved):
            which = np.flatnonzero(moved)
            tags = [optimization_stage(phase, s.n_iter + 1 + k) for k in range(validation_batches(s.n_iter))]
            keep, bad = validated(
                sampler, stage.covariances(start).take(which), stage.covariances().take(which),
                which, tags, settings, tau[which],
            )
            revert[which] = ~keep
            distrust[which] = bad
            stage.accept(start, revert)
    return stage, dict(accepted=accepted, moved=moved, reverted=revert, distrust=distrust)


def search_covariances(
    adapter,
    X,
    *,
    method,
    objective,
    sigma,
    sigma_bounds,
    n_iter,
    learning_rate,
    n_samples_optim,
    gradient,
    kappa,
    n_samples,
    alpha,
    seed,
    batch_size,
    votes="hard",
    temper=True,
    blend=0.0,
    superset=True,
    split=True,
    rerun=True,
    scale_cap="volume",
    n_jobs=None,
    progress=None,
):
    """Optimize one noise covariance per row of ``X``.

    Parameters
    ----------
    adapter : base-model adapter
    X : ndarray of shape (n, d)
    method : {"fixed", "isotropic", "diagonal", "riemannian", "lowrank"}
    objective : {"volume", "ball"}
    sigma : float
        Starting (and, for ``"fixed"``, only) noise level.
    sigma_bounds : (float, float)
        Every noise scale ``sqrt(eigenvalue)`` stays in
        ``[sigma_bounds[0] * sigma, sigma_bounds[1] * sigma]``.
    n_iter : int
        Iterations per stage.
    learning_rate : float
        Fisher-Rao step length ``eta_0`` (per ``sqrt(d / 2)``).
    n_samples_optim : int
        Optimization draws per input and evaluation (antithetic pairs).
    gradient : {"score", "pathwise"}
    kappa : float
        Weight of the inscribed-ball term of the volume objective.
    n_samples, alpha : int, float
        The certificate's draws and level: the objective is the radius CERTIFY
        returns with them (:class:`~._objectives.RadiusCurve`).
    seed : tuple of int
    batch_size, n_jobs
        Passed to the sampling engine.
    votes : {"hard", "soft"}, default="hard"
        What score-function searches count: hard votes (predicted labels) or
        soft scores; the certificate's vote. Pathwise searches use soft scores.
    temper : bool, default=True
        Estimate on tempered draws ``x + tau L z`` (``tau`` from
        :meth:`~._objectives.RadiusCurve.temperature`), else ``tau = 1``.
    blend : float, default=0.0
        Weight of the unstructured estimate: the search follows
        ``W_s + blend (W - W_s)`` (:mod:`._structure`).
    superset : bool, default=True
        Keep the eigenvalues of the later stages above the row's isotropic
        optimum (else above ``sigma_bounds[0] * sigma`` only).
    scale_cap : {"volume", "axis"}, default="volume"
        ``"axis"``: every noise scale at most ``sigma_bounds[1] * sigma``.
        ``"volume"``: the geometric mean of the scales (``det^(1/(2d))``) at
        most ``sigma_bounds[1] * sigma``, each scale at most
        ``sigma_bounds[1]^2 / sigma_bounds[0] * sigma``: noise cannot grow
        where the classifier is constant (that grows every scale), but an
        ellipse may be long along a boundary and thin across it.
    progress : Progress, default=None
        Counts the base-model predictions.

    Returns
    -------
    covariances : RowCovariances
    info : dict
        Per stage (keyed by form): ``acceptance_rate`` (steps kept),
        ``seconds_per_iteration``, ``n_moved`` (inputs whose covariance the
        ascent changed) and ``n_reverted`` (of those, the inputs sent back to
        the stage's start by the validation check: their gain was not
        significant); ``temperature`` (``tau``) and ``n_base_predictions`` per
        input (at most: the validation check only samples the rows that moved).
    """
    n, d = X.shape[0], noise_dimension(adapter, X)
    var0 = float(sigma) ** 2
    lo = 2.0 * np.log(sigma_bounds[0] * sigma)
    hi = 2.0 * np.log(sigma_bounds[1] * sigma)
    volume = None
    if scale_cap == "volume":
        volume, hi = hi, hi + 2.0 * np.log(sigma_bounds[1] / sigma_bounds[0])
    stages = stages_of(method, d)
    curve = RadiusCurve(n_samples, alpha)
    settings = SearchSettings(
        n_iter=n_iter, learning_rate=learning_rate, n_samples_optim=n_samples_optim, objective=objective,
        kappa=kappa, curve=curve, tau=curve.temperature(d) if temper else 1.0, gradient=gradient,
        votes=votes, blend=blend, superset=superset, split=split, rerun=rerun,
    )
    info = {
        "stages": [form.kind for form in stages],
        "acceptance_rate": {},
        "seconds_per_iteration": {},
        "n_moved": {},
        "n_reverted": {},
        "n_untempered": {},
        "temperature": settings.tau,
    }
    if not stages:
        info["n_base_predictions"] = 0
        return RowCovariances.isotropic(np.full(n, var0), d), info
    per_row = 4 * d * max(int(np.prod(form.tangent_shape(d))) // d for form in stages)
    block = max(1, min(n, _STATE_BUDGET // max(per_row, 1)))
    results = []
    for start in range(0, n, block):
        rows = slice(start, min(n, start + block))
        sampler = _Sampler(adapter, X[rows], settings, seed=seed, batch_size=batch_size, n_jobs=n_jobs,
                           progress=progress)
        results.append(
            _search_block(sampler, stages, settings, var0=var0, lo=lo, hi=hi, volume=volume, info=info)
        )
    info["n_base_predictions"] = search_predictions(method, n_iter, n_samples_optim, d, temper)
    return RowCovariances.concatenate(results), info


def merge_search_info(infos):
    """One ``search_info`` from those of several chunks of inputs (None if none)."""
    infos = [info for info in infos if info is not None]
    if not infos:
        return None
    merged = {
        "stages": infos[0]["stages"],
        "n_base_predictions": infos[0]["n_base_predictions"],
    }
    if "temperature" in infos[0]:
        merged["temperature"] = infos[0]["temperature"]
    for key in ("acceptance_rate", "seconds_per_iteration"):
        merged[key] = {}
        for info in infos:
            for kind, values in info[key].items():
                merged[key].setdefault(kind, []).extend(values)
    for key in ("n_moved", "n_reverted", "n_untempered"):
        merged[key] = {}
        for info in infos:
            for kind, value in info.get(key, {}).items():
                merged[key][kind] = merged[key].get(kind, 0) + value
    return merged


def search_predictions(method, n_iter, n_samples_optim, n_features=1, temper=True):
    """Base-model predictions of the search per input, at most (validation included).

    Per stage: ``2 n_iter + 1`` evaluations and ``2 k`` validation batches
    (``k`` of :func:`~._validation.validation_batches`); with tempering, the
    untempered guard doubles the validation batches and a distrusted row is
    searched a second time, untempered (at most once per stage).
    """
    batches = validation_batches(n_iter) if n_iter > 0 else 0
    evaluations = 2 * n_iter + 1 + 2 * batches
    if temper:
        evaluations += 2 * batches + (2 * n_iter + 1 + 2 * batches)
    draws = 2 * (-(-n_samples_optim // 2))
    return len(stages_of(method, n_features)) * evaluations * draws


def _record(info, kind, report, elapsed, n_iter):
    n = len(report["moved"])
    info["acceptance_rate"].setdefault(kind, []).append(report["accepted"] / max(1, n * n_iter))
    info["n_moved"][kind] = info["n_moved"].get(kind, 0) + int(report["moved"].sum())
    info["n_reverted"][kind] = info["n_reverted"].get(kind, 0) + int(report["reverted"].sum())
    info["n_untempered"][kind] = info["n_untempered"].get(kind, 0) + int(report["distrust"].sum())
    info["seconds_per_iteration"].setdefault(kind, []).append(elapsed / max(1, n_iter))


def _search_block(sampler, stages, settings, *, var0, lo, hi, volume, info):
    n, d = sampler.X.shape[0], noise_dimension(sampler.adapter, sampler.X)
    floor, cap = np.full(n, lo), np.full(n, hi)
    volume = None if volume is None else np.full(n, volume)
    theta, previous = np.full(n, np.log(var0)), None
    path = np.zeros((n, d))
    tau = np.full(n, settings.tau)
    blend = np.full(n, settings.blend)
    covs = None
    for phase, form in enumerate(stages):
        start = time.perf_counter()
        theta = form.parameters_from(previous, theta, d)
        low, high = form.bounds(floor, cap)
        stage = _Stage(form, theta, low, high, d, volume)
        stage, report = _run_stage(phase, stage, sampler, settings, path, tau, blend)
        distrust = np.flatnonzero(report["distrust"])
        if distrust.size:
            # searched on tempered draws that misread this row's boundary: it
            # is searched again from the stage's start, untempered, with the
            # blended step, and stays so for the later stages
            tau[distrust] = 1.0
            blend[distrust] = np.maximum(blend[distrust], FALLBACK_BLEND)
            if settings.rerun:
                again = _Stage(form, theta[distrust], low[distrust], high[distrust], d,
                               None if volume is None else volume[distrust])
                sub_path = path[distrust]
                again, _ = _run_stage(
                    _RERUN_PHASE + phase, again, sampler.subset(distrust), settings, sub_path,
                    tau[distrust], blend[distrust],
                )
                path[distrust] = sub_path
                stage.accept(_scatter(stage.theta, distrust, again.theta), np.isin(np.arange(n), distrust))
        _record(info, form.kind, report, time.perf_counter() - start, settings.n_iter)
        theta, previous, covs = stage.theta, form, stage.covariances()
        if phase == 0 and settings.superset:
            # later stages keep every variance above the first (isotropic)
            # stage's optimum: the "superset" floor
            floor = theta.copy()
    return covs


def _scatter(theta, rows, values):
    out = theta.copy()
    out[rows] = values
    return out
