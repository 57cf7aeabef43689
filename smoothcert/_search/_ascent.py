"""Per-input search of the noise covariance (data-dependent smoothing): the ascent.

Objective (:mod:`._objectives`), with ``psi_c(Sigma) = E[F_c(x + e)]`` the
smoothed scores estimated on a few hundred *optimization* draws and
``gap = 2 Phi^-1(psi_A)`` (the top-two gap ``Phi^-1(psi_A) - Phi^-1(psi_B)`` with
the runner-up bounded by ``1 - psi_A``, as CERTIFY bounds it; clipped away from
0 and 1 at the largest probability CERTIFY can certify):

* ``"volume"``: ``J = gap * (det(Sigma)^(1/(2d)) + kappa * sqrt(lambda_min))``
  (ANCER, Riemannian DDRS);
* ``"ball"``: ``J = gap * sqrt(lambda_min(Sigma))``, the radius of the largest
  ball in the certified ellipsoid (what certified accuracy rewards).

Every step is a Fisher-Rao natural-gradient step written in whitened
coordinates ``W = Sigma^(-1/2) grad Sigma^(-1/2)``:

* ``"isotropic"`` moves ``log sigma_x^2`` along ``tr(W) / d``;
* ``"diagonal"`` moves each ``log s_i^2`` along ``W_ii``;
* ``"riemannian"`` moves the full SPD matrix by the exponential map
  ``Sigma^(1/2) expm(eta W) Sigma^(1/2)`` (geomstats).

The gradient of ``sqrt(lambda_min)`` is that of a smooth minimum of the noise
scales (:func:`_soft_min_scale`); the isotropic stage uses the exact gradient.

Steps have Fisher-Rao length ``eta_t = learning_rate * sqrt(d / 2) / sqrt(t + 1)``
(for an isotropic step this changes ``log sigma^2`` by
``learning_rate / sqrt(t + 1)`` in any dimension). A step is kept only for the
inputs where it improves the objective, evaluated on the same fresh
optimization draws as the current point (common random numbers). Stages chain:
fixed -> isotropic -> diagonal -> riemannian, each started from the previous
optimum, with the eigenvalues kept in ``[sigma_iso^2, (sigma_max)^2]`` (the
"superset" floor of ANCER). A stage ends with a check on independent
validation draws: a row keeps the stage's result only where it beats the
stage's starting point there by ``VALIDATION_Z`` standard errors, else it
returns to that starting point, so that a later stage does not end worse than
the earlier one (keep-best on noisy estimates alone lets the true objective
drift down). With hard-vote certificates that check counts hard votes, the
quantity certified. All inputs are optimized together in array code.
"""

import time

import numpy as np

from .._engine._loop import sample
from .._engine._reducers import VoteCounts
from .._engine._streams import optimization_stage
from .._geometry._forms import (
    DiagonalCovariances,
    FullCovariances,
    IsotropicCovariances,
    RowCovariances,
)
from ._gradients import smoothed_scores
from ._objectives import gap_and_weights, objective_value, shape_factor, shape_tangent

__all__ = ["search_covariances", "search_predictions", "merge_search_info", "STAGES"]

#: The chain of covariance forms optimized by each method, in order.
STAGES = {
    "fixed": (),
    "isotropic": (IsotropicCovariances,),
    "diagonal": (IsotropicCovariances, DiagonalCovariances),
    "riemannian": (IsotropicCovariances, DiagonalCovariances, FullCovariances),
}

#: Most validation batches (of ``n_samples_optim`` draws) at the end of a stage.
VALIDATION_FACTOR = 4
#: Standard errors by which a stage's end must beat its start on validation draws.
VALIDATION_Z = 2.0
#: Most floats held by the per-block optimization state.
_STATE_BUDGET = 2**24


class _Stage:
    """One stage of the search for a block of rows: a covariance form, its
    parameters ``theta`` and their per-row bounds."""

    def __init__(self, form, theta, low, high, n_features):
        self.form = form
        self.theta = theta
        self.low = low
        self.high = high
        self.d = n_features

    @property
    def kind(self):
        return self.form.kind

    def covariances(self, theta=None):
        return self.form.from_parameters(self.theta if theta is None else theta, self.d)

    def norm(self, tangent):
        return self.form.norm(tangent, self.d)

    def step(self, direction):
        return self.form.step(self.theta, direction, self.low, self.high)

    def accept(self, candidate, mask):
        theta = self.theta.copy()
        theta[mask] = candidate[mask]
        self.theta = theta


def _run_stage(
    phase, state, evaluate, *, n_iter, learning_rate, objective, kappa, p_max, validate=None
):
    """Natural-gradient ascent with keep-best steps for one stage.

    Every step is evaluated against the current point on the same fresh
    optimization draws and kept only where it improves the objective. Keeping
    the better of two noisy estimates favours lucky draws, and over many steps
    this selection lets the true objective drift down; so the stage ends with a
    check on independent validation draws (up to ``VALIDATION_FACTOR`` times more):
    a row keeps its final point only where it beats the stage's starting point
    there. ``validate(covs, tag, rows)`` returns the smoothed scores used by
    that check (default: ``evaluate``'s soft scores); the search passes hard
    vote frequencies when the certificate counts hard votes, so that the check
    measures what will be certified.
    """
    if validate is None:

        def validate(covs, tag, rows):
            return evaluate(covs, tag, None, rows=rows)[0]

    start = state.theta.copy()
    covs = state.covariances()
    psi, _ = evaluate(covs, optimization_stage(phase, n_iter), None)
    accepted = 0
    n_rows = len(covs)
    for t in range(n_iter):
        tag = optimization_stage(phase, t)
        _, weights = gap_and_weights(psi, p_max)
        psi_cur, w_gap = evaluate(covs, tag, weights)
        eig_cur = covs.eigenvalues()
        gap_cur, _ = gap_and_weights(psi_cur, p_max)
        shape_cur = shape_factor(eig_cur, objective, kappa)
        j_cur = gap_cur * shape_cur
        w_shape = shape_tangent(covs, objective, kappa)
        expand = (slice(None),) + (None,) * (np.ndim(w_gap) - 1)
        grad = shape_cur[expand] * w_gap + gap_cur[expand] * w_shape
        norm = state.norm(grad)
        eta = learning_rate * np.sqrt(0.5 * state.d) / np.sqrt(t + 1.0)
        factor = np.where(norm > 0, eta / np.where(norm > 0, norm, 1.0), 0.0)
        candidate = state.step(grad * factor[expand])
        cand_covs = state.covariances(candidate)
        psi_new, _ = evaluate(cand_covs, tag, None)
        j_new = objective_value(psi_new, cand_covs.eigenvalues(), objective, kappa, p_max)
        improved = j_new > j_cur
        accepted += int(improved.sum())
        state.accept(candidate, improved)
        psi = np.where(improved[:, None], psi_new, psi_cur)
        covs = state.covariances()
    n_moved = n_reverted = 0
    if n_iter > 0:
        moved = np.any((state.theta != start).reshape(n_rows, -1), axis=1)
        n_moved = int(moved.sum())
        if np.any(moved):
            rows = np.flatnonzero(moved)
            keep = _validated(
                validate,
                state.covariances(start).take(rows),
                state.covariances().take(rows),
                rows,
                [optimization_stage(phase, n_iter + 1 + k) for k in range(_validation_factor(n_iter))],
                objective,
                kappa,
                p_max,
            )
            revert = np.zeros(n_rows, dtype=bool)
            revert[rows] = ~keep
            n_reverted = int(revert.sum())
            state.accept(start, revert)
    return state, accepted / max(1, n_rows * n_iter), n_moved, n_reverted


def _validated(validate, start, end, rows, tags, objective, kappa, p_max):
    """Rows where ``end`` beats ``start`` on independent validation draws.

    Each tag is a batch of ``n_samples_optim`` fresh draws shared by both points
    (common random numbers). With one batch the end point must simply score
    higher; with ``k >= 2`` batches the mean improvement must exceed
    ``VALIDATION_Z`` standard errors (estimated from the spread between
    batches), so that a stage does not keep moves that only look better.
    """
    diffs = []
    for tag in tags:
        psi_s = validate(start, tag, rows)
        psi_e = validate(end, tag, rows)
        j_s = objective_value(psi_s, start.eigenvalues(), objective, kappa, p_max)
        j_e = objective_value(psi_e, end.eigenvalues(), objective, kappa, p_max)
        diffs.append(j_e - j_s)
    diffs = np.array(diffs)
    mean = diffs.mean(axis=0)
    if len(tags) == 1:
        return mean > 0
    se = diffs.std(axis=0, ddof=1) / np.sqrt(len(tags))
    return mean > VALIDATION_Z * se


def _validation_factor(n_iter):
    """Validation batches of a stage: grows with the number of steps (the drift
    it guards against), at most ``VALIDATION_FACTOR``."""
    return int(min(VALIDATION_FACTOR, max(1, n_iter // 5)))


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
    p_max,
    seed,
    batch_size,
    n_jobs=None,
    validation_vote="soft",
    progress=None,
):
    """Optimize one noise covariance per row of ``X``.

    Parameters
    ----------
    adapter : base-model adapter
    X : ndarray of shape (n, d)
    method : {"fixed", "isotropic", "diagonal", "riemannian"}
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
    p_max : float
        Clip level of the smoothed probabilities.
    seed : tuple of int
    batch_size, n_jobs
        Passed to the sampling engine.
    validation_vote : {"soft", "hard"}
        Scores of the end-of-stage validation check: mean soft scores, or hard
        vote frequencies (what a hard-vote certificate counts). The ascent
        itself always follows the soft scores.
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
        significant); and ``n_base_predictions`` per input (at most: the
        validation check only samples the rows that moved).
    """
    n, d = X.shape
    var0 = float(sigma) ** 2
    lo = 2.0 * np.log(sigma_bounds[0] * sigma)
    hi = 2.0 * np.log(sigma_bounds[1] * sigma)
    stages = STAGES[method]
    info = {
        "stages": [form.kind for form in stages],
        "acceptance_rate": {},
        "seconds_per_iteration": {},
        "n_moved": {},
        "n_reverted": {},
    }
    if not stages:
        info["n_base_predictions"] = 0
        info["n_moved"], info["n_reverted"] = {}, {}
        return RowCovariances.isotropic(np.full(n, var0), d), info
    per_row = 2 * max(d, *(int(np.prod(form.tangent_shape(d))) for form in stages))
    block = max(1, min(n, _STATE_BUDGET // per_row))
    results = []
    for start in range(0, n, block):
        rows = slice(start, min(n, start + block))
        results.append(
            _search_block(
                adapter,
                X[rows],
                stages,
                var0=var0,
                lo=lo,
                hi=hi,
                n_iter=n_iter,
                learning_rate=learning_rate,
                n_samples_optim=n_samples_optim,
                gradient=gradient,
                objective=objective,
                kappa=kappa,
                p_max=p_max,
                seed=seed,
                batch_size=batch_size,
                n_jobs=n_jobs,
                validation_vote=validation_vote,
                info=info,
                progress=progress,
            )
        )
    info["n_base_predictions"] = search_predictions(method, n_iter, n_samples_optim)
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
    for key in ("acceptance_rate", "seconds_per_iteration"):
        merged[key] = {}
        for info in infos:
            for kind, values in info[key].items():
                merged[key].setdefault(kind, []).extend(values)
    for key in ("n_moved", "n_reverted"):
        merged[key] = {}
        for info in infos:
            for kind, value in info[key].items():
                merged[key][kind] = merged[key].get(kind, 0) + value
    return merged


def search_predictions(method, n_iter, n_samples_optim):
    """Base-model predictions of the search per input, at most (validation included)."""
    evaluations = 2 * n_iter + 1 + (2 * _validation_factor(n_iter) if n_iter > 0 else 0)
    draws = 2 * (-(-n_samples_optim // 2))
    return len(STAGES[method]) * evaluations * draws


def _search_block(
    adapter,
    X,
    stages,
    *,
    var0,
    lo,
    hi,
    n_iter,
    learning_rate,
    n_samples_optim,
    gradient,
    objective,
    kappa,
    p_max,
    seed,
    batch_size,
    n_jobs,
    validation_vote,
    info,
    progress,
):
    n, d = X.shape

    def validate(covs, tag, rows):
        if validation_vote == "hard":
            (counts,) = sample(
                adapter, X[rows], covs, n_samples_optim, VoteCounts(adapter.n_classes),
                seed=seed, stage=tag, batch_size=batch_size, n_jobs=n_jobs, progress=progress,
            )
            return counts / float(n_samples_optim)
        return evaluate(covs, tag, None, rows=rows)[0]

    def evaluate(covs, tag, weights, rows=None):
        return smoothed_scores(
            adapter,
            X if rows is None else X[rows],
            covs,
            n_samples_optim,
            seed=seed,
            stage=tag,
            weights=weights,
            gradient=None if weights is None else gradient,
            batch_size=batch_size,
            n_jobs=n_jobs,
            progress=progress,
        )

    common = dict(n_iter=n_iter, learning_rate=learning_rate, objective=objective, kappa=kappa, p_max=p_max)
    floor, cap = np.full(n, lo), np.full(n, hi)
    theta, previous, covs = np.full(n, np.log(var0)), None, None
    for phase, form in enumerate(stages):
        start = time.perf_counter()
        theta = form.parameters_from(previous, theta, d)
        stage = _Stage(form, theta, *form.bounds(floor, cap), d)
        stage, rate, n_moved, n_reverted = _run_stage(
            phase, stage, evaluate, validate=validate, **common
        )
        elapsed = time.perf_counter() - start
        info["acceptance_rate"].setdefault(form.kind, []).append(rate)
        info["n_moved"][form.kind] = info["n_moved"].get(form.kind, 0) + n_moved
        info["n_reverted"][form.kind] = info["n_reverted"].get(form.kind, 0) + n_reverted
        info["seconds_per_iteration"].setdefault(form.kind, []).append(elapsed / max(1, n_iter))
        theta, previous, covs = stage.theta, form, stage.covariances()
        if phase == 0:
            # later stages keep every variance above the first (isotropic)
            # stage's optimum: the "superset" floor
            floor = theta.copy()
    return covs
