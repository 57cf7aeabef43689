"""Memory-based certification (CertificateMemory): soundness, order, speed, files."""

import time

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_moons
from sklearn.ensemble import RandomForestClassifier

from smoothcert import Certificate, CertificateMemory, CertifiedRegion
from smoothcert._geometry._forms import RowCovariances
from smoothcert._geometry._ellipsoids import ellipsoids_disjoint, point_in_ellipsoids, touching_scales
from smoothcert.search import DiagonalSearch


def random_spd(rng, n, d, low=-2.0, high=0.0):
    q, _ = np.linalg.qr(rng.standard_normal((n, d, d)))
    w = np.exp(rng.uniform(low, high, size=(n, d)))
    out = np.einsum("nij,nj,nkj->nik", q, w, q)
    return 0.5 * (out + out.transpose(0, 2, 1))


def synthetic_certificate(rng, n, d, *, labels=(0, 1), kind="full", abstain=0.1, spread=2.0):
    """Certificates with random centres, shapes, radii and labels (some abstaining)."""
    center = spread * rng.standard_normal((n, d))
    if kind == "full":
        cov = RowCovariances.from_matrices(random_spd(rng, n, d))
    elif kind == "diagonal":
        cov = RowCovariances.create("diagonal", np.exp(rng.uniform(-2, 0, (n, d))), d)
    else:
        cov = RowCovariances.isotropic(np.exp(rng.uniform(-2, 0, n)), d)
    abstained = rng.uniform(size=n) < abstain
    radius = np.where(abstained, 0.0, rng.uniform(0.3, 3.0, n))
    return Certificate(
        center=center,
        prediction=np.asarray(labels)[rng.integers(len(labels), size=n)],
        abstained=abstained,
        covariance=cov,
        mahalanobis_radius=radius,
        p_lower=np.where(abstained, 0.4, 0.99),
        alpha=0.001,
    )


def assert_no_cross_class_intersection(memory):
    """Exact test on *all* pairs of stored regions of different classes (no prefilter)."""
    m = len(memory)
    i, j = np.triu_indices(m, k=1)
    other = memory.labels[i] != memory.labels[j]
    i, j = i[other], j[other]
    c, s, r = memory.centers, memory.covariances, memory.mahalanobis_radii
    assert ellipsoids_disjoint(c[i], s[i], r[i], c[j], s[j], r[j]).all()
    assert memory.conflicts().shape == (0, 2)


def sample_inside(rng, center, cov, radius, n):
    d = center.size
    u = rng.standard_normal((n, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    u *= rng.uniform(size=(n, 1)) ** (1.0 / d) * 0.999
    return center + radius * u @ np.linalg.cholesky(cov).T


def first_containing(memory, points):
    c, s, r = memory.centers, memory.covariances, memory.mahalanobis_radii
    inside = point_in_ellipsoids(points, c, s, r)
    return np.where(inside.any(axis=1), inside.argmax(axis=1), -1)


# ----------------------------------------------------------------- real model
@pytest.fixture(scope="module")
def moons_certificate():
    X, y = make_moons(n_samples=300, noise=0.15, random_state=0)
    # a wide range of noise levels: the per-input covariances differ a lot, and
    # so do the smoothed classifiers that the certificates are about (a large
    # learning rate: in 5 steps a scale can move by a factor of about e^2.5)
    region = CertifiedRegion(
        RandomForestClassifier(10, random_state=0),
        method="diagonal",
        sigma=0.4,
        search=DiagonalSearch(sigma_bounds=(0.05, 20.0), learning_rate=0.5),
        n_iter=5,
        n_samples_optim=32,
        n_samples=500,
        random_state=0,
        guarantee="per-covariance",
    ).fit(X, y)
    rng = np.random.default_rng(0)
    queries = X[rng.integers(len(X), size=300)] + 0.1 * rng.standard_normal((300, 2))
    return region, region.certify(queries)


def test_per_covariance_certificates_conflict(moons_certificate):
    """The problem memory solves: certified regions of different classes intersect."""
    _, cert = moons_certificate
    ok = np.flatnonzero(cert.certified)
    i, j = np.triu_indices(ok.size, k=1)
    i, j = ok[i], ok[j]
    other = cert.prediction[i] != cert.prediction[j]
    i, j = i[other], j[other]
    c, s, r = cert.center, cert.covariance, cert.mahalanobis_radius
    assert np.sum(~ellipsoids_disjoint(c[i], s[i], r[i], c[j], s[j], r[j])) > 10


def test_sequential_certification_is_consistent(moons_certificate):
    region, cert = moons_certificate
    assert cert.guarantee == "per-covariance"
    memory = CertificateMemory()
    sound = memory.process(cert)
    assert sound.guarantee == "memory"
    assert len(memory) >= 10
    # the memory really had to act: overlapping regions of different classes
    assert sound.from_memory.sum() > 100 and sound.shrunk.sum() >= 3
    assert len(memory) == np.sum(~sound.from_memory & ~sound.abstained)
    assert_no_cross_class_intersection(memory)
    # every certified row's ellipsoid lies in a stored region of its class
    rng = np.random.default_rng(1)
    certified = np.flatnonzero(sound.certified & (sound.mahalanobis_radius > 0))
    for i in rng.choice(certified, size=40, replace=False):
        pts = sample_inside(
            rng, sound.center[i], sound.covariance[i], sound.mahalanobis_radius[i], 50
        )
        idx = memory.query(pts)
        assert np.all(idx >= 0)
        assert np.all(memory.labels[idx] == sound.prediction[i])
    # the input certificate is untouched
    assert cert.guarantee == "per-covariance" and cert.from_memory is None


def test_queries_inside_stored_regions_get_the_stored_class(moons_certificate):
    region, cert = moons_certificate
    memory = CertificateMemory()
    memory.process(cert)
    n_stored = len(memory)
    rng = np.random.default_rng(2)
    owners = rng.integers(n_stored, size=200)
    c, s, r = memory.centers, memory.covariances, memory.mahalanobis_radii
    points = np.concatenate([sample_inside(rng, c[j], s[j], r[j], 1) for j in owners])
    expected = memory.labels[owners]
    # fresh per-covariance certificates of the model at those points ...
    fresh = region.certify(points)
    sound = memory.process(fresh)
    # ... are overridden by the memory: same class as the region containing them
    assert np.all(sound.from_memory)
    assert_array_equal(sound.prediction, expected)
    assert len(memory) == n_stored
    assert np.any(fresh.prediction != expected) or np.any(fresh.abstained)
    # derived certificates: the stored shape, inside the stored region
    first = sound.memory_index
    assert_array_equal(memory.labels[first], expected)
    assert_allclose(sound.covariance, memory.covariances[first])
    dist = np.sqrt(
        np.einsum("ni,nij,nj->n", points - memory.centers[first],
                  np.linalg.inv(memory.covariances[first]), points - memory.centers[first])
    )
    assert_allclose(sound.mahalanobis_radius, memory.mahalanobis_radii[first] - dist, atol=1e-12)
    assert_array_equal(memory.query(points), first)


def test_order_dependence_on_real_certificates(moons_certificate):
    _, cert = moons_certificate
    rng = np.random.default_rng(3)
    order = rng.permutation(len(cert))
    mem_a, mem_b = CertificateMemory(), CertificateMemory()
    sound_a = mem_a.process(cert)
    sound_b = mem_b.process(cert[order])
    assert_no_cross_class_intersection(mem_a)
    assert_no_cross_class_intersection(mem_b)
    # the same inputs, other certificates
    differs = (sound_a.mahalanobis_radius[order] != sound_b.mahalanobis_radius) | (
        sound_a.prediction[order] != sound_b.prediction
    )
    assert differs.any()


# ------------------------------------------------------------------ semantics
def _two_overlapping(first_label, second_label):
    return Certificate(
        center=np.array([[0.0, 0.0], [1.5, 0.0]]),
        prediction=np.array([first_label, second_label]),
        abstained=np.array([False, False]),
        covariance=RowCovariances.isotropic([1.0, 1.0], 2),
        mahalanobis_radius=np.array([1.0, 1.0]),
        p_lower=np.array([0.9, 0.95]),
        alpha=0.001,
    )


def test_order_dependence_documented_example():
    cert = _two_overlapping("a", "b")
    forward, backward = CertificateMemory(), CertificateMemory()
    s_f = forward.process(cert)
    s_b = backward.process(cert[[1, 0]])
    # whoever comes first keeps its full radius; the other is shrunk to touching
    assert_allclose(s_f.mahalanobis_radius, [1.0, 0.5], rtol=1e-5)
    assert_allclose(s_b.mahalanobis_radius, [1.0, 0.5], rtol=1e-5)
    assert_array_equal(s_f.shrunk, [False, True])
    assert_array_equal(forward.mahalanobis_radii[[0, 1]], [1.0, 0.5 * (1 - 1e-6)])
    # point (0.8, 0) is answered "a" by one memory and "b" by the other
    assert forward.labels[forward.query([[0.8, 0.0]])[0]] == "a"
    assert backward.labels[backward.query([[0.8, 0.0]])[0]] == "b"
    for memory in (forward, backward):
        assert_no_cross_class_intersection(memory)
    # the stored pair touches at (1 - margin) of the exact touching radius
    c, s, r = forward.centers, forward.covariances, forward.mahalanobis_radii
    touch = touching_scales(c[1], s[1], c[0], s[0], r[0])
    assert_allclose(r[1], (1 - forward.margin) * touch, rtol=1e-12)
    assert not ellipsoids_disjoint(c[1], s[1], touch * (1 + 1e-9), c[0], s[0], r[0])


def test_same_class_regions_may_overlap():
    memory = CertificateMemory()
    sound = memory.process(_two_overlapping(1, 1))
    assert_array_equal(sound.mahalanobis_radius, [1.0, 1.0])
    assert not sound.shrunk.any() and len(memory) == 2


def test_abstentions_are_not_stored():
    cert = Certificate(
        center=np.array([[0.0, 0.0], [0.5, 0.0]]), prediction=np.array([0, 1]),
        abstained=np.array([True, False]), covariance=RowCovariances.isotropic([1.0, 1.0], 2),
        mahalanobis_radius=np.array([0.0, 1.0]), p_lower=np.array([0.4, 0.9]), alpha=0.001,
    )
    memory = CertificateMemory()
    sound = memory.process(cert)
    assert_array_equal(sound.abstained, [True, False])
    assert_array_equal(sound.mahalanobis_radius, [0.0, 1.0])
    assert_array_equal(sound.memory_index, [-1, 0])
    assert len(memory) == 1
    # the same abstaining input, now inside a stored region, gets that region's class
    again = memory.process(cert[[0]])
    assert_array_equal(again.abstained, [False])
    assert_array_equal(again.prediction, [1])
    assert_allclose(again.mahalanobis_radius, [0.5])
    assert_array_equal(again.p_lower, [0.9])
    assert len(memory) == 1


def test_point_on_boundary_of_other_class_gets_memory_answer():
    memory = CertificateMemory()
    memory.add([0.0, 0.0], np.eye(2), 1.0, "a", p_lower=0.9)
    cert = Certificate(
        center=np.array([[1.0, 0.0], [1.0 + 1e-9, 0.0]]), prediction=np.array(["b", "b"]),
        abstained=np.array([False, False]), covariance=RowCovariances.isotropic([1.0, 1.0], 2),
        mahalanobis_radius=np.array([2.0, 2.0]), p_lower=np.array([0.99, 0.99]), alpha=0.01,
    )
    sound = memory.process(cert)
    # on the boundary: inside (closed), answered "a" with a zero radius
    assert sound.prediction[0] == "a" and sound.from_memory[0]
    assert sound.mahalanobis_radius[0] == 0.0 and not sound.abstained[0]
    assert sound.p_lower[0] == 0.9
    # just outside: certified "b" with a tiny radius, stored
    assert sound.prediction[1] == "b" and not sound.from_memory[1]
    assert 0 < sound.mahalanobis_radius[1] < 2e-9
    assert_no_cross_class_intersection(memory)


@pytest.mark.parametrize("d", [2, 5])
def test_random_synthetic_streams_stay_consistent(d):
    rng = np.random.default_rng(10 + d)
    memory = CertificateMemory()
    for kind in ("full", "diagonal", "isotropic"):  # mixed covariance kinds
        cert = synthetic_certificate(rng, 150, d, labels=("x", "y", "z"), kind=kind)
        sound = memory.process(cert)
        assert sound.guarantee == "memory"
        fresh = ~sound.from_memory
        assert np.all(sound.abstained[fresh] >= cert.abstained[fresh])
        assert np.all(sound.mahalanobis_radius[fresh] <= cert.mahalanobis_radius[fresh])
        stored = sound.memory_index >= 0
        assert np.all(stored == (sound.from_memory | ~sound.abstained))
        if sound.from_memory.any():
            assert sound.covariances.kind == "full"
        # the certificate regions of memory-answered rows lie in their region
        for i in np.flatnonzero(sound.from_memory & (sound.mahalanobis_radius > 0))[:10]:
            pts = sample_inside(
                rng, sound.center[i], sound.covariance[i], sound.mahalanobis_radius[i], 20
            )
            j = sound.memory_index[i]
            assert point_in_ellipsoids(
                pts, memory.centers[j : j + 1], memory.covariances[j : j + 1],
                memory.mahalanobis_radii[j : j + 1],
            ).all()
    assert_no_cross_class_intersection(memory)
    # query agrees with the definition
    pts = 2.0 * rng.standard_normal((300, d))
    assert_array_equal(memory.query(pts), first_containing(memory, pts))
    assert_array_equal(memory.query(pts, chunk_size=5), first_containing(memory, pts))


def test_process_labels_and_dimension_checks():
    memory = CertificateMemory()
    memory.process(_two_overlapping("a", "b"))
    with pytest.raises(ValueError, match="strings or all numbers"):
        memory.process(_two_overlapping(0, 1))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="dimensions"):
        memory.process(synthetic_certificate(rng, 3, 3, labels=("a",)))
    assert len(memory) == 2
    # longer string labels than the certificate's dtype are not truncated
    memory.add([10.0, 10.0], np.eye(2), 1.0, "a-much-longer-label")
    sound = memory.process(_two_overlapping("a", "b")[[0]])
    assert sound.prediction.dtype.kind == "U"
    sound = memory.process(
        Certificate(center=np.array([[10.0, 10.0]]), prediction=np.array(["b"]),
                    abstained=np.array([False]), covariance=RowCovariances.isotropic([1.0], 2),
                    mahalanobis_radius=np.array([1.0]), p_lower=np.array([0.9]), alpha=0.001)
    )
    assert sound.prediction[0] == "a-much-longer-label"
    with pytest.raises(TypeError):
        memory.process(np.zeros((2, 2)))


def test_add_rejects_cross_class_overlap_and_bad_input():
    memory = CertificateMemory()
    memory.add([0.0, 0.0], np.eye(2), 1.0, 0)
    before = (memory.centers.copy(), memory.labels.copy())
    with pytest.raises(ValueError, match="intersects region 0"):
        memory.add([[5.0, 5.0], [1.5, 0.0]], np.stack([np.eye(2)] * 2), [1.0, 1.0], [1, 1])
    assert len(memory) == 1
    assert_array_equal(memory.centers, before[0])
    assert_array_equal(memory.labels, before[1])
    assert list(memory.classes) == [0]
    # within one batch too
    with pytest.raises(ValueError, match="intersects"):
        memory.add([[5.0, 5.0], [5.5, 5.0]], np.stack([np.eye(2)] * 2), [1.0, 1.0], [1, 2])
    memory.add([[5.0, 5.0], [5.5, 5.0]], np.stack([np.eye(2)] * 2), [1.0, 1.0], 1)
    assert len(memory) == 3
    with pytest.raises(ValueError, match="positive definite"):
        memory.add([9.0, 9.0], -np.eye(2), 1.0, 0)
    with pytest.raises(ValueError, match="symmetric"):
        memory.add([9.0, 9.0], np.array([[1.0, 0.5], [0.0, 1.0]]), 1.0, 0)
    with pytest.raises(ValueError, match="strictly positive"):
        memory.add([9.0, 9.0], np.eye(2), 0.0, 0)
    with pytest.raises(ValueError, match="finite"):
        memory.add([9.0, np.nan], np.eye(2), 1.0, 0)
    with pytest.raises(ValueError, match="strings or all numbers"):
        memory.add([9.0, 9.0], np.eye(2), 1.0, "a")
    with pytest.raises(ValueError, match="dimensions"):
        memory.add([9.0, 9.0, 9.0], np.eye(3), 1.0, 0)
    with pytest.raises(ValueError, match="p_lower"):
        memory.add([9.0, 9.0], np.eye(2), 1.0, 0, p_lower=1.5)
    with pytest.raises(ValueError, match="margin"):
        CertificateMemory(margin=0.0)
    assert len(memory) == 3


# ---------------------------------------------------------------------- speed
def test_one_query_against_5000_regions_is_fast():
    rng = np.random.default_rng(5)
    d, m = 10, 5000
    centers = rng.uniform(-10, 10, size=(m, d))
    centers[:, 0] = np.sign(centers[:, 0]) * (1.0 + np.abs(centers[:, 0]))  # |x0| >= 1
    labels = (centers[:, 0] > 0).astype(int)
    covs = random_spd(rng, m, d, low=-3.0, high=-1.0)
    outer = np.sqrt(np.linalg.eigvalsh(covs)[:, -1])
    radii = rng.uniform(0.5, 1.0, m) * 0.99 / outer  # outer radius < 1: no cross-class overlap
    memory = CertificateMemory()
    start = time.perf_counter()
    memory.add(centers, covs, radii, labels)
    t_add = time.perf_counter() - start
    assert len(memory) == m
    # a query on the class boundary whose fresh region would reach many stored regions
    x = np.zeros((1, d))
    cert = Certificate(
        center=x, prediction=np.array([1]), abstained=np.array([False]),
        covariance=RowCovariances.isotropic([1.0], d), mahalanobis_radius=np.array([40.0]),
        p_lower=np.array([0.99]), alpha=0.001,
    )
    start = time.perf_counter()
    sound = memory.process(cert)
    t_query = time.perf_counter() - start
    print(f"add 5000 regions: {t_add:.3f} s; one more query: {t_query * 1e3:.1f} ms")
    assert t_query < 2.0
    assert sound.shrunk[0] and len(memory) == m + 1
    last = m
    others = np.flatnonzero(memory.labels[:m] != 1)
    c, s, r = memory.centers, memory.covariances, memory.mahalanobis_radii
    assert ellipsoids_disjoint(c[last], s[last], r[last], c[others], s[others], r[others]).all()
    start = time.perf_counter()
    memory.query(rng.uniform(-10, 10, size=(1000, d)))
    print(f"query 1000 points: {time.perf_counter() - start:.3f} s")


# ----------------------------------------------------------------- save / load
@pytest.mark.parametrize("labels", [("a", "bb", "ccc"), (0, 3, 7), (0.5, 1.5, 2.5)])
def test_save_load_round_trip(tmp_path, labels):
    rng = np.random.default_rng(6)
    memory = CertificateMemory(margin=1e-5)
    memory.process(synthetic_certificate(rng, 80, 3, labels=labels))
    memory.add([50.0, 50.0, 50.0], np.eye(3), 1.0, labels[0])  # p_lower unknown: NaN
    path = tmp_path / "memory.npz"
    memory.save(path)
    loaded = CertificateMemory.load(path)
    assert len(loaded) == len(memory) and loaded.n_features == 3 and loaded.margin == 1e-5
    for name in ("centers", "covariances", "mahalanobis_radii", "p_lower", "labels", "classes"):
        assert_array_equal(getattr(loaded, name), getattr(memory, name), strict=True)
    pts = 2 * rng.standard_normal((200, 3))
    assert_array_equal(loaded.query(pts), memory.query(pts))
    # the loaded memory keeps working like the original
    cert = synthetic_certificate(rng, 30, 3, labels=labels)
    a, b = memory.process(cert), loaded.process(cert)
    assert_array_equal(a.mahalanobis_radius, b.mahalanobis_radius)
    assert_array_equal(a.prediction, b.prediction)


def test_save_load_empty(tmp_path):
    for memory in (CertificateMemory(), CertificateMemory(n_features=4)):
        memory.save(tmp_path / "empty.npz")
        loaded = CertificateMemory.load(tmp_path / "empty.npz")
        assert len(loaded) == 0 and loaded.n_features == memory.n_features


@pytest.fixture
def saved(tmp_path):
    rng = np.random.default_rng(7)
    memory = CertificateMemory()
    memory.process(synthetic_certificate(rng, 40, 3))
    path = tmp_path / "memory.npz"
    memory.save(path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return path, arrays, memory


def _rewrite(path, arrays, **changes):
    arrays = {**arrays, **changes}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def test_load_rejects_corrupted_files(saved, tmp_path):
    path, arrays, memory = saved
    raw = path.read_bytes()
    cases = {}
    trunc = tmp_path / "truncated.npz"
    trunc.write_bytes(raw[: len(raw) // 2])
    cases["truncated"] = (trunc, "cannot read|corrupted")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a numpy file at all" * 10)
    cases["garbage"] = (garbage, "cannot read")
    npy = tmp_path / "plain.npy"
    np.save(npy, np.zeros(3))
    cases["npy"] = (npy, "not an .npz")
    pickled = tmp_path / "pickled.npz"
    _rewrite(pickled, arrays, classes=np.array([object(), 1], dtype=object))
    cases["pickle"] = (pickled, "cannot read|corrupted")
    m, d = arrays["centers"].shape
    cov = arrays["covariances"].copy()
    cov_nspd = cov.copy()
    cov_nspd[3] = -cov_nspd[3]
    cov_asym = cov.copy()
    cov_asym[2, 0, 1] += 0.5
    centers_nan = arrays["centers"].copy()
    centers_nan[5, 1] = np.nan
    overlap = arrays["centers"].copy()
    labels = memory.labels
    j = int(np.flatnonzero(labels != labels[0])[0])
    overlap[j] = overlap[0]
    bad = {
        "missing key": (dict(centers=None), "missing key"),
        "wrong shape": (dict(covariances=cov[:, :, :2]), "shape"),
        "wrong rows": (dict(mahalanobis_radii=arrays["mahalanobis_radii"][:-1]), "shape"),
        "nan": (dict(centers=centers_nan), "NaN"),
        "inf radius": (dict(mahalanobis_radii=np.full(m, np.inf)), "NaN or infinite"),
        "zero radius": (dict(mahalanobis_radii=np.zeros(m)), "strictly positive"),
        "non-spd": (dict(covariances=cov_nspd), "positive definite"),
        "asymmetric": (dict(covariances=cov_asym), "symmetric"),
        "codes": (dict(label_codes=np.full(m, 9)), "out of range"),
        "code dtype": (dict(label_codes=np.zeros(m)), "dtype"),
        "label type": (dict(label_type=np.array("str")), "label_type"),
        "dup classes": (dict(classes=np.array([0, 0])), "duplicates"),
        "p_lower": (dict(p_lower=np.full(m, 2.0)), "p_lower"),
        "format": (dict(format=np.array("something else")), "not a"),
        "version": (dict(version=np.array(99)), "version"),
        "n_features": (dict(n_features=np.array(d + 1)), "shape"),
        "margin": (dict(margin=np.array(1.5)), "margin"),
        "overlap": (dict(centers=overlap), "intersect"),
    }
    for name, (change, match) in bad.items():
        cases[name] = (_rewrite(tmp_path / f"{name}.npz", arrays, **change), match)
    for name, (file, match) in cases.items():
        with pytest.raises(ValueError, match=match) as info:
            CertificateMemory.load(file)
        assert "Invalid certificate memory file" in str(info.value), name
    with pytest.raises(FileNotFoundError):
        CertificateMemory.load(tmp_path / "does-not-exist.npz")


# ----------------------------------------------- CertifiedRegion(memory=...) wiring
def _moons_region():
    from sklearn.datasets import make_moons
    from sklearn.linear_model import LogisticRegression

    from smoothcert import CertifiedRegion

    X, y = make_moons(n_samples=120, noise=0.2, random_state=3)
    region = CertifiedRegion(
        LogisticRegression(), method="isotropic", n_iter=3, n_samples_optim=16,
        n_samples=500, n_samples_selection=20, alpha=0.01, random_state=0,
        guarantee="per-covariance",
    ).fit(X, y)
    return region, X, y


def test_region_certify_with_memory_is_sound_and_updates_memory():
    region, X, _ = _moons_region()
    memory = CertificateMemory()
    plain = region.certify(X[:60])
    cert = region.certify(X[:60], memory=memory)
    assert cert.guarantee == "memory"
    assert plain.guarantee == "per-covariance"
    assert hasattr(cert, "search_info")
    assert len(memory) == int((~cert.abstained & ~cert.from_memory).sum()) > 0
    assert memory.conflicts().shape == (0, 2)
    # the same inputs again: each certified one lies in its own stored region
    again = region.certify(X[:60][~cert.abstained], memory=memory)
    assert again.from_memory.all()
    assert_array_equal(again.prediction, cert.prediction[~cert.abstained])


def test_region_predict_with_memory_returns_stored_class():
    region, X, _ = _moons_region()
    memory = CertificateMemory()
    cert = region.certify(X[:40], memory=memory)
    rng = np.random.default_rng(0)
    stored = np.flatnonzero(~cert.abstained & ~cert.from_memory)
    # points strictly inside the stored regions, at half their radius
    z = rng.standard_normal((stored.size, 2))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    root = np.linalg.cholesky(memory.covariances[: stored.size])
    offsets = 0.5 * memory.mahalanobis_radii[: stored.size, None] * np.einsum("nij,nj->ni", root, z)
    queries = memory.centers[: stored.size] + offsets
    n_before = len(memory)
    pred = region.predict(queries, memory=memory)
    assert_array_equal(pred, memory.labels[memory.query(queries)])
    assert len(memory) == n_before  # answered from the memory: nothing new stored
    # without memory, predict is the stateless smoothed prediction
    assert region.predict(queries).shape == (stored.size,)


def test_region_memory_must_be_a_certificate_memory():
    region, X, _ = _moons_region()
    with pytest.raises(TypeError, match="memory must be a CertificateMemory"):
        region.certify(X[:3], memory={})
