"""Parallel execution: joblib workers and Dask give the certificates of one worker.

Every row draws its own noise stream (seeded from ``random_state``, the row's
bytes and the stage), so splitting the inputs into groups for workers cannot
change any result. These tests check that end to end, on joblib's default
(process) backend, on a local Dask cluster through ``joblib.parallel_config``,
and that ``verbose`` shows a progress bar.
"""

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
