"""The ``smoothcert`` command line: demo, certify, safe loading and errors."""

import csv
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from smoothcert import CertifiedRegion, SmoothedClassifier
from smoothcert.cli import _io, _models, main
from smoothcert.cli._errors import CLIError

sio = pytest.importorskip("skops.io")


class CustomClassifier(LogisticRegression):
    """A user-defined class: not trusted by skops' defaults."""


def _blobs(n_per_class=10, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-2.0, 0.0], [2.0, 0.0]])
    X = np.concatenate([c + 0.3 * rng.standard_normal((n_per_class, 2)) for c in centres])
    y = np.repeat([0, 1], n_per_class)
    return X, y


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _write_csv(path, X, header=True):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow([f"x{j}" for j in range(X.shape[1])])
        writer.writerows(X.tolist())
    return path


@pytest.fixture
def data(tmp_path):
    X, y = _blobs()
    paths = {
        "csv": _write_csv(tmp_path / "X.csv", X),
        "csv_noheader": _write_csv(tmp_path / "X_nohead.csv", X, header=False),
        "npy": tmp_path / "X.npy",
        "labels": tmp_path / "y.csv",
        "labels_npy": tmp_path / "y.npy",
    }
    np.save(paths["npy"], X)
    np.save(paths["labels_npy"], y)
    with open(paths["labels"], "w") as handle:
        handle.write("label\n" + "\n".join(str(v) for v in y) + "\n")
    return X, y, paths


def _smoothed(X, y):
    return SmoothedClassifier(LogisticRegression(), sigma=0.5, n_samples=300, random_state=0).fit(X, y)


# ----------------------------------------------------------------------- help
@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["certify", "--help"]])
def test_help_of_every_subcommand(capsys, argv):
    code, out, _ = _run(capsys, *argv)
    assert code == 0
    assert "usage: smoothcert" in out
    if argv[0] == "certify":
        for option in ("--model", "--data", "--method", "--sigma", "--n-samples", "--alpha",
                       "--seed", "--out", "--labels", "--trust", "--unsafe-pickle"):
            assert option in out
        assert "arbitrary code" in out
    if argv[0] == "demo":
        for option in ("--full", "--out", "--seed", "--n-samples", "--n-iter", "--n-points"):
            assert option in out


def test_usage_errors_return_2(capsys):
    assert _run(capsys)[0] == 2
    assert _run(capsys, "certify", "--data", "x.csv")[0] == 2
    code, _, err = _run(capsys, "certify", "--model", "m", "--data", "d", "--out", "o",
                        "--method", "gaussian")
    assert code == 2 and "invalid choice" in err
    code, _, err = _run(capsys, "certify", "--model", "m", "--data", "d", "--out", "o",
                        "--alpha", "2")
    assert code == 2 and "(0, 1)" in err


def test_console_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "smoothcert.cli", "--version"], capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.startswith("smoothcert ")


# ----------------------------------------------------------------------- demo
def test_demo_writes_a_png_and_prints_the_table(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    fig, table = tmp_path / "demo.png", tmp_path / "table.csv"
    code, out, err = _run(
        capsys, "demo", "--n-samples", 200, "--n-iter", 1, "--n-points", 6, "--out", fig,
        "--table-out", table, "--dpi", 40, "--quiet",
    )
    assert code == 0, err
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for label in ("RS (fixed)", "DDRS (isotropic)", "ANCER (diagonal)", "Riemannian (SPD)"):
        assert label in out
    assert "median log-volume" in out and "R=0.25" in out
    rows = _read_csv(table)
    assert [r["method"] for r in rows][0] == "RS (fixed)" and len(rows) == 4
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_demo_errors(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code, _, err = _run(capsys, "demo", "--out", tmp_path / "missing" / "f.png", "-q")
    assert code == 1 and "does not exist" in err
    code, _, err = _run(capsys, "demo", "--out", tmp_path / "f.nope", "-q")
    assert code == 1 and "format" in err


# -------------------------------------------------------------------- certify
@pytest.mark.parametrize("kind", ["csv", "csv_noheader", "npy"])
def test_certify_round_trips_a_skops_smoothed_classifier(tmp_path, capsys, data, kind):
    X, y, paths = data
    model = _smoothed(X, y)
    sio.dump(model, tmp_path / "model.skops")
    out = tmp_path / "certs.csv"
    code, stdout, err = _run(
        capsys, "certify", "--model", tmp_path / "model.skops", "--data", paths[kind],
        "--out", out, "--labels", paths["labels"], "--radius", 0.5,
    )
    assert code == 0, err
    rows = _read_csv(out)
    expected = model.certify(X)
    assert len(rows) == len(X)
    assert_allclose([float(r["radius"]) for r in rows], expected.radius)
    assert_array_equal([int(r["prediction"]) for r in rows], expected.prediction)
    assert_allclose([float(r["p_lower"]) for r in rows], expected.p_lower)
    assert [r["correct"] for r in rows] == [str(bool(c)) for c in
                                            expected.certified & (expected.prediction == y)]
    assert "certified 20/20" in stdout and "certified accuracy" in stdout and "R=0.5" in stdout


def test_certify_overrides_and_method_change(tmp_path, capsys, data):
    X, y, paths = data
    sio.dump(_smoothed(X, y), tmp_path / "model.skops")
    out = tmp_path / "certs.csv"
    code, _, err = _run(
        capsys, "certify", "--model", tmp_path / "model.skops", "--data", paths["npy"],
        "--out", out, "--method", "diagonal", "--n-iter", 2, "--n-samples", 200,
        "--sigma", 0.3, "--seed", 1, "--labels", paths["labels_npy"], "-q",
    )
    assert code == 0, err
    rows = _read_csv(out)
    expected = CertifiedRegion(
        LogisticRegression(), method="diagonal", sigma=0.3, n_iter=2, n_samples=200,
        random_state=1,
    ).fit(X, y).certify(X)
    assert_allclose([float(r["radius"]) for r in rows], expected.radius)
    # --n-iter does not apply to fixed noise
    code, _, err = _run(
        capsys, "certify", "--model", tmp_path / "model.skops", "--data", paths["npy"],
        "--out", out, "--n-iter", 2,
    )
    assert code == 1 and "--n-iter" in err


@pytest.mark.parametrize("method", ["fixed", "isotropic"])
def test_certify_wraps_a_plain_classifier(tmp_path, capsys, data, method):
    X, y, paths = data
    base = LogisticRegression().fit(X, y)
    sio.dump(base, tmp_path / "lr.skops")
    out = tmp_path / "certs.csv"
    args = ["certify", "--model", tmp_path / "lr.skops", "--data", paths["csv"], "--out", out,
            "--method", method, "--n-samples", 200, "--seed", 0, "-q"]
    if method != "fixed":
        args += ["--n-iter", 2]
    code, stdout, err = _run(capsys, *args)
    assert code == 0, err
    rows = _read_csv(out)
    assert len(rows) == len(X)
    assert sum(r["abstained"] == "False" for r in rows) >= 15
    assert "certified" in stdout


def test_certify_a_pipeline_in_raw_space(tmp_path, capsys, data):
    X, y, paths = data
    pipe = make_pipeline(
        StandardScaler(), SmoothedClassifier(n_samples=200, random_state=0)
    ).fit(X * [5.0, 1.0], y)
    sio.dump(pipe, tmp_path / "pipe.skops")
    np.save(tmp_path / "Xs.npy", X * [5.0, 1.0])
    out = tmp_path / "certs.csv"
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "pipe.skops", "--data",
                        tmp_path / "Xs.npy", "--out", out, "-q")
    assert code == 0, err
    from smoothcert import certify

    assert_allclose([float(r["radius"]) for r in _read_csv(out)],
                    certify(pipe, X * [5.0, 1.0]).radius)


def test_untrusted_types_are_refused_unless_trusted(tmp_path, capsys, data):
    X, y, paths = data
    sio.dump(CustomClassifier().fit(X, y), tmp_path / "custom.skops")
    out = tmp_path / "certs.csv"
    args = ["certify", "--model", tmp_path / "custom.skops", "--data", paths["npy"], "--out", out,
            "--n-samples", 100, "-q"]
    code, _, err = _run(capsys, *args)
    assert code == 1 and "CustomClassifier" in err and "--trust" in err
    assert not out.exists()
    code, _, err = _run(capsys, *args, "--trust")
    assert code == 0, err
    assert out.exists()


def test_pickle_needs_the_unsafe_flag(tmp_path, capsys, data):
    X, y, paths = data
    path = tmp_path / "model.pkl"
    with open(path, "wb") as handle:
        pickle.dump(_smoothed(X, y), handle)
    out = tmp_path / "certs.csv"
    args = ["certify", "--model", path, "--data", paths["npy"], "--out", out, "-q"]
    code, _, err = _run(capsys, *args)
    assert code == 1 and "--unsafe-pickle" in err and "arbitrary code" in err
    assert not out.exists()
    code, _, err = _run(capsys, *args, "--unsafe-pickle")
    assert code == 0, err
    assert len(_read_csv(out)) == len(X)


@pytest.mark.parametrize(
    "setup, match",
    [
        ("missing_model", "model file not found"),
        ("missing_data", "data file not found"),
        ("bad_csv", "non-numeric"),
        ("ragged_csv", "columns"),
        ("nan_csv", "NaN"),
        ("object_npy", "Python objects"),
        ("text_npy", "real numbers"),
        ("one_d_npy", "1-D"),
        ("bad_ext", "unsupported data format"),
        ("wrong_features", "3 features but the model expects 2"),
        ("corrupt_skops", "not a valid skops file"),
        ("garbage_model", "not a skops file"),
        ("bad_labels", "not among the model's classes"),
        ("short_labels", "labels for 20 data rows"),
        ("missing_outdir", "does not exist"),
        ("not_a_classifier", "neither a smoothing estimator nor a classifier"),
        ("unfitted", "not fitted"),
    ],
)
def test_clear_errors_and_nonzero_exit(tmp_path, capsys, data, setup, match):
    X, y, paths = data
    model = tmp_path / "model.skops"
    sio.dump(_smoothed(X, y), model)
    data_path, out, extra = paths["npy"], tmp_path / "certs.csv", []
    if setup == "missing_model":
        model = tmp_path / "nope.skops"
    elif setup == "missing_data":
        data_path = tmp_path / "nope.csv"
    elif setup == "bad_csv":
        data_path = tmp_path / "bad.csv"
        data_path.write_text("a,b\n1,2\n3,x\n")
    elif setup == "ragged_csv":
        data_path = tmp_path / "bad.csv"
        data_path.write_text("1,2\n3\n")
    elif setup == "nan_csv":
        data_path = tmp_path / "bad.csv"
        data_path.write_text("1,2\nnan,3\n")
    elif setup == "object_npy":
        data_path = tmp_path / "obj.npy"
        np.save(data_path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif setup == "text_npy":
        data_path = tmp_path / "txt.npy"
        np.save(data_path, np.array([["a", "b"]]))
    elif setup == "one_d_npy":
        data_path = tmp_path / "v.npy"
        np.save(data_path, np.ones(3))
    elif setup == "bad_ext":
        data_path = tmp_path / "X.parquet"
        data_path.write_bytes(b"PAR1")
    elif setup == "wrong_features":
        data_path = tmp_path / "X3.npy"
        np.save(data_path, np.ones((4, 3)))
    elif setup == "corrupt_skops":
        import zipfile

        model = tmp_path / "corrupt.skops"
        with zipfile.ZipFile(model, "w") as archive:
            archive.writestr("hello.txt", "not a model")
    elif setup == "garbage_model":
        model = tmp_path / "garbage.skops"
        model.write_bytes(b"\x00\x01 not a zip")
    elif setup == "bad_labels":
        labels = tmp_path / "y.csv"
        labels.write_text("\n".join(["7"] * len(X)))
        extra = ["--labels", labels]
    elif setup == "short_labels":
        labels = tmp_path / "y.csv"
        labels.write_text("0\n1\n")
        extra = ["--labels", labels]
    elif setup == "missing_outdir":
        out = tmp_path / "nowhere" / "certs.csv"
    elif setup == "not_a_classifier":
        sio.dump(StandardScaler().fit(X), model)
    elif setup == "unfitted":
        sio.dump(LogisticRegression(), model)
    code, _, err = _run(capsys, "certify", "--model", model, "--data", data_path, "--out", out,
                        "-q", *extra)
    assert code == 1
    assert err.startswith("smoothcert: error:") and match in err
    assert not out.exists()


def test_interrupted_write_leaves_no_file_and_keeps_the_old_one(tmp_path, capsys, data, monkeypatch):
    X, y, paths = data
    sio.dump(_smoothed(X, y), tmp_path / "model.skops")
    out = tmp_path / "certs.csv"
    out.write_text("previous results\n")
    calls = {"n": 0}
    real_cell = _io._cell

    def flaky(value):
        calls["n"] += 1
        if calls["n"] > 30:
            raise KeyboardInterrupt
        return real_cell(value)

    monkeypatch.setattr(_io, "_cell", flaky)
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "model.skops", "--data",
                        paths["npy"], "--out", out, "-q")
    assert code == 130 and "interrupted" in err
    assert out.read_text() == "previous results\n"
    assert sorted(os.listdir(tmp_path)) == sorted(["X.csv", "X_nohead.csv", "X.npy", "y.csv",
                                                   "y.npy", "model.skops", "certs.csv"])


def test_debug_shows_the_traceback(tmp_path, data):
    X, y, paths = data
    with pytest.raises(CLIError):
        main(["--debug", "certify", "--model", str(tmp_path / "nope.skops"), "--data",
              str(paths["npy"]), "--out", str(tmp_path / "o.csv")])


@pytest.mark.parametrize(
    "name, trusted",
    [
        ("smoothcert._estimators._smoothed.SmoothedClassifier", True),
        ("smoothcert._estimators._region.CertifiedRegion", True),
        ("smoothcert._estimators._base.LogisticRegression", False),  # imported there, defined elsewhere
        ("smoothcert._engine._loop.Parallel", False),
        ("smoothcert.cli._io.os", False),
        ("smoothcert.does_not_exist.Thing", False),
        ("os.system", False),
        ("builtins.eval", False),
    ],
)
def test_only_estimators_defined_in_smoothcert_are_trusted(name, trusted):
    assert _models.is_smoothcert_estimator(name) is trusted
