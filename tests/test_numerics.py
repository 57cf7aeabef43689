"""Numerical edge cases: radius ceilings, extreme noise levels, near-singular
covariances, float32 base models fed float64 inputs."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy import stats
from sklearn.datasets import make_moons
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from smoothcert import Certificate, CertificateMemory, CertifiedRegion, SmoothedClassifier
from smoothcert._estimators._adapters import make_adapter
from smoothcert._geometry._forms import RowCovariances
from smoothcert._certify._procedures import certify_rows
from smoothcert._engine._streams import resolve_seed
from smoothcert._certify._stats import clopper_pearson_lower, mahalanobis_radius, radius_ceiling
from smoothcert.search import RiemannianSearch


@pytest.fixture(scope="module", autouse=True)
def _geomstats_imported():
    """Import geomstats once outside the warning checks (its import emits an ImportWarning)."""
    from smoothcert._geometry._fisher_rao import fisher_rao_metric

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportWarning)
        fisher_rao_metric(2)


@pytest.fixture(scope="module")
def moons():
    return make_moons(n_samples=120, noise=0.1, random_state=0)


def _linear_adapter(d=3):
    rng = np.random.default_rng(0)
    lr = LogisticRegression().fit(rng.standard_normal((20, d)), np.arange(20) % 2)
    lr.coef_ = np.linspace(1.0, -2.0, d)[None]
    lr.intercept_ = np.array([0.3])
    return make_adapter(lr, np.array([0, 1]), True)


# ---------------------------------------------------------- p_lower close to 1
@pytest.mark.parametrize("n", [10**7, 10**9, 10**12, 10**15, 10**18])
def test_all_votes_for_the_top_class_give_a_finite_radius(n):
    p = clopper_pearson_lower(n, n, 0.001)
    assert 0.5 < p <= 1.0
    r = mahalanobis_radius(p)
    assert np.isfinite(r) and r > 0
    assert radius_ceiling(n, 0.001) == pytest.approx(float(r))
    if n <= 10**15:
        # float64 still resolves alpha^(1/n) below 1: the documented "< 1". The
        # radius is computed from p itself, whose distance to 1 is only known to
        # ~1e-16 absolute, hence the relative tolerance (6e-5 at n = 10^15).
        assert p < 1.0
        exact = stats.norm.isf(-np.expm1(np.log(0.001) / n))
        assert float(r) == pytest.approx(exact, rel=1e-4)


def test_ten_million_draws_all_top_class():
    """End to end: N = 10^7 votes, all for the top class."""
    X = np.array([[5.0, 5.0], [-5.0, -5.0]])
    y = np.array([1, 0])
    base = LogisticRegression().fit(np.vstack([X, X + 0.1]), np.concatenate([y, y]))
    clf = SmoothedClassifier(base, sigma=0.1, n_samples=10**7, n_samples_selection=10,
                             alpha=0.001, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cert = clf.certify(X)
    assert_array_equal(cert.prediction, y)
    assert np.all(np.isfinite(cert.radius))
    assert cert.mahalanobis_radius == pytest.approx(radius_ceiling(10**7, 0.001))
    assert cert.radius == pytest.approx(0.1 * radius_ceiling(10**7, 0.001))


# ------------------------------------------------------------ extreme sigma
@pytest.mark.parametrize("sigma", [1e-6, 1e-12, 1e3, 1e8])
@pytest.mark.parametrize("method", ["smoothed", "isotropic", "diagonal", "riemannian"])
def test_extreme_sigma_gives_finite_results(moons, sigma, method):
    X, y = moons
    common = dict(sigma=sigma, n_samples=500, n_samples_selection=20, random_state=0)
    if method == "smoothed":
        est = SmoothedClassifier(LogisticRegression(), **common)
    else:
        est = CertifiedRegion(RandomForestClassifier(10, random_state=0), method=method,
                              n_iter=3, n_samples_optim=16, **common, guarantee="per-covariance")
    est.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cert = est.certify(X[:8])
        proba = est.predict_proba(X[:8])
    assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(axis=1), 1.0)
    for name in ("radius", "mahalanobis_radius", "p_lower"):
        assert np.all(np.isfinite(getattr(cert, name))), name
    ev = cert.covariances.eigenvalues()
    assert np.all(np.isfinite(ev)) and np.all(ev > 0)
    # noise scales stay within the (default) bounds around sigma: each at least
    # 0.25 sigma and at most 4^2 / 0.25 sigma, their geometric mean at most 4 sigma
    # (scale_cap="volume")
    assert np.all(np.sqrt(ev) >= 0.25 * sigma * (1 - 1e-9))
    assert np.all(np.sqrt(ev) <= 64.0 * sigma * (1 + 1e-9))
    assert np.all(np.exp(0.5 * np.log(ev).mean(axis=1)) <= 4.0 * sigma * (1 + 1e-9))
    if sigma <= 1e-6:
        # tiny noise: the base model's prediction, certified, with a tiny radius
        # (the smallest scale is at most the geometric mean)
        assert cert.certified.all()
        assert np.all(cert.radius <= 4 * sigma * radius_ceiling(500, 0.001) * (1 + 1e-9))


# (a sigma whose square under/overflows float64 is in test_bad_input's catalogue)


# ------------------------------------------------------- near-singular covariances
def _conditioned(cond, n, d, rng):
    q, _ = np.linalg.qr(rng.standard_normal((n, d, d)))
    eig = np.ones((n, d))
    eig[:, 0] = 1.0 / cond
    mats = np.einsum("nij,nj,nkj->nik", q, eig, q)
    return 0.5 * (mats + mats.transpose(0, 2, 1))


@pytest.mark.parametrize("cond", [1e8, 1e12])
def test_near_singular_covariances_are_handled(cond):
    rng = np.random.default_rng(5)
    d, n = 3, 200
    covs = RowCovariances.from_matrices(_conditioned(cond, n, d, rng))
    X = rng.standard_normal((n, d))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        top, p_lower, abstained, r, _ = certify_rows(
            _linear_adapter(d), X, covs, n_samples=2000, n_samples_selection=20, alpha=0.001,
            vote="hard", seed=resolve_seed(0), batch_size=10_000,
        )
        cert = Certificate(center=X, prediction=top, abstained=abstained, covariance=covs,
                           mahalanobis_radius=r, p_lower=p_lower, alpha=0.001)
        radius, log_volume = cert.radius, cert.log_volume
        inside = cert.contains_points(X)
    assert np.all(np.isfinite(r)) and np.all(np.isfinite(radius))
    assert np.all(np.isfinite(log_volume[cert.certified]))
    # lambda_min = 1 / cond is only resolved to ~1e-16 absolute by eigh
    assert np.all(radius <= r * np.sqrt(1.0 / cond) * (1 + 1e-3))
    assert_array_equal(inside, cert.certified)
    # the over-claim check of test_coverage still holds for such thin ellipsoids
    w = np.linspace(1.0, -2.0, d)
    reach = r * np.sqrt(np.einsum("i,nij,j->n", w, covs.matrices(), w))
    assert np.mean(~abstained & (reach > np.abs(X @ w + 0.3))) <= 0.01


def test_singular_and_indefinite_covariances_are_refused():
    rng = np.random.default_rng(6)
    singular = _conditioned(np.inf, 2, 3, rng)  # one eigenvalue exactly 0
    singular[:, :, :] = np.diag([1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="positive definite"):
        RowCovariances.from_matrices(singular)
    indefinite = np.repeat(np.diag([1.0, -1e-3, 2.0])[None], 2, axis=0)
    with pytest.raises(ValueError, match="positive definite"):
        RowCovariances.from_matrices(indefinite)
    with pytest.raises(ValueError, match="strictly positive"):
        RowCovariances.create("diagonal", np.array([[1.0, 0.0, 1.0]]), 3)


def test_memory_with_near_singular_regions():
    rng = np.random.default_rng(8)
    covs = _conditioned(1e12, 2, 2, rng)
    memory = CertificateMemory()
    memory.add(np.array([[0.0, 0.0], [3.0, 0.0]]), covs, [1.0, 1.0], [0, 1])
    assert memory.conflicts().shape == (0, 2)
    idx = memory.query(np.array([[0.0, 0.0], [3.0, 0.0], [10.0, 10.0]]))
    assert_array_equal(idx, [0, 1, -1])


def test_extreme_sigma_bounds_do_not_break_the_search(moons):
    X, y = moons
    est = CertifiedRegion(LogisticRegression(), n_iter=20, n_samples_optim=32,
                          search=RiemannianSearch(learning_rate=200.0, sigma_bounds=(1e-8, 1e8)),
                          n_samples=1000, random_state=0, guarantee="per-covariance")
    try:
        cert = est.fit(X, y).certify(X[:30])
    except ValueError as exc:
        assert "sigma_bounds" in str(exc)  # a clear refusal would be acceptable
    else:
        assert np.all(np.isfinite(cert.radius))


# ------------------------------------------------------- float32 base, float64 input
@pytest.mark.torch
@pytest.mark.parametrize("method", ["smoothed", "riemannian"])
def test_float32_base_with_float64_input(moons, one_torch_thread, method):
    from nets import tanh_net

    def _net():  # its forward pass asserts float32 input
        return tanh_net(lr=0.05, max_epochs=40, module__float32_only=True)

    X, y = moons
    assert X.dtype == np.float64
    common = dict(sigma=0.25, n_samples=500, n_samples_selection=20, random_state=0)
    if method == "smoothed":
        est = SmoothedClassifier(_net(), **common)
    else:
        est = CertifiedRegion(_net(), method=method, n_iter=3, n_samples_optim=32, **common, guarantee="per-covariance")
    est.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cert = est.certify(X[:10])
        proba = est.predict_proba(X[:10])
    assert cert.center.dtype == np.float64
    assert np.all(np.isfinite(cert.radius)) and np.all(np.isfinite(proba))
    assert cert.certified.mean() >= 0.5
    # float32 input that is exactly representable gives the very same certificate
    X32 = X[:10].astype(np.float32)
    a = est.certify(X32)
    b = est.certify(X32.astype(np.float64))
    assert_array_equal(a.p_lower, b.p_lower)
    assert_array_equal(a.covariance, b.covariance)
    # the float32 cast happens after the float64 noise: large offsets are fine
    far = est.certify(X[:3] + 1e4)
    assert np.all(np.isfinite(far.radius))
