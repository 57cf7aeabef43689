"""The covariance search's mathematics: gradients against finite differences, steps.

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
from smoothcert._search._gradients import smoothed_scores
from smoothcert._search._objectives import _shape_factor, _shape_gradient, _smooth_shape_factor
from smoothcert._search._stages import STAGES, LowRankTangent


class _State:
    """A search stage's parameters and bounds, as the search holds them."""

    def __init__(self, kind, theta, low, high, d):
        self.stage, self.theta, self.low, self.high, self.d = STAGES[kind](), theta, low, high, d

    def covariances(self):
        return self.stage.from_parameters(self.theta, self.d)

    def step(self, direction):
        return self.stage.step(self.theta, direction, self.low, self.high)

    def shape_tangent(self, objective, kappa):
        return self.stage.shape_tangent(self.covariances(), objective, kappa)


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
    g = state.shape_tangent(objective, kappa)
    f_iso = lambda v: _shape_factor(np.repeat(np.exp(v)[:, None], d, axis=1), objective, kappa)  # noqa: E731
    assert_allclose((d / 2) * g, (f_iso(v_iso + eps) - f_iso(v_iso - eps)) / (2 * eps), rtol=1e-6)

    v_diag = rng.uniform(-2, 1, size=(n, d))
    state = _State("diagonal", v_diag, np.full(n, -9.0), np.full(n, 9.0), d)
    g = state.shape_tangent(objective, kappa)
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
    g = state.shape_tangent(objective, kappa)
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


def test_stage_norms_are_the_fisher_rao_norm_of_the_whitened_tangent():
    # sqrt(tr(W^2) / 2) of the dense whitened tangent each stage's vector stands for
    rng = np.random.default_rng(4)
    n, d = 5, 4
    dense_norm = lambda w: np.sqrt(0.5 * np.einsum("nij,nji->n", w, w))  # noqa: E731
    t = rng.standard_normal(n)
    assert_allclose(STAGES["isotropic"]().norm(t, d), dense_norm(t[:, None, None] * np.eye(d)), rtol=1e-12)
    g = rng.standard_normal((n, d))
    assert_allclose(STAGES["diagonal"]().norm(g, d), dense_norm(_diag(g)), rtol=1e-12)
    w = random_symmetric(rng, n, d)
    assert_allclose(STAGES["full"]().norm(w, d), dense_norm(w), rtol=1e-12)
    # low rank: diag(g) + B C B^T, each part alone (the norm takes them as orthogonal)
    stage = STAGES["lowrank"]()
    basis, _ = np.linalg.qr(rng.standard_normal((n, d, 2)))
    block = random_symmetric(rng, n, 2)
    assert_allclose(stage.norm(LowRankTangent(np.zeros((n, d)), basis, block), d),
                    dense_norm(basis @ block @ np.swapaxes(basis, 1, 2)), rtol=1e-12)
    assert_allclose(stage.norm(LowRankTangent(g, basis, np.zeros((n, 2, 2))), d), dense_norm(_diag(g)), rtol=1e-12)


def test_isotropic_and_diagonal_steps_clip_to_the_bounds():
    n, d = 3, 2
    low, high = np.array([-1.0, -2.0, 0.0]), np.array([1.0, 0.5, 2.0])
    iso = _State("isotropic", np.zeros(n), low, high, d)
    assert_allclose(iso.step(np.array([5.0, -5.0, 0.5])), [1.0, -2.0, 0.5])
    diag = _State("diagonal", np.zeros((n, d)), low, high, d)
    assert_allclose(diag.step(np.array([[5.0, -5.0], [0.1, 0.2], [-3, 3]])), [[1, -1], [0.1, 0.2], [0, 2]])
