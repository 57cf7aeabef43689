"""Certificates pulled back through affine preprocessing into raw input space."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    PolynomialFeatures,
    StandardScaler,
)

from smoothcert import (
    Certificate,
    CertifiedRegion,
    SmoothedClassifier,
    certified_accuracy,
    certify,
    make_certified_scorer,
)
from smoothcert._geometry._forms import RowCovariances
from smoothcert._certify._affine import Affine, affine_map
from smoothcert._certify._pullback import pull_back


def _data(n=60, d=3, seed=0):
    """Two classes separated along a slanted direction, with anisotropic raw scales."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = np.linspace(1.0, -0.5, d)
    y = (X @ w > 0).astype(int)
    X = X * np.linspace(3.0, 0.5, d) + np.arange(d)  # scaled and shifted raw space
    return X, y


def _smoothed(**kw):
    return SmoothedClassifier(LogisticRegression(), n_samples=500, random_state=0, **kw)


def _region(**kw):
    return CertifiedRegion(
        LogisticRegression(), method="riemannian", n_iter=3, n_samples_optim=32,
        n_samples=500, random_state=0, **kw,
        guarantee="per-covariance",
    )


def _mahalanobis(cert, points):
    delta = points - cert.center[:, None, :]
    white = cert.covariances.whiten(np.arange(len(cert)), delta)
    return np.sqrt(np.square(white).sum(axis=2))


def _boundary_in_transformed_space(cert_t, n_dirs=16, seed=0):
    """Points y + r Sigma^(1/2) u with unit u, shape (n, n_dirs, k)."""
    rng = np.random.default_rng(seed)
    n, k = cert_t.center.shape
    u = rng.standard_normal((n, n_dirs, k))
    u /= np.linalg.norm(u, axis=2, keepdims=True)
    root = cert_t.covariances.sqrt_matrices()
    return cert_t.center[:, None, :] + cert_t.mahalanobis_radius[:, None, None] * (u @ root)


PREPROCESSORS = {
    "standard": lambda: [StandardScaler()],
    "pca": lambda: [PCA()],
    "pca-whiten": lambda: [PCA(whiten=True)],
    "minmax": lambda: [MinMaxScaler(feature_range=(-1, 2))],
    "maxabs": lambda: [MaxAbsScaler()],
    "composed": lambda: [StandardScaler(), "passthrough", PCA(whiten=True), MinMaxScaler()],
    "nested": lambda: [make_pipeline(StandardScaler(with_mean=False), PCA()), MaxAbsScaler()],
}


@pytest.mark.parametrize("final", ["smoothed", "region"])
@pytest.mark.parametrize("name", list(PREPROCESSORS))
def test_raw_ellipsoid_is_the_image_of_the_transformed_one(name, final):
    X, y = _data()
    est = _smoothed() if final == "smoothed" else _region()
    pipe = make_pipeline(*PREPROCESSORS[name](), est).fit(X, y)
    Xq = X[:12]
    cert = certify(pipe, Xq)
    assert isinstance(cert, Certificate)
    assert_allclose(cert.center, Xq)
    assert cert.pullback_info["injective"]
    cert_t = pipe[-1].certify(pipe[:-1].transform(Xq))
    assert np.array_equal(cert.prediction, cert_t.prediction)
    assert np.array_equal(cert.abstained, cert_t.abstained)
    assert_allclose(cert.mahalanobis_radius, cert_t.mahalanobis_radius)
    assert cert.certified.sum() >= 6
    # transformed-space boundary points, mapped back, lie on the raw boundary
    boundary = _boundary_in_transformed_space(cert_t)
    raw = pipe[:-1].inverse_transform(boundary.reshape(-1, boundary.shape[2]))
    raw = raw.reshape(len(Xq), -1, X.shape[1])
    keep = cert.certified
    dist = _mahalanobis(cert, raw)[keep]
    assert_allclose(dist, np.broadcast_to(cert.mahalanobis_radius[keep, None], dist.shape), atol=1e-8)
    # and the region test agrees just inside / just outside
    inside = cert.center[:, None] + 0.999 * (raw - cert.center[:, None])
    outside = cert.center[:, None] + 1.001 * (raw - cert.center[:, None])
    assert cert.contains_points(inside)[keep].all()
    assert not cert.contains_points(outside)[keep].any()


@pytest.mark.parametrize("name", ["standard", "pca-whiten", "composed"])
def test_inscribed_radius_formula(name):
    X, y = _data()
    pipe = make_pipeline(*PREPROCESSORS[name](), _region()).fit(X, y)
    cert = certify(pipe, X[:8])
    cert_t = pipe[-1].certify(pipe[:-1].transform(X[:8]))
    A, _ = affine_map(Pipeline(pipe.steps[:-1]), X.shape[1])
    precision = np.einsum("ji,njk,kl->nil", A, np.linalg.inv(cert_t.covariance), A)
    lam_max = np.linalg.eigvalsh(precision)[:, -1]
    expected = cert_t.mahalanobis_radius / np.sqrt(lam_max)
    assert_allclose(cert.radius, expected, rtol=1e-10)
    B = np.linalg.inv(A)
    raw_cov = np.einsum("ij,njl,kl->nik", B, cert_t.covariance, B)
    assert_allclose(cert.covariance, raw_cov, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
@pytest.mark.parametrize("diagonal_map", [True, False])
def test_pull_back_of_hand_built_certificates(kind, diagonal_map):
    rng = np.random.default_rng(3)
    n, d = 5, 3
    if kind == "isotropic":
        cov = RowCovariances.isotropic(rng.uniform(0.1, 2.0, n), d)
    elif kind == "diagonal":
        cov = RowCovariances.create("diagonal", rng.uniform(0.1, 2.0, (n, d)), d)
    else:
        m = rng.standard_normal((n, d, d))
        cov = RowCovariances.from_matrices(m @ m.transpose(0, 2, 1) + 0.2 * np.eye(d))
    if diagonal_map:
        aff = Affine(rng.uniform(0.2, 3.0, d) * rng.choice([-1, 1], d), rng.standard_normal(d), True)
    else:
        aff = Affine(rng.standard_normal((d, d)) + 2 * np.eye(d), rng.standard_normal(d), False)
    A = aff.matrix()
    X_raw = rng.standard_normal((n, d))
    r = rng.uniform(0.5, 2.0, n)
    cert_t = Certificate(
        center=aff.apply(X_raw), prediction=np.zeros(n, int), abstained=np.zeros(n, bool),
        covariance=cov, mahalanobis_radius=r, p_lower=np.full(n, 0.9), alpha=0.001,
    )
    cert = pull_back(cert_t, aff, X_raw)
    B = np.linalg.inv(A)
    assert_allclose(cert.covariance, B @ cov.matrices() @ B.T, rtol=1e-10, atol=1e-14)
    lam_max = np.linalg.eigvalsh(A.T @ np.linalg.inv(cov.matrices()) @ A)[:, -1]
    assert_allclose(cert.radius, r / np.sqrt(lam_max), rtol=1e-10)
    if diagonal_map and kind != "full":
        assert cert.covariances.kind in ("isotropic", "diagonal")


def test_non_injective_pca_gives_a_sound_ellipsoid_with_the_exact_inscribed_ball():
    X, y = _data(d=4)
    pipe = make_pipeline(StandardScaler(), PCA(n_components=2), _region()).fit(X, y)
    Xq = X[:10]
    cert = certify(pipe, Xq)
    assert not cert.pullback_info["injective"]
    assert cert.pullback_info["n_features_transformed"] == 2
    cert_t = pipe[-1].certify(pipe[:-1].transform(Xq))
    A, _ = affine_map(Pipeline(pipe.steps[:-1]), 4)
    precision = np.einsum("ji,njk,kl->nil", A, np.linalg.inv(cert_t.covariance), A)
    lam_max = np.linalg.eigvalsh(precision)[:, -1]
    assert_allclose(cert.radius, cert_t.mahalanobis_radius / np.sqrt(lam_max), rtol=1e-9)
    # every point of the returned ellipsoid maps into the transformed-space ellipsoid
    rng = np.random.default_rng(0)
    u = rng.standard_normal((10, 64, 4))
    u /= np.linalg.norm(u, axis=2, keepdims=True)
    pts = Xq[:, None] + cert.mahalanobis_radius[:, None, None] * (u @ cert.covariances.sqrt_matrices())
    mapped = pipe[:-1].transform(pts.reshape(-1, 4)).reshape(10, 64, 2)
    keep = cert.certified
    assert (_mahalanobis(cert_t, mapped)[keep] <= cert_t.mahalanobis_radius[keep, None] + 1e-9).all()
    # the null direction is unbounded in truth: moving along it keeps the image fixed
    with pytest.raises(ValueError, match="cylinder"):
        certify(pipe, Xq, non_injective="raise")
    with pytest.raises(ValueError, match="non_injective"):
        certify(pipe, Xq, non_injective="nope")


@pytest.mark.parametrize(
    "step, match",
    [
        (FunctionTransformer(np.tanh), "FunctionTransformer"),
        (FunctionTransformer(), "FunctionTransformer"),
        (PolynomialFeatures(2), "PolynomialFeatures"),
        (MinMaxScaler(clip=True), "clip"),
    ],
)
def test_non_affine_steps_are_refused_naming_the_step(step, match):
    X, y = _data()
    pipe = make_pipeline(StandardScaler(), step, _smoothed()).fit(X, y)
    with pytest.raises(ValueError, match=match) as info:
        certify(pipe, X[:3])
    assert "step" in str(info.value)
    with pytest.raises(ValueError, match=match):
        make_certified_scorer(0.1)(pipe, X, y)


def test_subclass_overriding_transform_is_refused():
    class Shifted(StandardScaler):
        def transform(self, X, copy=None):
            return super().transform(X) + 1.0

    X, y = _data()
    pipe = make_pipeline(Shifted(), _smoothed()).fit(X, y)
    with pytest.raises(ValueError, match="overrides"):
        certify(pipe, X[:3])


def test_last_step_must_certify():
    X, y = _data()
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match="cannot certify"):
        certify(pipe, X[:3])


def test_plain_estimator_dispatch_and_whole_pipeline_wrapped():
    X, y = _data()
    est = _smoothed(sigma=0.5).fit(X, y)
    a, b = certify(est, X[:5]), est.certify(X[:5])
    assert_allclose(a.radius, b.radius)
    # noise in raw space: wrap the whole pipeline
    wrapped = SmoothedClassifier(
        make_pipeline(StandardScaler(), LogisticRegression()), sigma=0.5, n_samples=500,
        random_state=0,
    ).fit(X, y)
    cert = certify(wrapped, X[:10])
    assert cert.covariances.kind == "isotropic"
    assert_allclose(cert.radius[cert.certified], 0.5 * cert.mahalanobis_radius[cert.certified])
    score = make_certified_scorer(0.2)(wrapped, X[:10], y[:10])
    assert score == pytest.approx(certified_accuracy(y[:10], cert, 0.2))
    assert score > 0.3


def test_scorer_on_a_pipeline_uses_the_raw_space_certificate():
    X, y = _data()
    pipe = make_pipeline(StandardScaler(), _smoothed(sigma=0.3)).fit(X, y)
    fixed = certify(pipe, X)
    for R in (0.0, 0.2, 0.5):
        # the scorer certifies at R, in raw units, sequentially
        cert = certify(pipe, X, radius=R)
        assert make_certified_scorer(R)(pipe, X, y) == certified_accuracy(y, cert, R)
        assert cert.target_radius == R and np.all(cert.radius[cert.certified] >= R)
        # ... and agrees with the fixed-budget certificate up to a few inputs
        assert abs(certified_accuracy(y, cert, R) - certified_accuracy(y, fixed, R)) <= 0.1


def test_dataframe_inputs_and_pandas_output():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    pipe = make_pipeline(StandardScaler(), PCA(), _smoothed()).set_output(transform="pandas")
    pipe.fit(df, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cert = certify(pipe, df.iloc[:5])
    assert_allclose(cert.center, X[:5])
    cert_t = pipe[-1].certify(pipe[:-1].transform(df.iloc[:5]))
    assert_allclose(cert.mahalanobis_radius, cert_t.mahalanobis_radius)
    # PCA is orthogonal and StandardScaler diagonal: the raw inscribed radius is
    # sigma * r times the smallest raw feature scale
    scale = pipe[0].scale_.min()
    assert_allclose(cert.radius, 0.25 * cert_t.mahalanobis_radius * scale, rtol=1e-10)
