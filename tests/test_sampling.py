"""The Monte-Carlo engine: per-row noise streams, batch and job invariance."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression

from conftest import assert_same_certificates
from smoothcert import SmoothedClassifier
from smoothcert._geometry._forms import RowCovariances
from smoothcert._certify._procedures import count_votes
from smoothcert._engine._loop import AutoBatchSize, _block_sizes, _BlockTuner, resolve_batch_size
from smoothcert._engine._streams import STAGE_ESTIMATION, STAGE_SELECTION, resolve_seed, row_keys


class RecordingAdapter:
    """A fake base model that records every batch of noisy points it receives."""

    float32 = False

    def __init__(self, n_classes=2):
        self.n_classes = n_classes
        self.calls = []

    def labels(self, points):
        self.calls.append(np.array(points, copy=True))
        return (points[:, 0] > 0).astype(np.intp)

    def scores(self, points):
        idx = self.labels(points)
        out = np.zeros((len(points), self.n_classes))
        out[np.arange(len(points)), idx] = 1.0
        return out


class Float32Adapter(RecordingAdapter):
    """A fake base model computing in float32."""

    float32 = True


def _noise(
    X, covariances, n_draws, *, seed=(0,), stage=STAGE_ESTIMATION, batch_size=10**9, float32=False
):
    """Noise received by the base model, (n, n_draws, d), in row-major draw order."""
    adapter = Float32Adapter() if float32 else RecordingAdapter()
    counts, _ = count_votes(
        adapter, X, covariances, n_draws, seed=seed, stage=stage, batch_size=batch_size
    )
    points = np.concatenate(adapter.calls).reshape(len(X), n_draws, X.shape[1])
    return points - X.astype(points.dtype)[:, None, :], counts


@pytest.fixture
def rows():
    return np.random.default_rng(3).standard_normal((5, 3))


def test_noise_has_the_row_covariance(rows):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    sigma = a @ a.T + 0.5 * np.eye(3)
    cov = RowCovariances.from_matrices(np.repeat(sigma[None], len(rows), axis=0))
    noise, _ = _noise(rows, cov, 20_000)
    for e in noise:
        assert_allclose(e.mean(axis=0), 0.0, atol=4 * np.sqrt(np.diag(sigma).max() / 20_000))
        assert_allclose(np.cov(e.T), sigma, atol=0.1 * np.abs(sigma).max())
    iso = RowCovariances.isotropic(np.full(len(rows), 0.25), 3)
    noise, _ = _noise(rows, iso, 20_000)
    assert_allclose(noise.std(axis=1), 0.5, rtol=0.03)


def test_noise_of_different_rows_and_stages_is_independent(rows):
    cov = RowCovariances.isotropic(np.ones(len(rows)), 3)
    m = 4000
    noise, _ = _noise(rows, cov, m)
    other_stage, _ = _noise(rows, cov, m, stage=STAGE_SELECTION)
    other_seed, _ = _noise(rows, cov, m, seed=(1,))
    tol = 5 / np.sqrt(m * 3)
    flat = noise.reshape(len(rows), -1)
    corr = np.corrcoef(flat)
    off_diagonal = corr[~np.eye(len(rows), dtype=bool)]
    assert np.abs(off_diagonal).max() < tol
    for a, b in [(noise, other_stage), (noise, other_seed)]:
        for i in range(len(rows)):
            assert abs(np.corrcoef(a[i].ravel(), b[i].ravel())[0, 1]) < tol
    # ... but the same row, stage and seed replays the same stream
    again, _ = _noise(rows, cov, m)
    assert_array_equal(noise, again)


def test_noise_does_not_depend_on_batch_or_neighbours(rows):
    cov = RowCovariances.isotropic(np.full(len(rows), 0.3), 3)
    noise, counts = _noise(rows, cov, 50)
    # batch_size=7 < n_draws: one row per group, blocks of 7 draws, in order
    chunked, chunked_counts = _noise(rows, cov, 50, batch_size=7)
    assert_array_equal(noise, chunked)
    assert_array_equal(counts, chunked_counts)
    # a row alone, or among other rows, gets the same noise
    alone, _ = _noise(rows[3:4], cov.take([3]), 50)
    assert_array_equal(alone[0], noise[3])
    other = np.vstack([rows[3:4], np.random.default_rng(9).standard_normal((2, 3))])
    among, _ = _noise(other, RowCovariances.isotropic(np.full(3, 0.3), 3), 50)
    assert_array_equal(among[0], noise[3])


@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
def test_float32_models_get_float32_noise(rows, kind):
    """A float32 base model receives float32 points drawn in float32 (no float64 pass)."""
    rng = np.random.default_rng(4)
    if kind == "isotropic":
        cov = RowCovariances.isotropic(np.full(len(rows), 0.3), 3)
    elif kind == "diagonal":
        cov = RowCovariances.create("diagonal", rng.uniform(0.1, 1.0, (len(rows), 3)), 3)
    else:
        a = rng.standard_normal((len(rows), 3, 3))
        cov = RowCovariances.from_matrices(a @ a.transpose(0, 2, 1) + 0.5 * np.eye(3))
    noise32, counts = _noise(rows, cov, 8000, float32=True)
    assert noise32.dtype == np.float32
    # the right covariance, and the same stream whatever the batch size
    for e, sigma in zip(noise32, cov.matrices()):
        assert_allclose(np.cov(e.T.astype(np.float64)), sigma, atol=0.12 * np.abs(sigma).max())
    chunked, chunked_counts = _noise(rows, cov, 8000, float32=True, batch_size=333)
    assert_array_equal(chunked, noise32)
    assert_array_equal(chunked_counts, counts)
    # a different stream from the float64 one (numpy's float32 sampler), same law
    noise64, _ = _noise(rows, cov, 8000)
    assert not np.allclose(noise32, noise64)


def test_row_keys():
    X = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0 + 1e-15]])
    keys = row_keys(X)
    assert keys.shape == (4, 4)
    assert_array_equal(keys[0], keys[1])
    assert not np.array_equal(keys[0], keys[2])
    assert not np.array_equal(keys[0], keys[3])
    X32 = X.astype(np.float32)
    assert_array_equal(row_keys(X32), row_keys(X32.astype(np.float64)))


def test_resolve_seed():
    assert resolve_seed(3) == resolve_seed(3)
    assert resolve_seed(3) != resolve_seed(4)
    assert resolve_seed(2**40 + 1) != resolve_seed(1)
    assert resolve_seed(None) != resolve_seed(None)
    gen = np.random.default_rng(0)
    first, second = resolve_seed(gen), resolve_seed(gen)
    assert first != second
    assert first == resolve_seed(np.random.default_rng(0))
    assert resolve_seed(np.random.RandomState(0)) == resolve_seed(np.random.RandomState(0))
    with pytest.raises(ValueError, match="non-negative"):
        resolve_seed(-1)
    with pytest.raises(TypeError, match="random_state"):
        resolve_seed("0")
    with pytest.raises(TypeError, match="random_state"):
        resolve_seed(True)


def test_resolve_batch_size():
    assert resolve_batch_size(7, 2) == 7
    assert not isinstance(resolve_batch_size(7, 2), AutoBatchSize)
    assert resolve_batch_size("auto", 2) == 100_000
    assert resolve_batch_size("auto", 10**6) == 1024
    assert 1024 <= resolve_batch_size("auto", 784) <= 100_000
    assert isinstance(resolve_batch_size("auto", 784), AutoBatchSize)


def test_block_tuner_keeps_the_fastest_block():
    assert _block_sizes(8000, 100_000, 8000, 1) == [8000]  # an explicit batch_size
    auto = AutoBatchSize(8000)
    assert _block_sizes(8000, 100_000, auto, 1) == [1000, 2000, 4000, 8000]
    assert _block_sizes(8000, 100_000, auto, 256) == [768, 1792, 3840, 8000]
    assert _block_sizes(8000, 5000, auto, 1) == [8000]  # one block per row anyway
    tuner = _BlockTuner([1000, 2000, 4000, 8000])
    cost = {1000: 3.0, 2000: 1.0, 4000: 2.0, 8000: 2.5}  # seconds per draw
    seen = []
    for _ in range(8):
        size = tuner.next_size()
        seen.append(size)
        tuner.record(size, size, cost[size] * size)
    # the smallest twice (warm-up), each once more, then the fastest
    assert seen == [1000, 1000, 2000, 4000, 8000, 2000, 2000, 2000]
    # a partial block (end of a row) is not a fair timing
    tuner = _BlockTuner([10, 20])
    for size, n, secs in [(10, 10, 1.0), (10, 5, 0.0), (20, 20, 20.0)]:
        assert tuner.next_size() == size
        tuner.record(size, n, secs)
    assert tuner.next_size() == 10


@pytest.mark.parametrize("vote", ["hard", "soft"])
def test_tuned_blocks_give_the_same_votes(rows, vote):
    cov = RowCovariances.isotropic(np.full(len(rows), 0.3), 3)
    common = dict(seed=(0,), stage=STAGE_ESTIMATION, vote=vote)
    fixed = count_votes(RecordingAdapter(), rows, cov, 5000, batch_size=2048, **common)
    adapter = RecordingAdapter()
    tuned = count_votes(adapter, rows, cov, 5000, batch_size=AutoBatchSize(2048), **common)
    # several block sizes were used, and the results are bit-identical
    assert len({len(points) for points in adapter.calls}) >= 3
    for a, b in zip(fixed, tuned):
        if a is not None:
            assert_array_equal(a, b)


# --------------------------------------------------------- estimator level
@pytest.fixture
def fitted(blobs):
    X, y = blobs
    clf = SmoothedClassifier(
        LogisticRegression(), sigma=1.0, n_samples=300, n_samples_selection=20,
        random_state=0,
    ).fit(X, y)
    # points spread around and between the blobs: many non-trivial counts
    X_test = np.random.default_rng(5).uniform(-2.5, 2.5, size=(23, 2))
    return clf, X_test


@pytest.mark.parametrize("batch_size, n_jobs", [(7, 1), (100, 1), ("auto", 2), (7, 2), (3, None)])
def test_certificate_invariant_to_batch_size_and_jobs(fitted, batch_size, n_jobs):
    clf, X_test = fitted
    reference = clf.certify(X_test)
    # not vacuous: some rows are certified, some abstain, the bounds vary
    assert 0 < reference.certified.sum() < len(X_test)
    assert np.unique(reference.p_lower).size > 10
    clf.set_params(batch_size=batch_size, n_jobs=n_jobs)
    assert_same_certificates(reference, clf.certify(X_test))
    clf.set_params(batch_size="auto", n_jobs=None)
    proba = clf.predict_proba(X_test)
    clf.set_params(batch_size=batch_size, n_jobs=n_jobs)
    assert_array_equal(proba, clf.predict_proba(X_test))


@pytest.mark.parametrize(
    "n_samples",
    # 200 <= SUM_BLOCK: a row's draws are then summed as one block
    [300, 200],
)
def test_soft_votes_invariant_to_batch_size(fitted, n_samples):
    clf, X_test = fitted
    clf.set_params(vote="soft", n_samples=n_samples)
    reference = clf.certify(X_test)
    proba = clf.predict_proba(X_test)
    for batch_size in (7, 300, 1001):
        clf.set_params(batch_size=batch_size)
        other = clf.certify(X_test)
        # score sums are added in an order fixed by the draw index: bit-identical
        assert_array_equal(reference.prediction, other.prediction)
        assert_array_equal(reference.p_lower, other.p_lower)
        assert_array_equal(proba, clf.predict_proba(X_test))


def test_negative_zero_hashes_like_zero():
    from smoothcert._engine._streams import row_keys

    keys = row_keys(np.array([[0.0, 1.0], [-0.0, 1.0]]))
    assert_array_equal(keys[0], keys[1])


def test_different_seeds_differ(fitted):
    clf, X_test = fitted
    p0 = clf.predict_proba(X_test)
    c0 = clf.certify(X_test)
    clf.set_params(random_state=1)
    assert not np.array_equal(p0, clf.predict_proba(X_test))
    assert not np.array_equal(c0.p_lower, clf.certify(X_test).p_lower)
    clf.set_params(random_state=None)
    assert not np.array_equal(clf.predict_proba(X_test), clf.predict_proba(X_test))
    # a RandomState instance advances: reproducible from the same start
    clf.set_params(random_state=np.random.RandomState(0))
    first = clf.predict_proba(X_test)
    assert not np.array_equal(first, clf.predict_proba(X_test))
    clf.set_params(random_state=np.random.RandomState(0))
    assert_array_equal(first, clf.predict_proba(X_test))
