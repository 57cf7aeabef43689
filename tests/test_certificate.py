"""The Certificate result and the RowCovariances it holds."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import gammaln

from smoothcert import Certificate
from smoothcert._geometry._forms import RowCovariances

N, D = 6, 3
ABSTAINED = np.array([False, False, True, False, True, False])


def _spd(rng, n, d):
    a = rng.standard_normal((n, d, d))
    return a @ a.transpose(0, 2, 1) + 0.1 * np.eye(d)


def _covariances(kind, rng):
    if kind == "isotropic":
        return RowCovariances.isotropic(rng.uniform(0.1, 2.0, size=N), D)
    if kind == "diagonal":
        return RowCovariances.create("diagonal", rng.uniform(0.1, 2.0, size=(N, D)), D)
    return RowCovariances.from_matrices(_spd(rng, N, D))


@pytest.fixture(params=["isotropic", "diagonal", "full"])
def cert(request):
    rng = np.random.default_rng(["isotropic", "diagonal", "full"].index(request.param))
    r = np.where(ABSTAINED, 0.0, rng.uniform(0.2, 3.0, size=N))
    return Certificate(
        center=rng.standard_normal((N, D)),
        prediction=np.array(["a", "b", "a", "c", "b", "a"]),
        abstained=ABSTAINED,
        covariance=_covariances(request.param, rng),
        mahalanobis_radius=r,
        p_lower=np.where(ABSTAINED, 0.4, 0.9),
        alpha=0.001,
    )


def _sqrtm(matrices):
    w, v = np.linalg.eigh(matrices)
    return np.einsum("nij,nj,nkj->nik", v, np.sqrt(w), v)


def test_covariance_property(cert):
    cov = cert.covariance
    assert cov.shape == (N, D, D)
    assert_allclose(cov, cov.transpose(0, 2, 1))
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    if cert.covariances.kind == "full":
        assert_allclose(cov, cert.covariances.values)
    else:
        assert_array_equal(cov[:, ~np.eye(D, dtype=bool)], 0.0)


def test_radius_is_r_sqrt_lambda_min(cert):
    lam_min = np.linalg.eigvalsh(cert.covariance)[:, 0]
    assert_allclose(cert.radius, cert.mahalanobis_radius * np.sqrt(lam_min), rtol=1e-12)
    assert_array_equal(cert.radius[ABSTAINED], 0.0)
    assert np.all(cert.radius[~ABSTAINED] > 0)


def test_contains_ball(cert):
    radius = cert.radius
    assert_array_equal(cert.contains_ball(0.999 * radius), ~ABSTAINED)
    assert_array_equal(cert.contains_ball(radius), ~ABSTAINED)
    assert not cert.contains_ball(1.001 * radius).any()
    assert_array_equal(cert.contains_ball(0.0), ~ABSTAINED)
    scalar = np.median(radius[~ABSTAINED])
    assert_array_equal(cert.contains_ball(scalar), ~ABSTAINED & (radius >= scalar))
    for bad in (-0.1, np.nan, np.inf):
        with pytest.raises(ValueError, match="radius"):
            cert.contains_ball(bad)


def test_contains_points_on_the_boundary(cert):
    rng = np.random.default_rng(11)
    u = rng.standard_normal((N, 50, D))
    u /= np.linalg.norm(u, axis=2, keepdims=True)
    root = _sqrtm(cert.covariance)
    # boundary of {x + d: d^T Sigma^-1 d <= r^2} is x + r Sigma^(1/2) u, |u| = 1
    boundary = np.einsum("nij,nmj->nmi", root, u) * cert.mahalanobis_radius[:, None, None]
    centre = cert.center[:, None, :]
    inside = cert.contains_points(centre + 0.99 * boundary)
    outside = cert.contains_points(centre + 1.01 * boundary)
    assert inside.shape == (N, 50)
    assert_array_equal(inside, np.repeat(~ABSTAINED[:, None], 50, axis=1))
    assert not outside.any()
    # the largest inscribed ball lies inside, just beyond it some point is out
    ball = centre + 0.99 * cert.radius[:, None, None] * u
    assert_array_equal(cert.contains_points(ball).all(axis=1), ~ABSTAINED)
    lam, vec = np.linalg.eigh(cert.covariance)
    shortest = cert.center + 1.01 * cert.radius[:, None] * vec[:, :, 0]
    assert not cert.contains_points(shortest).any()
    # 2-D input: one point per row
    assert_array_equal(cert.contains_points(cert.center), ~ABSTAINED)


def test_log_volume_and_proxy_radius(cert):
    d = D
    r = cert.mahalanobis_radius
    _, logdet = np.linalg.slogdet(cert.covariance)
    log_unit_ball = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1)
    with np.errstate(divide="ignore"):
        expected = d * np.log(r) + 0.5 * logdet + log_unit_ball
    assert_allclose(cert.log_volume[~ABSTAINED], expected[~ABSTAINED], rtol=1e-12)
    assert np.all(cert.log_volume[ABSTAINED] == -np.inf)
    # d = 3: volume of an ellipsoid = 4/3 pi r^3 sqrt(det Sigma)
    volume = 4 / 3 * np.pi * r**3 * np.sqrt(np.linalg.det(cert.covariance))
    assert_allclose(np.exp(cert.log_volume[~ABSTAINED]), volume[~ABSTAINED], rtol=1e-10)
    proxy = r * np.linalg.det(cert.covariance) ** (1 / (2 * d))
    assert_allclose(cert.proxy_radius, proxy, rtol=1e-12)
    assert np.all(cert.proxy_radius >= cert.radius)


def test_to_frame(cert):
    frame = cert.to_frame()
    assert list(frame.columns) == [
        "prediction", "abstained", "radius", "mahalanobis_radius", "p_lower",
        "log_volume", "proxy_radius", "min_sigma", "max_sigma", "guarantee",
    ]
    assert len(frame) == N
    assert set(frame["guarantee"]) == {cert.guarantee}
    assert_array_equal(frame["prediction"], cert.prediction)
    assert_array_equal(frame["abstained"], ABSTAINED)
    assert_allclose(frame["radius"], cert.radius)
    eig = np.linalg.eigvalsh(cert.covariance)
    assert_allclose(frame["min_sigma"], np.sqrt(eig[:, 0]), rtol=1e-12)
    assert_allclose(frame["max_sigma"], np.sqrt(eig[:, -1]), rtol=1e-12)


def test_slicing(cert):
    head = cert[:3]
    assert isinstance(head, Certificate) and len(head) == 3
    assert_array_equal(head.prediction, cert.prediction[:3])
    assert_array_equal(head.abstained, ABSTAINED[:3])
    assert_allclose(head.radius, cert.radius[:3])
    assert_allclose(head.covariance, cert.covariance[:3])
    assert_allclose(head.log_volume, cert.log_volume[:3])
    picked = cert[[5, 0]]
    assert_allclose(picked.center, cert.center[[5, 0]])
    assert_allclose(picked.covariance, cert.covariance[[5, 0]])
    assert_array_equal(picked.contains_points(picked.center), ~ABSTAINED[[5, 0]])
    one = cert[1]
    assert len(one) == 1 and one.prediction[0] == cert.prediction[1]
    masked = cert[cert.certified]
    assert len(masked) == (~ABSTAINED).sum() and masked.certified.all()
    assert head.alpha == cert.alpha and head.guarantee == cert.guarantee
    assert "n=3" in repr(head) and f"d={D}" in repr(head)


def test_certificate_validation():
    cov = RowCovariances.isotropic(np.ones(2), 2)
    good = dict(
        center=np.zeros((2, 2)), prediction=np.array([0, 1]), abstained=np.array([False, False]),
        covariance=cov, mahalanobis_radius=np.array([1.0, 2.0]), p_lower=np.array([0.9, 0.99]),
        alpha=0.01,
    )
    Certificate(**good)
    with pytest.raises(ValueError, match="prediction"):
        Certificate(**{**good, "prediction": np.array([0, 1, 2])})
    with pytest.raises(ValueError, match="mahalanobis_radius"):
        Certificate(**{**good, "mahalanobis_radius": np.array([1.0, -1.0])})
    with pytest.raises(ValueError, match="covariance has 3 rows"):
        Certificate(**{**good, "covariance": RowCovariances.isotropic(np.ones(3), 2)})
    with pytest.raises(ValueError, match="guarantee"):
        Certificate(**good, guarantee="sound")


# ------------------------------------------------------------ RowCovariances
def test_row_covariances_rejects_bad_matrices():
    rng = np.random.default_rng(0)
    spd = _spd(rng, 2, 3)
    not_spd = spd.copy()
    not_spd[0] = np.diag([1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="positive definite"):
        RowCovariances.from_matrices(not_spd)
    not_spd[0] = np.diag([1.0, -2.0, 1.0])
    with pytest.raises(ValueError, match="positive definite"):
        RowCovariances.from_matrices(not_spd)
    skew = spd.copy()
    skew[1, 0, 2] += 0.5
    with pytest.raises(ValueError, match="symmetric"):
        RowCovariances.from_matrices(skew)
    with pytest.raises(ValueError, match="shape"):
        RowCovariances.from_matrices(spd[0])
    with pytest.raises(ValueError, match="shape"):
        RowCovariances.from_matrices(np.ones((2, 3, 2)))
    with pytest.raises(ValueError, match="features"):
        RowCovariances.create("full", spd, 2)
    for bad in (np.nan, np.inf):
        broken = spd.copy()
        broken[0, 1, 1] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            RowCovariances.from_matrices(broken)
    with pytest.raises(ValueError, match="strictly positive"):
        RowCovariances.isotropic([1.0, 0.0], 3)
    with pytest.raises(ValueError, match="strictly positive"):
        RowCovariances.create("diagonal", [[1.0, -1.0]], 2)
    with pytest.raises(ValueError, match="1-D array"):
        RowCovariances.create("isotropic", np.ones((2, 2)), 2)
    with pytest.raises(ValueError, match="features"):
        RowCovariances.create("diagonal", np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="kind"):
        RowCovariances.create("spherical", np.ones(2), 2)


@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
def test_row_covariances_quantities(kind):
    rng = np.random.default_rng(4)
    cov = _covariances(kind, rng)
    mats = cov.matrices()
    eig = np.linalg.eigvalsh(mats)
    assert_allclose(np.sort(cov.eigenvalues(), axis=1), eig, rtol=1e-12)
    assert_allclose(cov.min_eigenvalue(), eig[:, 0], rtol=1e-12)
    assert_allclose(cov.max_eigenvalue(), eig[:, -1], rtol=1e-12)
    assert_allclose(cov.logdet(), np.linalg.slogdet(mats)[1], rtol=1e-12)
    root = cov.sqrt_matrices()
    assert_allclose(root @ root, mats, atol=1e-12)
    delta = rng.standard_normal((N, 4, D))
    white = cov.whiten(np.arange(N), delta)
    assert_allclose(np.einsum("nij,nmj->nmi", root, white), delta, atol=1e-12)
    assert_allclose(cov.factor(np.arange(N)).apply(white), delta, atol=1e-12)
    assert_allclose(cov.take([3, 1]).matrices(), mats[[3, 1]])
    assert_allclose(cov.as_full().matrices(), mats)
    both = RowCovariances.concatenate([cov, RowCovariances.isotropic(np.ones(2), D)])
    assert len(both) == N + 2
    assert_allclose(both.matrices(), np.concatenate([mats, np.repeat(np.eye(D)[None], 2, axis=0)]))
    with pytest.raises(ValueError):
        cov.values[0] = 1.0  # read-only view


# ------------------------------------------------------- declared public fields
def _public(cov, n=3, d=2, **extra):
    return Certificate(
        center=np.arange(n * d, dtype=float).reshape(n, d), prediction=np.array([0, 1, 0][:n]),
        abstained=np.zeros(n, bool), covariance=cov, mahalanobis_radius=np.ones(n),
        p_lower=np.full(n, 0.9), alpha=0.01, **extra,
    )


@pytest.mark.parametrize(
    "cov, kind",
    [
        (np.array([0.25, 1.0, 4.0]), "isotropic"),
        (np.array([[0.25, 1.0], [1.0, 4.0], [2.0, 2.0]]), "diagonal"),
        (np.array([np.eye(2), 2 * np.eye(2), [[2.0, 0.5], [0.5, 1.0]]]), "full"),
    ],
)
def test_certificate_from_public_arrays(cov, kind):
    cert = _public(cov)
    assert cert.covariances.kind == kind
    dense = cert.covariance
    assert dense.shape == (3, 2, 2)
    expected = np.sqrt(np.linalg.eigvalsh(dense)[:, 0])
    assert_allclose(cert.radius, expected)
    if kind != "full":
        assert_allclose(np.diagonal(dense, axis1=1, axis2=2), np.broadcast_to(cov.reshape(3, -1), (3, 2)))


def test_certificate_rejects_covariance_of_a_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(n,\)"):
        _public(np.ones((3, 2, 2, 1)))
    with pytest.raises(ValueError, match="covariance has 2 rows"):
        _public(np.ones(2))
    with pytest.raises(ValueError, match="strictly positive"):
        _public(np.array([1.0, -1.0, 1.0]))


def test_every_optional_field_is_declared_and_survives_slicing():
    info = {"stages": ["isotropic"]}
    cert = _public(
        np.ones(3), n_draws=[10, 20, 30], from_memory=[True, False, False],
        memory_index=[0, -1, 1], shrunk=[False, True, False], search_info=info,
        pullback_info={"steps": ["scaler"]}, index=["a", "b", "c"],
    )
    part = cert[[2, 0]]
    assert_array_equal(part.n_draws, [30, 10])
    assert_array_equal(part.from_memory, [False, True])
    assert_array_equal(part.memory_index, [1, 0])
    assert_array_equal(part.shrunk, [False, False])
    assert_array_equal(part.index, ["c", "a"])
    assert part.search_info is info and part.pullback_info == {"steps": ["scaler"]}
    frame = part.to_frame()
    assert list(frame.index) == ["c", "a"]
    assert {"n_draws", "from_memory", "memory_index", "shrunk"} <= set(frame.columns)
    bare = _public(np.ones(3))
    assert bare.n_draws is None and bare.search_info is None and bare.index is None
    assert "n_draws" not in bare.to_frame().columns


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("n_draws", [1, 2], "n_draws must have shape"),
        ("index", ["a"], "index must have shape"),
        ("search_info", ["not a dict"], "search_info must be a dict"),
    ],
)
def test_optional_fields_are_validated(field, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _public(np.ones(3), **{field: value})


def test_to_frame_keeps_the_index_of_a_dataframe_input():
    pd = pytest.importorskip("pandas")
    from sklearn.datasets import make_moons
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from smoothcert import CertifiedRegion, SmoothedClassifier, certify

    X, y = make_moons(60, noise=0.1, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b"], index=[f"row{i}" for i in range(60)])
    for est in (
        SmoothedClassifier(LogisticRegression(), n_samples=200, random_state=0),
        CertifiedRegion(LogisticRegression(), method="isotropic", n_iter=1,
                        n_samples_optim=16, n_samples=200, random_state=0, guarantee="per-covariance"),
    ):
        est.fit(frame, y)
        result = est.certify(frame.iloc[10:14]).to_frame()
        assert list(result.index) == ["row10", "row11", "row12", "row13"]
        joined = frame.iloc[10:14].join(result)
        assert len(joined) == 4 and "radius" in joined
    pipe = make_pipeline(StandardScaler(), SmoothedClassifier(n_samples=200, random_state=0))
    pipe.fit(frame, y)
    assert list(certify(pipe, frame.iloc[:3]).to_frame().index) == ["row0", "row1", "row2"]
    # a plain array keeps positional rows
    assert list(est.certify(pd.DataFrame(X[:2], columns=["a", "b"])).to_frame().index) == [0, 1]


def test_memory_and_pull_back_keep_the_declared_fields():
    from smoothcert import CertificateMemory

    cert = _public(np.ones(3), n_draws=[5, 6, 7], search_info={"k": 1}, index=["x", "y", "z"])
    sound = CertificateMemory().process(cert)
    assert_array_equal(sound.n_draws, [5, 6, 7])
    assert sound.search_info == {"k": 1} and list(sound.index) == ["x", "y", "z"]
    assert sound.from_memory is not None and sound.guarantee == "memory"


def test_every_guarantee_is_described_in_words():
    from smoothcert._certify._certificate import (
        GUARANTEE_DESCRIPTIONS, GUARANTEES, describe_guarantee,
    )

    assert set(GUARANTEES) <= set(GUARANTEE_DESCRIPTIONS)
    assert "not cover the deployed classifier" in describe_guarantee("per-covariance")
    assert describe_guarantee("deployed") == "holds for the estimator's own predict"
    memory = _public(np.ones(3))._replace(guarantee="memory")
    assert set(memory.to_frame()["guarantee"]) == {"memory"}
