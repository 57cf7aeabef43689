"""Per-input search of the noise covariance (data-dependent smoothing).

Objective (DESIGN.md section 3), with ``psi_c(Sigma) = E[F_c(x + e)]`` the
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
from scipy import stats

from .._geometry._forms import RowCovariances, spectral
from .._geometry._fisher_rao import clamp_eigenvalues, exp_whitened, fisher_rao_norm_whitened
from .._engine._loop import count_votes, optimization_stage, score_moments

__all__ = ["search_covariances", "objective_value", "gap_and_weights", "STAGES"]

STAGES = {
    "fixed": (),
    "isotropic": ("isotropic",),
    "diagonal": ("isotropic", "diagonal"),
    "riemannian": ("isotropic", "diagonal", "full"),
}

#: Sharpness of the smooth minimum used for the gradient of ``sqrt(lambda_min)``.
SOFTMIN_BETA = 10.0
#: Most validation batches (of ``n_samples_optim`` draws) at the end of a stage.
VALIDATION_FACTOR = 4
#: Standard errors by which a stage's end must beat its start on validation draws.
VALIDATION_Z = 2.0
#: Most floats held by the per-block optimization state.
_STATE_BUDGET = 2**24


def gap_and_weights(psi, p_max):
    """Certifiable gap ``2 Phi^-1(psi_A)`` of the top class and its gradient weights.

    CERTIFY reports the Mahalanobis radius ``Phi^-1(p_A)`` of the top class
    alone (the runner-up is bounded by ``1 - p_A``), so the search maximizes the
    same quantity, written as the top-two gap ``Phi^-1(psi_A) - Phi^-1(1 - psi_A)``.
    With two classes this is exactly ``Phi^-1(psi_A) - Phi^-1(psi_B)``; with more
    classes the gap to the actual runner-up would reward noise that spreads
    probability over many classes and lowers ``psi_A``, hence the radius.

    Parameters
    ----------
    psi : ndarray of shape (n, n_classes)
        Smoothed scores.
    p_max : float
        ``psi_A`` is clipped into ``[1 - p_max, p_max]`` (``p_max``: the largest
        probability CERTIFY can certify with its number of draws).

    Returns
    -------
    gap : ndarray of shape (n,)
    weights : ndarray of shape (n, n_classes)
        ``d gap / d psi``: ``2 / phi(Phi^-1(psi_A))`` on the top class ``A``,
        0 elsewhere and where ``psi_A`` is clipped.
    """
    n = psi.shape[0]
    rows = np.arange(n)
    a = np.argmax(psi, axis=1)
    pa = psi[rows, a]
    lo, hi = 1.0 - p_max, p_max
    za = stats.norm.ppf(np.clip(pa, lo, hi))
    gap = 2.0 * za
    weights = np.zeros_like(psi)
    inside = (pa > lo) & (pa < hi)
    weights[rows, a] = np.where(inside, 2.0 / stats.norm.pdf(za), 0.0)
    return gap, weights


def _shape_factor(eigvals, objective, kappa):
    """``M(Sigma)`` with the exact minimum (the value used to accept steps)."""
    s_min = np.sqrt(eigvals.min(axis=1))
    if objective == "ball":
        return s_min
    geo = np.exp(0.5 * np.log(eigvals).mean(axis=1))
    return geo + kappa * s_min


def _soft_min_scale(eigvals):
    """Smooth minimum of the noise scales ``s_i = sqrt(lambda_i)``, and its weights.

    ``m = (sum_i s_i^-beta)^(-1/beta)`` (``beta = SOFTMIN_BETA``): a smooth lower
    bound of ``min_i s_i`` that tends to it when the smallest scale is isolated
    (``d^(-1/beta) min_i s_i <= m <= min_i s_i``). ``omega_i = d log m / d log s_i``
    (a softmax of ``-beta log s``).
    """
    log_s = 0.5 * np.log(eigvals)
    logits = -SOFTMIN_BETA * log_s
    top = logits.max(axis=1, keepdims=True)
    weights = np.exp(logits - top)
    total = weights.sum(axis=1, keepdims=True)
    log_m = -(top[:, 0] + np.log(total[:, 0])) / SOFTMIN_BETA
    return np.exp(log_m), weights / total


def _smooth_shape_factor(eigvals, objective, kappa):
    """The smooth surrogate of ``M(Sigma)`` whose gradient the search follows.

    ``M(Sigma)`` with ``sqrt(lambda_min)`` replaced by the smooth minimum of
    :func:`_soft_min_scale`; :func:`_shape_gradient` is its exact gradient.
    """
    m, _ = _soft_min_scale(eigvals)
    if objective == "ball":
        return m
    geo = np.exp(0.5 * np.log(eigvals).mean(axis=1))
    return geo + kappa * m


def _shape_gradient(eigvals, objective, kappa):
    """Whitened natural gradient of the smooth shape factor, in the eigenbasis.

    For a spectral function ``F(lambda)`` of ``Sigma = U diag(lambda) U^T`` the
    Fisher-Rao gradient, whitened (``Sigma^(-1/2) grad Sigma^(-1/2)``), is
    ``U diag(2 lambda_i dF / d lambda_i) U^T = U diag(dF / d log s_i) U^T``.
    For :func:`_smooth_shape_factor` this is ``a I + U diag(c) U^T`` with

    * ``a = det(Sigma)^(1/(2d)) / d`` (volume term, 0 for ``"ball"``);
    * ``c_i = kappa * m * omega_i`` (``kappa = 1`` for ``"ball"``), ``m`` and
      ``omega`` from :func:`_soft_min_scale`. With an isolated smallest
      eigenvalue, ``c`` tends to ``sqrt(lambda_min) e_min``: the whitened form
      of the exact gradient ``lambda_min^(3/2) u u^T`` (DESIGN.md section 7).

    Returns
    -------
    a : ndarray of shape (n,)
    c : ndarray of shape (n, d)
    """
    d = eigvals.shape[1]
    m, omega = _soft_min_scale(eigvals)
    if objective == "ball":
        return np.zeros(len(eigvals)), m[:, None] * omega
    geo = np.exp(0.5 * np.log(eigvals).mean(axis=1))
    return geo / d, kappa * m[:, None] * omega


def objective_value(psi, eigvals, objective, kappa, p_max):
    """Objective ``J = gap * M(Sigma)`` for smoothed scores and eigenvalues."""
    gap, _ = gap_and_weights(psi, p_max)
    return gap * _shape_factor(eigvals, objective, kappa)


class _State:
    """Parameters of one search stage for a block of rows."""

    def __init__(self, kind, value, low, high, n_features):
        self.kind = kind
        self.value = value
        self.low = low  # per-row floor on log-variance (or variance for full)
        self.high = high
        self.d = n_features

    def covariances(self, value=None):
        value = self.value if value is None else value
        if self.kind == "isotropic":
            return RowCovariances("isotropic", np.exp(value), self.d)
        if self.kind == "diagonal":
            return RowCovariances("diagonal", np.exp(value), self.d)
        return RowCovariances.from_matrices(value)

    def norm(self, w):
        if self.kind == "isotropic":
            return np.sqrt(0.5 * self.d) * np.abs(w)
        if self.kind == "diagonal":
            return np.sqrt(0.5 * np.square(w).sum(axis=1))
        return fisher_rao_norm_whitened(w)

    def project_shape(self, covs, objective, kappa):
        """Whitened natural gradient of ``M``, projected on this stage.

        Isotropic: the exact natural gradient along ``log sigma^2`` of
        ``M(sigma^2 I) = C sigma`` (``C = 1 + kappa`` or 1), namely
        ``M / d`` (the metric is ``d / 2`` there and ``dM / d log sigma^2 = M / 2``).
        Diagonal and full: the (projected) gradient of the smooth surrogate.
        """
        eigvals = covs.eigenvalues()
        if self.kind == "isotropic":
            return _shape_factor(eigvals, objective, kappa) / self.d
        a, c = _shape_gradient(eigvals, objective, kappa)
        if self.kind == "diagonal":
            return a[:, None] + c
        _, vecs = covs._eig
        return a[:, None, None] * np.eye(self.d) + spectral(vecs, c)

    def step(self, direction):
        if self.kind == "full":
            # No useful step changes a variance by more than the whole allowed
            # range (the clamp undoes the excess): cap the spectral norm of the
            # whitened step there, so that expm cannot overflow whatever the
            # learning rate. Ordinary steps are far below the cap.
            limit = np.log(np.asarray(self.high) / np.asarray(self.low)) + 1.0
            spectral = np.abs(np.linalg.eigvalsh(direction)).max(axis=-1)
            shrink = np.where(spectral > limit, limit / np.where(spectral > limit, spectral, 1.0), 1.0)
            moved = exp_whitened(self.value, direction * shrink[:, None, None])
            return clamp_eigenvalues(moved, self.low, self.high)
        moved = self.value + direction
        if self.kind == "isotropic":
            return np.clip(moved, self.low, self.high)
        return np.clip(moved, self.low[:, None], self.high[:, None])

    def accept(self, candidate, mask):
        value = self.value.copy()
        value[mask] = candidate[mask]
        self.value = value


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

    start = state.value.copy()
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
        shape_cur = _shape_factor(eig_cur, objective, kappa)
        j_cur = gap_cur * shape_cur
        w_shape = state.project_shape(covs, objective, kappa)
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
    if n_iter > 0:
        moved = np.any((state.value != start).reshape(n_rows, -1), axis=1)
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
            state.accept(start, revert)
    return state, accepted / max(1, n_rows * n_iter)


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

    Returns
    -------
    covariances : RowCovariances
    info : dict
        ``seconds_per_iteration``, ``acceptance_rate`` per stage and
        ``n_base_predictions`` per input (at most: the validation check only
        samples the rows that moved).
    """
    n, d = X.shape
    var0 = float(sigma) ** 2
    lo = 2.0 * np.log(sigma_bounds[0] * sigma)
    hi = 2.0 * np.log(sigma_bounds[1] * sigma)
    stages = STAGES[method]
    info = {"stages": list(stages), "acceptance_rate": {}, "seconds_per_iteration": {}}
    if not stages:
        info["n_base_predictions"] = 0
        return RowCovariances.isotropic(np.full(n, var0), d), info
    per_row = 2 * (d * d if "full" in stages else d)
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
            )
        )
    evaluations = 2 * n_iter + 1 + (2 * _validation_factor(n_iter) if n_iter > 0 else 0)
    draws = 2 * (-(-n_samples_optim // 2))
    info["n_base_predictions"] = len(stages) * evaluations * draws
    return RowCovariances.concatenate(results), info


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
):
    n, d = X.shape

    def validate(covs, tag, rows):
        if validation_vote == "hard":
            counts, _ = count_votes(
                adapter, X[rows], covs, n_samples_optim, seed=seed, stage=tag,
                vote="hard", batch_size=batch_size, n_jobs=n_jobs,
            )
            return counts / float(n_samples_optim)
        return score_moments(
            adapter, X[rows], covs, n_samples_optim, seed=seed, stage=tag,
            antithetic=True, batch_size=batch_size, n_jobs=n_jobs,
        )[0]

    def evaluator(moment):
        def evaluate(covs, tag, weights, rows=None):
            return score_moments(
                adapter,
                X if rows is None else X[rows],
                covs,
                n_samples_optim,
                seed=seed,
                stage=tag,
                weights=weights,
                gradient=None if weights is None else gradient,
                moment=moment,
                antithetic=True,
                batch_size=batch_size,
                n_jobs=n_jobs,
            )

        return evaluate

    common = dict(n_iter=n_iter, learning_rate=learning_rate, objective=objective, kappa=kappa, p_max=p_max)
    floor = np.full(n, lo)
    value = np.full(n, np.log(var0))
    covs = None
    for phase, kind in enumerate(stages):
        start = time.perf_counter()
        if kind == "isotropic":
            state = _State("isotropic", value, floor, np.full(n, hi), d)
        elif kind == "diagonal":
            iso = state.value
            floor = iso.copy()
            state = _State("diagonal", np.repeat(iso[:, None], d, axis=1), floor, np.full(n, hi), d)
        else:
            diag = np.exp(state.value)
            mats = np.zeros((n, d, d))
            mats[:, np.arange(d), np.arange(d)] = diag
            state = _State("full", mats, np.exp(floor), np.full(n, np.exp(hi)), d)
        state, rate = _run_stage(phase, state, evaluator(kind), validate=validate, **common)
        elapsed = time.perf_counter() - start
        info["acceptance_rate"].setdefault(kind, []).append(rate)
        info["seconds_per_iteration"].setdefault(kind, []).append(elapsed / max(1, n_iter))
        covs = state.covariances()
    return covs
