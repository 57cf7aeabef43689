"""Determinism and persistence: fitted estimators and memories survive pickle,
joblib and skops with identical certificates; the CLI never leaves a corrupt
output file behind."""

import io
import pickle

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier

from conftest import assert_same_certificates, make_moons_data
from smoothcert import CertificateMemory, CertifiedRegion, SmoothedClassifier, cli
from smoothcert.cli import _io as cli_io

# tiny torch ops are slowed down by thread wake-ups (and xdist workers share the cores)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _net():
    from nets import tanh_net

    return tanh_net(lr=0.05, max_epochs=30)


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons_data(120)
    return X, np.array(["left", "right"])[y]  # string labels survive too


ESTIMATORS = {
    "smoothed-forest": lambda: SmoothedClassifier(
        RandomForestClassifier(10, random_state=0), n_samples=300, random_state=0),
    "region-forest": lambda: CertifiedRegion(
        RandomForestClassifier(10, random_state=0), method="riemannian", n_iter=3,
        n_samples_optim=32, n_samples=300, random_state=0, guarantee="per-covariance"),
    "smoothed-skorch": lambda: SmoothedClassifier(_net(), n_samples=300, vote="soft",
                                                  random_state=0),
    "region-skorch": lambda: CertifiedRegion(
        _net(), method="diagonal", n_iter=3, n_samples_optim=32, n_samples=300, random_state=0, guarantee="per-covariance"),
}


def _names(*names):
    """Estimator names as parameters, the skorch ones marked as needing torch."""
    names = names or tuple(ESTIMATORS)
    return [pytest.param(n, marks=pytest.mark.torch) if "skorch" in n else n for n in names]


@pytest.fixture(scope="module")
def fitted(moons):
    """``fitted(name)``: that estimator, fitted, and its certificate of the first 8
    rows; each fitted once, when first asked for (the nets only by torch tests)."""
    X, y = moons
    cache = {}

    def get(name):
        if name not in cache:
            est = ESTIMATORS[name]().fit(X, y)
            cache[name] = (est, est.certify(X[:8]))
        return cache[name]

    return get


def _pickle(obj):
    return pickle.loads(pickle.dumps(obj))


def _joblib(obj):
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    buf.seek(0)
    return joblib.load(buf)


def _skops(obj):
    sio = pytest.importorskip("skops.io")
    data = sio.dumps(obj)
    untrusted = sio.get_untrusted_types(data=data)
    # only types of this library, scikit-learn, skorch, torch and the test nets
    allowed = ("smoothcert.", "sklearn.", "skorch.", "torch.", "builtins.print",
               "functools.partial", "nets.")
    assert all(t.startswith(allowed) for t in untrusted), untrusted
    return sio.loads(data, trusted=untrusted)


ROUND_TRIPS = {"pickle": _pickle, "joblib": _joblib, "skops": _skops}


@pytest.mark.parametrize("trip", ROUND_TRIPS)
@pytest.mark.parametrize("name", _names())
def test_fitted_estimator_round_trip(fitted, moons, name, trip):
    X, _ = moons
    est, cert = fitted(name)
    restored = ROUND_TRIPS[trip](est)
    assert type(restored) is type(est)
    assert restored.get_params(deep=False).keys() == est.get_params(deep=False).keys()
    assert_array_equal(restored.classes_, est.classes_)
    assert_same_certificates(restored.certify(X[:8]), cert)
    assert_array_equal(restored.predict_proba(X[:5]), est.predict_proba(X[:5]))


@pytest.mark.parametrize("name", _names())
def test_refit_is_deterministic(fitted, moons, name):
    X, y = moons
    est, cert = fitted(name)
    again = clone(est).fit(X, y)
    assert_same_certificates(again.certify(X[:8]), cert)


@pytest.mark.torch
def test_skorch_region_certificates_do_not_depend_on_batching_or_order(fitted, moons):
    """The covariance search and the certification of a skorch net: same results
    whatever the batch size, the order of the rows or the other rows (the
    certifier checks of test_certifier_checks.py do the same for forests and
    logistic regressions)."""
    X, _ = moons
    est, cert = fitted("region-skorch")
    est = clone(est).set_params(batch_size=37).fit(*moons)
    assert_same_certificates(est.certify(X[:8]), cert)
    est.set_params(batch_size="auto")
    perm = np.random.default_rng(0).permutation(8)
    assert_same_certificates(est.certify(X[:8][perm]), cert[perm])
    assert_same_certificates(est.certify(X[3:5]), cert[3:5])


def test_random_state_instance_round_trip(moons):
    """A RandomState is pickled with its state: original and copy draw alike."""
    X, y = moons
    est = SmoothedClassifier(RandomForestClassifier(5, random_state=0), n_samples=200,
                             random_state=np.random.RandomState(3)).fit(X, y)
    copy = _pickle(est)
    first = est.certify(X[:5])
    assert_same_certificates(copy.certify(X[:5]), first)


# ------------------------------------------------------------------ memory
@pytest.fixture(scope="module")
def memory_and_next(fitted, moons):
    X, _ = moons
    est, cert = fitted("region-forest")
    memory = CertificateMemory()
    memory.process(cert)
    nxt = est.certify(X[8:20])
    return memory, nxt


def _npz(memory, tmp_path):
    path = tmp_path / "memory.npz"
    memory.save(path)
    return CertificateMemory.load(path)


@pytest.mark.parametrize("trip", ["pickle", "joblib", "skops", "npz"])
def test_memory_round_trip(memory_and_next, trip, tmp_path):
    memory, nxt = memory_and_next
    if trip == "npz":
        restored = _npz(memory, tmp_path)
    else:
        restored = ROUND_TRIPS[trip](memory)
    assert len(restored) == len(memory) > 0
    for name in ("centers", "covariances", "mahalanobis_radii", "labels", "p_lower", "classes"):
        assert_array_equal(getattr(restored, name), getattr(memory, name), err_msg=name)
    assert restored.margin == memory.margin
    # both continue identically
    a = _pickle(memory).process(nxt)
    b = restored.process(nxt)
    assert_same_certificates(a, b)
    assert_array_equal(a.from_memory, b.from_memory)
    assert_array_equal(a.memory_index, b.memory_index)


def test_memory_save_to_file_object_round_trip(memory_and_next):
    memory, _ = memory_and_next
    buf = io.BytesIO()
    memory.save(buf)
    buf.seek(0)
    restored = CertificateMemory.load(buf)
    assert_array_equal(restored.centers, memory.centers)
    assert_array_equal(restored.labels, memory.labels)


# --------------------------------------------------------------------- CLI

@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, moons):
    sio = pytest.importorskip("skops.io")
    X, y = moons
    d = tmp_path_factory.mktemp("cli")
    model = SmoothedClassifier(RandomForestClassifier(5, random_state=0), n_samples=200,
                               n_samples_selection=10, random_state=0).fit(X, y)
    model_path = d / "model.skops"
    sio.dump(model, model_path)
    data_path = d / "data.npy"
    np.save(data_path, X[:40])
    return d, model_path, data_path


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt, OSError])
@pytest.mark.parametrize("previous", [False, True])
def test_cli_failure_while_writing_leaves_no_partial_output(cli_files, monkeypatch, error,
                                                           previous, capsys):
    d, model_path, data_path = cli_files
    out = d / f"out-{error.__name__}-{previous}.csv"
    if previous:
        out.write_text("row,prediction\n0,left\n")
    before = out.read_bytes() if previous else None
    calls = {"n": 0}
    real_cell = cli_io._cell

    def failing_cell(value):
        calls["n"] += 1
        if calls["n"] == 100:  # well into the rows
            raise error("disk on fire")
        return real_cell(value)

    monkeypatch.setattr(cli_io, "_cell", failing_cell)
    status = cli.main(["certify", "--model", str(model_path), "--data", str(data_path),
                       "--out", str(out), "-q", "--trust"])
    err = capsys.readouterr().err
    assert calls["n"] == 100
    assert status == (130 if error is KeyboardInterrupt else 1), err
    if previous:
        assert out.read_bytes() == before
    else:
        assert not out.exists()
    assert _leftovers(d) == []
    # and the same command without the failure writes a complete file
    monkeypatch.setattr(cli_io, "_cell", real_cell)
    assert cli.main(["certify", "--model", str(model_path), "--data", str(data_path),
                     "--out", str(out), "-q", "--trust"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 41 and lines[0].startswith("row,prediction")
    out.unlink()


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGINT", "SIGKILL"])
def test_cli_killed_mid_certification_leaves_no_output(cli_files, tmp_path, signame):
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    pytest.importorskip("tqdm")
    d, model_path, data_path = cli_files
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    cmd = [sys.executable, "-m", "smoothcert.cli", "certify", "--model", str(model_path),
           "--data", str(data_path), "--out", str(out), "--n-samples", str(10**7), "--trust"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    seen = []

    def read():
        while True:
            chunk = proc.stderr.read1(1024)
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    try:
        # the progress bar of the estimation draws: certification is under way
        while b"smoothcert certify" not in b"".join(seen):
            assert proc.poll() is None, b"".join(seen).decode(errors="replace")
            assert time.monotonic() < deadline, "certification did not start"
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None, "the job finished before it could be interrupted"
        proc.send_signal(getattr(signal, signame))
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    if signame == "SIGINT":
        assert status == 130, b"".join(seen).decode(errors="replace")
        assert b"interrupted" in b"".join(seen)
    else:
        assert status == -signal.SIGKILL
    assert out.read_text() == "previous\n"
    assert _leftovers(tmp_path) == []
