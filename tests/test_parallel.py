"""Parallel execution: joblib workers and Dask give the certificates of one worker.

Every row draws its own noise stream (seeded from ``random_state``, the row's
bytes and the stage), so splitting the inputs into groups for workers cannot
change any result. These tests check that end to end, on joblib's default
(process) backend, on a local Dask cluster through ``joblib.parallel_config``,
and that ``verbose`` shows a progress bar.
"""

import time

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from conftest import assert_same_certificates
from smoothcert import CertifiedRegion, SmoothedClassifier


@pytest.fixture(scope="module")
def data():
    # Three overlapping 2-D classes: some inputs near the boundaries, so that
    # the certificates differ from row to row.
    rng = np.random.default_rng(3)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    X = np.concatenate([c + 0.8 * rng.standard_normal((30, 2)) for c in centres])
    y = np.repeat(np.arange(3), 30)
    order = rng.permutation(len(y))
    return X[order], y[order]


@pytest.fixture(scope="module")
def smoothed(data):
    X, y = data
    # Small batches (see the tests' batch_size): several groups of rows, so
    # that the work really is split between workers.
    return SmoothedClassifier(
        DecisionTreeClassifier(max_depth=4, random_state=0),
        sigma=0.5,
        n_samples=2000,
        n_samples_selection=50,
        batch_size=500,
        random_state=0,
    ).fit(X, y)


@pytest.fixture(scope="module")
def region(data):
    X, y = data
    return CertifiedRegion(
        LogisticRegression(),
        method="riemannian",
        sigma=0.5,
        n_iter=3,
        n_samples_optim=32,
        n_samples=1000,
        n_samples_selection=50,
        batch_size=256,
        random_state=0,
        guarantee="per-covariance",
    ).fit(X, y)


def _certify(estimator, X, **params):
    old = {k: getattr(estimator, k) for k in params}
    estimator.set_params(**params)
    try:
        return estimator.certify(X)
    finally:
        estimator.set_params(**old)


@pytest.mark.parametrize("batch_size", [500, 8000])
def test_smoothed_n_jobs_2_matches_n_jobs_1(smoothed, data, batch_size):
    # batch_size=500: several blocks per row, one row per group; 8000: several
    # rows per group, grouped differently with one worker (4 rows) and two (3).
    X, _ = data
    serial = _certify(smoothed, X[:24], n_jobs=1, batch_size=batch_size)
    parallel = _certify(smoothed, X[:24], n_jobs=2, batch_size=batch_size)
    assert_same_certificates(serial, parallel)
    # The check is not vacuous: the rows do get different certificates.
    assert len(np.unique(serial.p_lower)) > 1


def test_region_n_jobs_2_matches_n_jobs_1(region, data):
    X, _ = data
    serial = _certify(region, X[:8], n_jobs=1)
    parallel = _certify(region, X[:8], n_jobs=2)
    assert_same_certificates(serial, parallel)
    # Full (non-diagonal) covariances were searched and compared.
    off_diagonal = serial.covariance[:, 0, 1]
    assert np.any(off_diagonal != 0)


def test_dask_cluster_matches_n_jobs_1(smoothed, region, data):
    distributed = pytest.importorskip("distributed")
    X, _ = data
    expected_smoothed = _certify(smoothed, X[:24], n_jobs=1)
    expected_region = _certify(region, X[:6], n_jobs=1)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        parallel_config(backend="dask"),
        distributed.get_task_stream(client) as tasks,
    ):
        on_dask = _certify(smoothed, X[:24], n_jobs=-1)
        region_on_dask = _certify(region, X[:6], n_jobs=-1)
    # The work did run on the cluster, split into several tasks.
    assert len(tasks.data) > 1
    assert_same_certificates(expected_smoothed, on_dask)
    assert_same_certificates(expected_region, region_on_dask)


def test_verbose_shows_a_progress_bar(smoothed, data, capsys):
    pytest.importorskip("tqdm")
    X, _ = data
    capsys.readouterr()
    cert = _certify(smoothed, X[:12], verbose=1)
    err = capsys.readouterr().err
    assert "smoothcert" in err, f"no progress bar on stderr: {err!r}"
    assert "it/s" in err or "s/it" in err or "%" in err
    # The progress bar does not change the result.
    assert_same_certificates(cert, _certify(smoothed, X[:12], verbose=0))


def test_verbose_progress_bar_with_workers(smoothed, data, capsys):
    pytest.importorskip("tqdm")
    X, _ = data
    capsys.readouterr()
    _certify(smoothed, X[:12], verbose=1, n_jobs=2)
    assert "smoothcert" in capsys.readouterr().err


def test_verbose_0_prints_nothing(smoothed, region, data, capsys):
    X, _ = data
    capsys.readouterr()
    _certify(smoothed, X[:12], verbose=0)
    _certify(region, X[:3], verbose=0)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def _sleeping_chunks(X, progress):
    """Work of known duration: 50 ms and 100 predictions per row (no CPU used)."""
    time.sleep(0.05 * len(X))
    progress.update(100 * len(X))
    return [X[:, 0]]


def test_progress_estimate_with_workers_is_within_2x_once_10_percent_done(monkeypatch):
    # Two workers, 10 chunks of 2 rows (0.1 s each) after 0.3 s of start-up: the
    # real call takes about 0.3 + 5 * 0.1 = 0.8 s. tqdm's own rate, counted from
    # the bar's start, saw 10 % done after 0.4 s and projected 4 s (5x); the rate
    # measured in the workers projects the real time.
    pytest.importorskip("tqdm")
    from smoothcert._engine._progress import Progress
    from smoothcert._estimators import _parallel
    from smoothcert._estimators._parallel import run_in_chunks

    def chunk_without_thread_limits(work, X, threads):
        # threads of this process share the global thread pools: leave them alone
        counter = Progress(0, "", verbose=False)
        return work(X, counter), counter.done

    monkeypatch.setattr(_parallel, "_run_chunk", chunk_without_thread_limits)
    projections = []

    class Watched(Progress):
        def update(self, n):
            super().update(n)
            shown = self._bar.format_dict  # what the bar displays
            if shown["rate"]:
                remaining = (shown["total"] - shown["n"]) / shown["rate"]
                projections.append((self.done / self.total, shown["elapsed"] + remaining))

    X = np.arange(40.0).reshape(20, 2)
    start = time.perf_counter()
    with parallel_config(backend="threading"), Watched(100 * 20, "test", verbose=True) as progress:
        time.sleep(0.3)  # the workers' start-up: the bar's clock runs, no chunk is done
        parts = run_in_chunks(_sleeping_chunks, X, 2, progress)
    real = time.perf_counter() - start
    assert np.concatenate([p[0] for p in parts]).tolist() == X[:, 0].tolist()
    first = next(projected for done, projected in projections if done >= 0.1)
    assert real / 2 <= first <= 2 * real, (first, real)
    assert progress.done == 2000 and progress.throughput > 0


def test_a_model_that_is_no_net_does_not_import_torch():
    # Checking for a skorch net imported skorch and torch (1.5 s) in every call's
    # process and in every worker, whose first chunk then looked 30x slower than
    # the others to the progress bar.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from sklearn.datasets import make_moons\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from smoothcert import CertifiedRegion, SmoothedClassifier\n"
        "X, y = make_moons(60, random_state=0)\n"
        "SmoothedClassifier(LogisticRegression(), n_samples=100).fit(X, y).certify(X[:3])\n"
        "CertifiedRegion(LogisticRegression(), method='isotropic', n_iter=1, n_samples=100,\n"
        "                guarantee='per-covariance').fit(X, y).certify(X[:3])\n"
        "print(sorted({'torch', 'skorch'} & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
