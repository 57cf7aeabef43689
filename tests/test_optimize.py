"""The covariance search: gradients against finite differences, steps, keep-best ascent.

The Fisher-Rao (natural) gradient of a function ``f`` of ``Sigma`` is the
tangent vector ``R`` with ``<R, V>_Sigma = 1/2 tr(Sigma^-1 R Sigma^-1 V) = df(Sigma)[V]``
for every symmetric ``V``. The optimizer and the sampling engine return it
whitened, ``W = Sigma^(-1/2) R Sigma^(-1/2)``, so ``<R, V>_Sigma =
1/2 tr(W Sigma^(-1/2) V Sigma^(-1/2))``. Every gradient below is checked
against central finite differences of ``f`` along random symmetric directions.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from scipy.linalg import expm

from smoothcert._geometry._forms import RowCovariances
from smoothcert._geometry._fisher_rao import clamp_eigenvalues, sym_sqrt
from smoothcert._engine._streams import optimization_stage
from smoothcert._geometry._forms import FORMS
from smoothcert._search._ascent import SearchSettings, _run_stage, _Stage
from smoothcert._search._gradients import search_statistics, smoothed_scores
from smoothcert._search._objectives import (
    RadiusCurve,
    _shape_factor,
    _shape_gradient,
    _smooth_shape_factor,
    gap_and_weights,
    objective_value,
    shape_tangent,
)
from smoothcert._search._validation import VALIDATION_Z, inconsistent_margins, validated


def _State(kind, theta, low, high, d):
    """One search stage of the named covariance form."""
    return _Stage(FORMS[kind], theta, low, high, d)


# --------------------------------------------------------------------- helpers
def random_spd(rng, n, d, low=-1.0, high=1.0):
    q, _ = np.linalg.qr(rng.standard_normal((n, d, d)))
    w = np.exp(rng.uniform(low, high, size=(n, d)))
    return np.einsum("nij,nj,nkj->nik", q, w, q)


def random_symmetric(rng, n, d):
    a = rng.standard_normal((n, d, d))
    return 0.5 * (a + np.swapaxes(a, 1, 2))


def fisher_rao_pairing(sigma, whitened, direction):
    """``<R, V>_Sigma`` for the whitened gradient ``W``: ``1/2 tr(W S^-1/2 V S^-1/2)``."""
    inv_root = sym_sqrt(sigma, -0.5)
    return 0.5 * np.einsum("nij,nji->n", whitened, inv_root @ direction @ inv_root)


def directional_derivative(f, sigma, direction, t=1e-5):
    """Central difference of ``f`` (a function of (n, d, d) arrays) along ``direction``."""
    return (f(sigma + t * direction) - f(sigma - t * direction)) / (2 * t)


def eig_function(g):
    """Lift a function of the eigenvalues to a function of the matrices."""
    return lambda s: g(np.linalg.eigvalsh(s))


def whitened_shape_gradient(sigma, objective, kappa):
    """``a I + U diag(c) U^T`` from ``_shape_gradient``."""
    w, u = np.linalg.eigh(sigma)
    a, c = _shape_gradient(w, objective, kappa)
    d = sigma.shape[-1]
    return a[:, None, None] * np.eye(d) + np.einsum("nij,nj,nkj->nik", u, c, u)


class ProbitAdapter:
    """A linear probit base model, ``F_1(x) = Phi((w.x + b) / tau)``, in float64.

    Its smoothed score is exact: ``E[F_1(x + e)] = Phi(m / sqrt(tau^2 + w^T Sigma w))``
    with ``m = w.x + b`` and ``e ~ N(0, Sigma)``; ``tau -> 0`` is a hard linear
    classifier.
    """

    n_classes = 2
    float32 = False
    supports_gradient = True

    def __init__(self, w, b, tau):
        self.w, self.b, self.tau = np.asarray(w, dtype=float), float(b), float(tau)

    def scores(self, points):
        m = points @ self.w + self.b
        if self.tau == 0:  # a hard linear classifier: one-hot votes
            p = (m > 0).astype(float)
        else:
            p = stats.norm.cdf(m / self.tau)
        return np.stack([1.0 - p, p], axis=1)

    def labels(self, points):
        return (points @ self.w + self.b > 0).astype(np.intp)

    def scores_and_gradient(self, points, weights):
        u = (points @ self.w + self.b) / self.tau
        dh = (weights[:, 1] - weights[:, 0]) * stats.norm.pdf(u) / self.tau
        return self.scores(points), dh[:, None] * self.w

    def exact_proba(self, X, sigma):
        q = np.einsum("i,nij,j->n", self.w, sigma, self.w)
        return stats.norm.cdf((X @ self.w + self.b) / np.sqrt(self.tau**2 + q))

    def exact_whitened_gradient(self, X, sigma):
        """Whitened natural gradient of ``Phi(m / sqrt(tau^2 + w^T Sigma w))``."""
        m = X @ self.w + self.b
        q = np.einsum("i,nij,j->n", self.w, sigma, self.w)
        total = self.tau**2 + q
        coef = -stats.norm.pdf(m / np.sqrt(total)) * m * total**-1.5
        sw = np.einsum("nij,j->ni", sym_sqrt(sigma), self.w)
        return coef[:, None, None] * np.einsum("ni,nj->nij", sw, sw)


# --------------------------------------------------- the radius curve and gap
def _exact_log_radius(n, alpha, t):
    """``E[log Phi^-1(CP lower bound)]`` over the certifying counts, by the full sum."""
    k = np.arange(n + 1)
    lower = np.where(k > 0, stats.beta.ppf(alpha, np.maximum(k, 1), n - k + 1), 0.0)
    with np.errstate(divide="ignore"):
        r = stats.norm.ppf(lower)
    ok = r > 0
    pk = stats.binom.pmf(k, n, stats.norm.cdf(t))
    return (pk[ok] * np.log(r[ok])).sum() / pk[ok].sum()


@pytest.mark.parametrize("n_samples", [200, 5000])
def test_radius_curve_is_the_expected_certified_radius(n_samples):
    alpha = 0.01
    curve = RadiusCurve(n_samples, alpha)
    for t in (1.5, 2.0, 2.6, 3.5):
        r, _ = curve(t)
        assert np.log(r) == pytest.approx(_exact_log_radius(n_samples, alpha, t), abs=2e-3)
    t = np.linspace(-1.0, 11.0, 400)
    r, slope = curve(t)
    assert np.all(np.diff(r) >= 0) and np.all(slope >= 0)
    # finite N: below the margin, and saturating at Phi^-1(alpha^(1/N))
    assert np.all(r[t > 0.5] < t[t > 0.5])
    assert curve.r_max == pytest.approx(stats.norm.ppf(alpha ** (1 / n_samples)))
    assert r[-1] == pytest.approx(curve.r_max, rel=1e-6)
    inner = (t > 1.0) & (t < 8.0)
    assert_allclose(slope[inner], np.gradient(r, t)[inner], atol=0.1)
    # the best margin of a long ellipsoid grows with d, and tempering with it
    assert 1.0 < curve.best_margin(2) < curve.best_margin(16) < curve.best_margin(64)
    assert curve.temperature(64) == pytest.approx(max(1.0, curve.best_margin(64) / 1.5))


def test_gap_and_weights_values_and_derivatives():
    curve = RadiusCurve(10_000, 0.001)
    psi = np.array([[0.7, 0.2, 0.1], [0.25, 0.33, 0.42], [0.04, 0.9, 0.06]])
    tau = np.array([1.0, 2.0, 3.0])
    gap, weights = gap_and_weights(psi, curve, tau, 256)
    top = [0, 2, 1]
    expected = 2 * curve(tau * stats.norm.ppf(psi[np.arange(3), top]))[0]
    assert_allclose(gap, expected, rtol=1e-12)
    # d gap / d psi_c by finite differences, the order of the classes fixed
    eps = 1e-6
    for c in range(3):
        step = np.zeros_like(psi)
        step[:, c] = eps
        up, _ = gap_and_weights(psi + step, curve, tau, 256)
        down, _ = gap_and_weights(psi - step, curve, tau, 256)
        # the slope of the table is piecewise linear: a few percent
        assert_allclose(weights[:, c], (up - down) / (2 * eps), rtol=0.03, atol=1e-6)
    # only the top class carries weight (CERTIFY bounds the runner-up by 1 - p_A)
    assert np.count_nonzero(weights, axis=1).tolist() == [1, 1, 1]


def test_unresolved_margins_have_no_weight_and_read_the_resolution_limit():
    curve = RadiusCurve(10_000, 0.001)
    m = 256
    psi = np.array([[1.0, 0.0], [1 - 1 / (4 * m), 1 / (4 * m)], [0.8, 0.2]])
    gap, weights = gap_and_weights(psi, curve, np.full(3, 2.0), m)
    limit = 2 * curve(2.0 * stats.norm.ppf(1 - 0.5 / m))[0]
    assert_allclose(gap[:2], limit)
    assert np.all(weights[:2] == 0) and weights[2, 0] > 0
    assert np.all(np.isfinite(gap))


def test_objective_value_is_gap_times_shape():
    rng = np.random.default_rng(0)
    curve = RadiusCurve(10_000, 0.001)
    covs = RowCovariances.from_matrices(random_spd(rng, 4, 3))
    eig = covs.eigenvalues()
    psi = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.5, 0.5]])
    tau = np.ones(4)
    gap, _ = gap_and_weights(psi, curve, tau, 256)
    s_min = np.sqrt(eig.min(axis=1))
    geo = np.exp(np.log(eig).sum(axis=1) / 6)
    assert_allclose(objective_value(psi, covs, "ball", 2.0, curve, tau, 256), gap * s_min)
    assert_allclose(objective_value(psi, covs, "volume", 2.0, curve, tau, 256), gap * (geo + 2.0 * s_min))
    # a coin flip certifies nothing: the gap is negative there (abstention)
    assert objective_value(psi, covs, "ball", 2.0, curve, tau, 256)[3] < 0


# ------------------------------------------------------------ shape gradients
@pytest.mark.parametrize("objective", ["volume", "ball"])
@pytest.mark.parametrize("d", [2, 3, 5])
def test_shape_gradient_is_the_fisher_rao_gradient_of_the_smooth_shape(objective, d):
    rng = np.random.default_rng(d)
    sigma = random_spd(rng, 8, d, low=-1.5, high=1.5)
    # include near ties of the smallest eigenvalues, where the smoothing matters
    w, u = np.linalg.eigh(sigma[:3])
    w[:, 1] = w[:, 0] * 1.02
    sigma[:3] = np.einsum("nij,nj,nkj->nik", u, w, u)
    kappa = 1.7
    grad = whitened_shape_gradient(sigma, objective, kappa)
    f = eig_function(lambda e: _smooth_shape_factor(e, objective, kappa))
    for _ in range(4):
        v = random_symmetric(rng, len(sigma), d)
        assert_allclose(
            fisher_rao_pairing(sigma, grad, v),
            directional_derivative(f, sigma, v),
            rtol=1e-5,
            atol=1e-8,
        )


@pytest.mark.parametrize("objective", ["volume", "ball"])
def test_shape_gradient_is_the_exact_gradient_when_lambda_min_is_isolated(objective):
    # design page, *The covariance search*: FR gradient of det^(1/(2d)) is det^(1/(2d)) / d * Sigma, of
    # sqrt(lambda_min) it is lambda_min^(3/2) u u^T (whitened: sqrt(lambda_min) u u^T).
    rng = np.random.default_rng(11)
    d = 4
    q, _ = np.linalg.qr(rng.standard_normal((6, d, d)))
    lam = np.sort(rng.uniform(0.5, 1.0, size=(6, d)), axis=1) * np.array([1.0, 30.0, 50.0, 80.0])
    sigma = np.einsum("nij,nj,nkj->nik", q, lam, q)
    kappa = 2.0
    grad = whitened_shape_gradient(sigma, objective, kappa)
    u = q[:, :, 0]
    exact = (1.0 if objective == "ball" else kappa) * np.sqrt(lam[:, 0])[:, None, None] * np.einsum(
        "ni,nj->nij", u, u
    )
    if objective == "volume":
        geo = np.exp(0.5 * np.log(lam).mean(axis=1))
        exact = exact + (geo / d)[:, None, None] * np.eye(d)
    assert_allclose(grad, exact, rtol=0, atol=1e-6 * np.abs(exact).max())
    f = eig_function(lambda e: _shape_factor(e, objective, kappa))
    for _ in range(3):
        v = random_symmetric(rng, 6, d)
        assert_allclose(
            fisher_rao_pairing(sigma, grad, v), directional_derivative(f, sigma, v), rtol=1e-5, atol=1e-8
        )


@pytest.mark.parametrize("objective", ["volume", "ball"])
def test_stage_projections_of_the_shape_gradient(objective):
    # Natural gradients in the stage coordinates: log sigma^2 (metric d/2) for
    # "isotropic", log s_i^2 (metric 1/2 I) for "diagonal".
    rng = np.random.default_rng(5)
    n, d, kappa, eps = 6, 3, 2.0, 1e-6
    v_iso = rng.uniform(-2, 1, size=n)
    state = _State("isotropic", v_iso, np.full(n, -9.0), np.full(n, 9.0), d)
    g = shape_tangent(state.covariances(), objective, kappa)
    f_iso = lambda v: _shape_factor(np.repeat(np.exp(v)[:, None], d, axis=1), objective, kappa)  # noqa: E731
    assert_allclose((d / 2) * g, (f_iso(v_iso + eps) - f_iso(v_iso - eps)) / (2 * eps), rtol=1e-6)

    v_diag = rng.uniform(-2, 1, size=(n, d))
    state = _State("diagonal", v_diag, np.full(n, -9.0), np.full(n, 9.0), d)
    g = shape_tangent(state.covariances(), objective, kappa)
    for i in range(d):
        step = np.zeros((n, d))
        step[:, i] = eps
        fd = (
            _smooth_shape_factor(np.exp(v_diag + step), objective, kappa)
            - _smooth_shape_factor(np.exp(v_diag - step), objective, kappa)
        ) / (2 * eps)
        assert_allclose(0.5 * g[:, i], fd, rtol=1e-6, atol=1e-10)

    sigma = random_spd(rng, n, d)
    state = _State("full", sigma, np.full(n, 1e-3), np.full(n, 1e3), d)
    g = shape_tangent(state.covariances(), objective, kappa)
    assert_allclose(g, whitened_shape_gradient(sigma, objective, kappa), atol=1e-12)


# ---------------------------------------------- Monte-Carlo natural gradients
def _probit_rows(rng, d, n=4, tau=0.8):
    adapter = ProbitAdapter(rng.standard_normal(d), 0.3, tau)
    X = rng.standard_normal((n, d))
    return adapter, X


def _covariances(kind, rng, n, d):
    if kind == "full":
        return RowCovariances.from_matrices(random_spd(rng, n, d, low=-1.2, high=0.5))
    if kind == "diagonal":
        return RowCovariances.create("diagonal", np.exp(rng.uniform(-1.2, 0.5, size=(n, d))), d)
    return RowCovariances.isotropic(np.exp(rng.uniform(-1.2, 0.5, size=n)), d)


def _repeated_estimates(adapter, X, covs, weights, gradient, moment, n_draws, repeats):
    out = []
    for k in range(repeats):
        assert type(covs).kind == moment
        psi, g = smoothed_scores(
            adapter, X, covs, n_draws, seed=(7,), stage=optimization_stage(9, k),
            weights=weights, gradient=gradient, batch_size=10**6,
        )
        out.append(g)
    out = np.array(out)
    return out.mean(axis=0), out.std(axis=0, ddof=1) / np.sqrt(repeats), psi


@pytest.mark.parametrize(
    "gradient, tau", [("score", 0.8), ("score", 0.0), ("pathwise", 0.8)], ids=["score", "score-hard", "pathwise"]
)
@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
def test_score_moments_gradient_matches_the_exact_linear_model(gradient, tau, kind):
    # tau > 0: a probit model, E[F_1] = Phi(m / sqrt(tau^2 + w^T Sigma w));
    # tau = 0: a hard linear classifier, E[vote_1] = Phi(m / sqrt(w^T Sigma w)).
    rng = np.random.default_rng(["isotropic", "diagonal", "full"].index(kind) + 10 * (gradient == "score"))
    d, n = 3, 4
    adapter, X = _probit_rows(rng, d, n, tau=tau)
    covs = _covariances(kind, rng, n, d)
    sigma = covs.matrices()
    # h = 0.3 F_0 + 1.3 F_1: the natural gradient of E[h] is 1.0 * that of psi_1
    weights = np.tile([0.3, 1.3], (n, 1))
    n_draws = 40_000 if gradient == "score" else 4_000
    est, se, psi = _repeated_estimates(adapter, X, covs, weights, gradient, kind, n_draws, repeats=6)

    exact_w = adapter.exact_whitened_gradient(X, sigma)
    if kind == "full":
        exact = exact_w
    elif kind == "diagonal":
        exact = np.einsum("nii->ni", exact_w)
    else:
        exact = np.einsum("nii->n", exact_w) / d
    tol = 5 * se + 0.02 * np.abs(exact_w).max()
    assert np.all(np.abs(est - exact) <= tol), (est, exact, se)
    # mean scores are unbiased estimates of the exact smoothed probability
    p = adapter.exact_proba(X, sigma)
    assert_allclose(psi[:, 1], p, atol=5 * np.sqrt(0.25 / n_draws))

    # directional derivatives of the exact smoothed probability, within MC error
    f = lambda s: adapter.exact_proba(X, s)  # noqa: E731
    if kind == "full":
        for _ in range(3):
            v = random_symmetric(rng, n, d)
            fd = directional_derivative(f, sigma, v)
            pairing = fisher_rao_pairing(sigma, est, v)
            bound = fisher_rao_pairing(sigma, 5 * se + 0.02 * np.abs(exact_w).max(), np.abs(v)) * d
            assert np.all(np.abs(pairing - fd) <= np.abs(bound) + 1e-4), (pairing, fd)
    elif kind == "diagonal":
        # along log s_i^2 the metric is 1/2 I: df/dv_i = 1/2 * estimate_i
        var = covs.values
        for i in range(d):
            step = np.zeros((n, d))
            step[:, i] = 1e-5
            fd = (f(_diag(var * np.exp(step))) - f(_diag(var * np.exp(-step)))) / 2e-5
            assert np.all(np.abs(0.5 * est[:, i] - fd) <= 0.5 * tol[:, i] + 1e-6)
    else:
        var = covs.values
        eye = np.eye(d)
        fd = (f(var[:, None, None] * np.exp(1e-5) * eye) - f(var[:, None, None] * np.exp(-1e-5) * eye)) / 2e-5
        assert np.all(np.abs(0.5 * d * est - fd) <= 0.5 * d * tol + 1e-6)


def _diag(v):
    out = np.zeros(v.shape + (v.shape[-1],))
    idx = np.arange(v.shape[-1])
    out[:, idx, idx] = v
    return out


@pytest.mark.torch
def test_score_moments_gradient_through_a_skorch_net():
    import torch
    from skorch import NeuralNetClassifier
    from torch import nn

    from nets import Probit
    from smoothcert._estimators._adapters import make_adapter

    d, n = 3, 4
    rng = np.random.default_rng(2)
    probit = ProbitAdapter(rng.standard_normal(d), -0.2, 0.7)
    torch.manual_seed(0)
    net = NeuralNetClassifier(nn.Sequential(nn.Linear(d, 1), Probit(0.7)), predict_nonlinearity=None)
    net.initialize()
    with torch.no_grad():
        net.module_[0].weight.copy_(torch.as_tensor(probit.w[None], dtype=torch.float32))
        net.module_[0].bias.fill_(probit.b)
    adapter = make_adapter(net, np.array([0, 1]), True)
    assert adapter.supports_gradient
    X = rng.standard_normal((n, d))
    covs = RowCovariances.from_matrices(random_spd(rng, n, d, low=-1.0, high=0.3))
    weights = np.tile([-1.0, 1.0], (n, 1))
    est, se, psi = _repeated_estimates(adapter, X, covs, weights, "pathwise", "full", 4000, repeats=6)
    exact = 2.0 * probit.exact_whitened_gradient(X, covs.matrices())
    assert np.all(np.abs(est - exact) <= 5 * se + 0.02 * np.abs(exact).max() + 1e-5)
    assert_allclose(psi[:, 1], probit.exact_proba(X, covs.matrices()), atol=0.03)


# ------------------------------------------------------------------ the steps
@pytest.mark.parametrize("seed", range(5))
def test_riemannian_step_stays_spd_within_eigenvalue_bounds(seed):
    rng = np.random.default_rng(seed)
    n, d = 40, 4
    low = np.exp(rng.uniform(-3, -1, size=n))
    high = low * np.exp(rng.uniform(1, 4, size=n))
    start = clamp_eigenvalues(random_spd(rng, n, d, low=-2, high=2), low, high)
    state = _State("full", start, low, high, d)
    for scale in [0.1, 1.0, 5.0, 1e4]:  # the last would overflow expm unless capped
        direction = scale * random_symmetric(rng, n, d)
        out = state.step(direction)
        assert_allclose(out, np.swapaxes(out, 1, 2), atol=0)
        eig = np.linalg.eigvalsh(out)
        assert np.all(eig > 0)
        assert np.all(eig >= low[:, None] * (1 - 1e-9))
        assert np.all(eig <= high[:, None] * (1 + 1e-9))
        RowCovariances.from_matrices(out)  # accepted as SPD by the engine
    # a small step inside the bounds is the exponential map, unclamped
    small = 1e-3 * random_symmetric(rng, n, d)
    wide = _State("full", start, np.full(n, 1e-12), np.full(n, 1e12), d)
    root = sym_sqrt(start)
    expected = np.array([r @ expm(w) @ r for r, w in zip(root, small)])
    assert_allclose(wide.step(small), expected, rtol=1e-9, atol=1e-14)


def test_isotropic_and_diagonal_steps_clip_to_the_bounds():
    n, d = 3, 2
    low, high = np.array([-1.0, -2.0, 0.0]), np.array([1.0, 0.5, 2.0])
    iso = _State("isotropic", np.zeros(n), low, high, d)
    assert_allclose(iso.step(np.array([5.0, -5.0, 0.5])), [1.0, -2.0, 0.5])
    diag = _State("diagonal", np.zeros((n, d)), low, high, d)
    assert_allclose(diag.step(np.array([[5.0, -5.0], [0.1, 0.2], [-3, 3]])), [[1, -1], [0.1, 0.2], [0, 2]])


# ---------------------------------------------------- keep-best ascent, exact
def _settings(n_iter, learning_rate, objective, kappa, n_draws=10**7, blend=0.0):
    """Search settings with a radius curve of 10^6 certification draws and no tempering."""
    return SearchSettings(
        n_iter=n_iter, learning_rate=learning_rate, n_samples_optim=n_draws, objective=objective,
        kappa=kappa, curve=RadiusCurve(10**6, 0.001), tau=1.0, gradient="score", votes="soft", blend=blend,
    )


class ExactProbitSampler:
    """A noise-free sampler for ``_run_stage``: exact scores and every gradient statistic."""

    def __init__(self, adapter, X):
        self.adapter, self.X = adapter, X

    def subset(self, rows):
        return ExactProbitSampler(self.adapter, self.X[rows])

    def scores(self, covs, tag, rows=None):
        X = self.X if rows is None else self.X[rows]
        p = self.adapter.exact_proba(X, covs.matrices())
        return np.stack([1 - p, p], axis=1)

    def statistics(self, covs, tag, weights, basis, blend):
        sigma = covs.matrices()
        coef = weights[:, 1] - weights[:, 0]
        W = coef[:, None, None] * self.adapter.exact_whitened_gradient(self.X, sigma)
        m = self.X @ self.adapter.w + self.adapter.b
        total = np.sqrt(self.adapter.tau**2 + np.einsum("i,nij,j->n", self.adapter.w, sigma, self.adapter.w))
        grad_x = (coef * stats.norm.pdf(m / total) / total)[:, None] * self.adapter.w
        out = {"psi": self.scores(covs, tag), "v": covs.factor_transpose(grad_x), "tr": np.trace(W, axis1=1, axis2=2),
               "diag": np.einsum("nii->ni", W), "moment": W}
        if basis is not None:
            out["WB"] = W @ basis
        return out


def _run(kind, theta, low, high, d, sampler, settings, volume=None):
    stage = _State(kind, theta, low, high, d)
    stage.volume = volume
    n = len(theta)
    return _run_stage(0, stage, sampler, settings, np.zeros((n, d)), np.ones(n), np.full(n, settings.blend))


@pytest.mark.parametrize("blend", [0.0, 0.5])
def test_riemannian_ascent_aligns_the_ellipse_with_a_linear_boundary(monkeypatch, blend):
    # Volume objective, linear boundary w.x + b = 0: the best Sigma has its
    # small axis along w (at the floor) and the others at the cap. Started
    # rotated away from w, the structured Fisher-Rao ascent (the path finds
    # w, the step is split along it) must end with its smallest eigenvector
    # along w / |w|, and the exact objective never decreases.
    rng = np.random.default_rng(0)
    d, n = 3, 5
    adapter = ProbitAdapter(rng.standard_normal(d), 0.0, 1e-3)
    X = rng.standard_normal((n, d))
    X += ((1.5 - X @ adapter.w) / (adapter.w @ adapter.w))[:, None] * adapter.w  # margin 1.5
    low, high = 0.05, 4.0
    start = random_spd(rng, n, d, low=np.log(0.3), high=np.log(1.0))
    settings = _settings(150, 0.5, "volume", 0.0, blend=blend)
    sampler = ExactProbitSampler(adapter, X)
    values = []
    original_accept = _Stage.accept

    def accept(self, candidate, mask):
        original_accept(self, candidate, mask)
        values.append(settings.value(sampler.scores(self.covariances(), 0), self.covariances(), np.ones(n)))

    monkeypatch.setattr(_Stage, "accept", accept)
    j0 = settings.value(sampler.scores(RowCovariances.from_matrices(start), 0), RowCovariances.from_matrices(start),
                        np.ones(n))
    stage, report = _run("full", start, np.full(n, low), np.full(n, high), d, sampler, settings)
    values = np.array([j0] + values)
    assert np.all(np.diff(values, axis=0) >= -1e-12), "keep-best must never decrease the objective"
    assert np.all(values[-1] > 1.5 * j0)
    eig, vec = np.linalg.eigh(stage.theta)
    unit = adapter.w / np.linalg.norm(adapter.w)
    assert np.all(np.abs(vec[:, :, 0] @ unit) > 0.99)
    assert np.all(eig >= low * (1 - 1e-9)) and np.all(eig <= high * (1 + 1e-9))
    assert np.all(eig[:, -1] > 0.9 * high)
    assert 0 < report["accepted"] <= n * 150
    assert not report["distrust"].any()


@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "lowrank"])
def test_flat_and_lowrank_stages_climb_the_exact_objective(kind):
    # Ball objective of an exact probit model: gap * sigma_min increases with
    # the noise along the boundary; every stage must climb.
    rng = np.random.default_rng(1)
    d, n = 4, 4
    adapter = ProbitAdapter(np.array([1.0, 0.5, 0.0, -0.3]), 0.0, 0.5)
    X = np.column_stack([rng.uniform(0.5, 1.0, n), rng.standard_normal((n, d - 1))])
    theta = {
        "isotropic": np.full(n, np.log(0.01)),
        "diagonal": np.full((n, d), np.log(0.01)),
        "lowrank": np.concatenate([np.full((n, d, 1), np.log(0.01)), np.zeros((n, d, 2))], axis=2),
    }[kind]
    sampler = ExactProbitSampler(adapter, X)
    settings = _settings(40, 0.3, "ball", 2.0)
    before = FORMS[kind].from_parameters(theta, d)
    stage, _ = _run(kind, theta, np.full(n, np.log(0.01)), np.full(n, np.log(1.0)), d, sampler, settings)
    after = stage.covariances()

    def j(covs):
        return settings.value(sampler.scores(covs, 0), covs, np.ones(n))

    assert np.all(j(after) > 1.5 * j(before))
    eig = np.linalg.eigvalsh(after.matrices())
    assert np.all(eig >= 0.01 * (1 - 1e-9)) and np.all(eig <= 1.0 * (1 + 1e-9))


# ------------------------------------------------ steps of a real search
@pytest.mark.parametrize("gradient", ["score", pytest.param("pathwise", marks=pytest.mark.torch)])
def test_every_riemannian_step_of_a_search_is_spd_within_bounds(monkeypatch, gradient):
    # Record every candidate of the full-SPD stage during a real search; each
    # must be SPD with eigenvalues in [floor, cap] and geometric mean at most
    # the volume cap, the floor being the row's isotropic optimum (ANCER's
    # "superset" constraint).
    from sklearn.datasets import make_moons
    from sklearn.ensemble import RandomForestClassifier

    from smoothcert import CertifiedRegion

    X, y = make_moons(150, noise=0.15, random_state=0)
    if gradient == "score":
        base = RandomForestClassifier(10, random_state=0)
    else:
        from nets import classifier, relu_sequential

        base = classifier(relu_sequential((2, 16, 2)), max_epochs=20, lr=0.1)
    sigma, bounds = 0.3, (0.5, 3.0)
    region = CertifiedRegion(
        base, method="isotropic", objective="ball", sigma=sigma, sigma_bounds=bounds,
        n_iter=6, n_samples_optim=32, n_samples=100, random_state=0, gradient=gradient,
        guarantee="per-covariance",
    ).fit(X, y)
    Xq = X[:20]
    floor = region.optimize_covariance(Xq)[:, 0, 0]
    steps = []
    original = _Stage.step

    def step(self, direction):
        out = original(self, direction)
        if self.kind == "full":
            steps.append((out, np.array(self.low, copy=True), np.array(self.high, copy=True)))
        return out

    monkeypatch.setattr(_Stage, "step", step)
    cov = region.set_params(method="riemannian").optimize_covariance(Xq)
    assert len(steps) >= 6
    cap = (bounds[1] ** 2 / bounds[0] * sigma) ** 2  # per axis, scale_cap="volume"
    volume = (bounds[1] * sigma) ** 2  # geometric mean of the eigenvalues
    for out, low, high in steps:
        assert_allclose(high, cap, rtol=1e-12)
        assert_allclose(out, np.swapaxes(out, 1, 2), atol=0)
        eig = np.linalg.eigvalsh(out)
        assert np.all(eig >= low[:, None] * (1 - 1e-9))
        assert np.all(eig <= cap * (1 + 1e-9))
        assert np.all(np.exp(np.log(eig).mean(axis=1)) <= volume * (1 + 1e-9))
    assert np.all(steps[0][1] == floor) or np.allclose(steps[0][1], floor, rtol=1e-12)
    eig = np.linalg.eigvalsh(cov)
    assert np.all(eig >= floor[:, None] * (1 - 1e-9)) and np.all(eig <= cap * (1 + 1e-9))
    # the search did move some rows off the isotropic optimum
    assert np.any(np.abs(cov - floor[:, None, None] * np.eye(2)).max(axis=(1, 2)) > 1e-6)


# ------------------------------------------------ end-of-stage validation
class TwoFacedSampler:
    """Scores that reward noise on the step draws; the validation draws (tags
    after the initial one) tell another story: ``psi(s_min)`` there."""

    def __init__(self, n_iter, truth):
        self.first_validation_tag = optimization_stage(0, n_iter + 1)
        self.truth = truth

    def scores(self, covs, tag, rows=None):
        s_min = np.sqrt(covs.min_eigenvalue())
        p = self.truth(s_min) if tag >= self.first_validation_tag else np.full(len(covs), 0.8)
        return np.stack([p, 1 - p], axis=1)

    def statistics(self, covs, tag, weights, basis, blend):
        n, d = len(covs), covs.n_features
        out = {"psi": self.scores(covs, tag), "v": np.zeros((n, d)), "tr": np.zeros(n),
               "diag": np.zeros((n, d)), "moment": np.zeros((n, d, d))}
        if basis is not None:
            out["WB"] = np.zeros(basis.shape)
        return out


@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
@pytest.mark.parametrize(
    "truth, kept", [(lambda s: stats.norm.cdf(0.2 / s), False), (lambda s: np.full(len(s), 0.9), True)]
)
def test_stage_keeps_its_end_only_if_it_validates(kind, truth, kept):
    n, d, n_iter = 3, 2, 10
    start = {
        "isotropic": np.full(n, np.log(0.1)),
        "diagonal": np.full((n, d), np.log(0.1)),
        "full": 0.1 * np.broadcast_to(np.eye(d), (n, d, d)).copy(),
    }[kind]
    low, high = (np.full(n, np.log(0.1)), np.full(n, np.log(4.0)))
    if kind == "full":
        low, high = np.exp(low), np.exp(high)
    settings = _settings(n_iter, 0.5, "ball", 2.0, n_draws=256)
    stage, report = _run(kind, start.copy(), low, high, d, TwoFacedSampler(n_iter, truth), settings)
    assert report["accepted"] > 0.5 * n * n_iter  # the steps were accepted on their own draws
    if kept:
        assert np.all(stage.covariances().min_eigenvalue() > 0.2)
    else:
        assert_allclose(stage.theta, start)
        assert report["reverted"].all()


def test_validation_rejects_insignificant_improvements():
    n, d = 4, 2
    start = RowCovariances.isotropic(np.full(n, 0.25), d)
    end = RowCovariances.isotropic(np.full(n, 0.25 * (1 + 1e-12)), d)  # told apart by a hair
    base = np.array([0.70, 0.70, 0.70, 0.70])
    # per-batch gains of the end point (in p): consistent, none, noisy, negative
    gains = np.array([[0.02, 0.0, 0.02, -0.01], [0.021, 0.0, -0.05, -0.01], [0.019, -1e-4, 0.06, -0.01]])

    class Sampler:
        def scores(self, covs, tag, rows):
            p = base + (gains[tag] if covs.values[0] > 0.25 else 0.0)
            return np.stack([p, 1 - p], axis=1)

    settings = _settings(10, 0.5, "ball", 2.0, n_draws=256)
    keep, distrust = validated(Sampler(), start, end, np.arange(n), [0, 1, 2], settings, np.ones(n))
    assert np.array_equal(keep, [True, False, False, False]), keep
    assert not distrust.any()
    assert VALIDATION_Z >= 1
    # a single batch only asks for a higher value
    keep, _ = validated(Sampler(), start, end, np.arange(n), [2], settings, np.ones(n))
    assert np.array_equal(keep, [True, False, True, False])


def test_tempered_rows_that_misread_the_boundary_are_distrusted():
    # Tempered draws read the margin of Sigma from tau^2 Sigma. A row whose
    # untempered objective gets significantly worse, or whose tempered margin
    # contradicts the untempered one, is sent back and distrusted.
    n, d = 3, 2
    start = RowCovariances.isotropic(np.full(n, 0.25), d)
    end = RowCovariances.isotropic(np.full(n, 0.30), d)
    tau = np.full(n, 3.0)

    class Sampler:
        def scores(self, covs, tag, rows):
            s = np.sqrt(covs.min_eigenvalue())  # 0.5, 0.55 untempered; 1.5, 1.64 tempered
            tempered = s > 1.0
            # row 0: a flat boundary at distance 0.6 (both readings agree);
            # row 1: the tempered draws see a boundary closer than it is;
            # row 2: a flat boundary, but the end is worse untempered
            delta = np.array([0.6, 0.6, 0.6])[rows]
            t = delta / s
            t = np.where(tempered & (rows == 1), 0.5 * t, t)
            t = np.where(~tempered & (rows == 2) & (s > 0.52), 0.3 * t, t)
            # batch-to-batch noise, so that the standard errors are not zero
            p = np.clip(stats.norm.cdf(t) + 2e-3 * (-1.0) ** tag, 0, 1)
            return np.stack([p, 1 - p], axis=1)

    settings = _settings(10, 0.5, "volume", 2.0, n_draws=256)
    keep, distrust = validated(Sampler(), start, end, np.arange(n), [0, 1, 2, 3], settings, tau)
    assert distrust.tolist() == [False, True, True]
    assert not keep[1] and not keep[2]
    # the margin check alone
    psi = lambda p: np.stack([p, 1 - p], axis=1)  # noqa: E731
    flags = inconsistent_margins(psi(np.array([0.98, 0.98, 0.9999])), psi(np.array([0.75, 0.6, 0.83])),
                                 np.full(3, 3.0), 1024)
    assert flags.tolist() == [False, True, False]
