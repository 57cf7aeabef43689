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
from smoothcert.guarantees import DeployedGuarantee

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
                       "--seed", "--out", "--labels", "--trust", "--unsafe-pickle",
                       "--noise-features", "--train-data"):
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
    assert "cert. acc." not in out  # no column duplicating an R column
    assert "caption: Certified regions" in out and "CertificateMemory" in out
    rows = _read_csv(table)
    assert [r["method"] for r in rows][0] == "RS (fixed)" and len(rows) == 4
    assert not [c for c in rows[0] if "acc" in c]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.parametrize("suffix, magic", [(".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_demo_writes_vector_figures(tmp_path, capsys, suffix, magic):
    pytest.importorskip("matplotlib")
    fig = tmp_path / f"demo{suffix}"
    code, _, err = _run(capsys, "demo", "--n-samples", 100, "--n-iter", 0, "--n-points", 4,
                        "--out", fig, "--quiet")
    assert code == 0, err
    data = fig.read_bytes()
    assert data.startswith(magic)
    if suffix == ".svg":
        assert b"<svg" in data and b"certified accuracy" in data


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
        guarantee="per-covariance",
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


# ----------------------------------------------------------- columns and files
def _named_problem(n=24, seed=0):
    """Three named features; only ``a`` decides the class, ``b`` and ``c`` sit far off 0.

    Certifying with the columns in another order gives other predictions.
    """
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "a": rng.standard_normal(n) * 2.0,
        "b": 5.0 + rng.standard_normal(n),
        "c": -5.0 + rng.standard_normal(n),
    })
    y = (frame["a"] > 0).astype(int).to_numpy()
    return frame, y


def _dump_named_model(tmp_path, frame, y, kind):
    if kind == "smoothed":
        model = SmoothedClassifier(LogisticRegression(), sigma=0.5, n_samples=300,
                                   random_state=0).fit(frame, y)
    else:
        model = LogisticRegression().fit(frame, y)
    path = tmp_path / f"{kind}.skops"
    sio.dump(model, path)
    return model, path


def _certify_args(model_path, data_path, out, *extra):
    return ["certify", "--model", model_path, "--data", data_path, "--out", out,
            "--n-samples", 300, "--seed", 0, "-q", *extra]


@pytest.mark.parametrize("kind", ["smoothed", "plain"])
def test_header_columns_are_matched_by_name(tmp_path, capsys, kind):
    frame, y = _named_problem()
    model, model_path = _dump_named_model(tmp_path, frame, y, kind)
    frame.to_csv(tmp_path / "ordered.csv", index=False)
    frame[["c", "a", "b"]].to_csv(tmp_path / "shuffled.csv", index=False)
    frame[["c", "a", "b"]].to_csv(tmp_path / "shuffled.tsv", index=False, sep="\t")
    outputs = {}
    for name in ("ordered.csv", "shuffled.csv", "shuffled.tsv"):
        out = tmp_path / f"out-{name}.csv"
        code, _, err = _run(capsys, *_certify_args(model_path, tmp_path / name, out))
        assert code == 0, err
        assert err == ""  # names matched: nothing to warn about
        outputs[name] = out.read_text()
    assert outputs["shuffled.csv"] == outputs["ordered.csv"]
    assert outputs["shuffled.tsv"] == outputs["ordered.csv"]
    rows = _read_csv(tmp_path / "out-ordered.csv.csv")
    if kind == "smoothed":
        assert_array_equal([int(r["prediction"]) for r in rows], model.certify(frame).prediction)
    else:
        assert_array_equal([int(r["prediction"]) for r in rows], model.predict(frame))


@pytest.mark.parametrize(
    "columns, expected, unexpected",
    [
        (["a", "b", "d"], ["missing: 'c'", "extra: 'd'"], []),
        (["a", "b", "c", "d"], ["extra: 'd'"], ["missing"]),
        (["b", "a"], ["missing: 'c'"], ["extra"]),
        (["a", "b", "b"], ["repeats", "'b'"], []),
    ],
)
def test_header_names_that_do_not_match_are_refused(tmp_path, capsys, columns, expected,
                                                    unexpected):
    frame, y = _named_problem()
    _, model_path = _dump_named_model(tmp_path, frame, y, "smoothed")
    data = tmp_path / "X.csv"
    with open(data, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(np.ones((4, len(columns))).tolist())
    out = tmp_path / "out.csv"
    code, _, err = _run(capsys, *_certify_args(model_path, data, out))
    assert code == 1 and err.startswith("smoothcert: error:")
    assert len(err.strip().splitlines()) == 1
    for text in expected:
        assert text in err, err
    for text in unexpected:
        assert text not in err, err
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_data_without_names_for_a_named_model_gets_the_order_note(tmp_path, capsys, suffix):
    frame, y = _named_problem()
    _, model_path = _dump_named_model(tmp_path, frame, y, "smoothed")
    frame.to_csv(tmp_path / "ordered.csv", index=False)
    data = tmp_path / f"nameless{suffix}"
    if suffix == ".npy":
        np.save(data, frame.to_numpy())
    else:
        frame.to_csv(data, index=False, header=False)
    out, reference = tmp_path / "out.csv", tmp_path / "ref.csv"
    code, _, err = _run(capsys, *_certify_args(model_path, data, out))
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("note:"), err
    assert "no column names" in err and "order" in err and "'a', 'b', 'c'" in err
    assert _run(capsys, *_certify_args(model_path, tmp_path / "ordered.csv", reference))[0] == 0
    assert out.read_text() == reference.read_text()
    # a model fitted on arrays has no names to compare with: no note
    sio.dump(_smoothed(frame.to_numpy(), y), tmp_path / "arrays.skops")
    code, _, err = _run(capsys, *_certify_args(tmp_path / "arrays.skops", data, out))
    assert code == 0 and err == ""
    # a wrong count is still an error, not a note
    np.save(tmp_path / "two.npy", frame.to_numpy()[:, :2])
    code, _, err = _run(capsys, *_certify_args(model_path, tmp_path / "two.npy", out))
    assert code == 1 and "2 features but the model expects 3" in err and "note" not in err


@pytest.mark.parametrize(
    "named, writer",
    [(True, "index"), (True, "index-no-header"), (False, "index"), (False, "index-no-header"),
     (False, "int-columns")],  # int columns cannot match a named model's names
)
def test_pandas_index_column_gets_a_hint(tmp_path, capsys, named, writer):
    frame, y = _named_problem()
    if named:
        _, model_path = _dump_named_model(tmp_path, frame, y, "smoothed")
    else:
        model_path = tmp_path / "arrays.skops"
        sio.dump(_smoothed(frame.to_numpy(), y), model_path)
    data = tmp_path / "X.csv"
    if writer == "index":
        frame.to_csv(data)  # pandas' default: index=True, empty first header
    elif writer == "index-no-header":
        frame.to_csv(data, header=False)
    else:  # unnamed columns: the header is ",0,1,2"
        type(frame)(frame.to_numpy()).to_csv(data)
    out = tmp_path / "out.csv"
    code, _, err = _run(capsys, *_certify_args(model_path, data, out))
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "4 columns but the model expects 3" in err
    assert "index" in err and "index=False" in err and "drop that column" in err
    assert not out.exists()


def test_an_extra_column_that_is_no_index_gets_no_index_hint(tmp_path, capsys):
    frame, y = _named_problem()
    model_path = tmp_path / "arrays.skops"
    sio.dump(_smoothed(frame.to_numpy(), y), model_path)
    data = tmp_path / "X.csv"
    frame.assign(d=0.5).to_csv(data, index=False)
    code, _, err = _run(capsys, *_certify_args(model_path, data, tmp_path / "out.csv"))
    assert code == 1 and "4 features but the model expects 3" in err
    assert "index" not in err


def test_radius_without_labels_reports_the_certified_fraction(tmp_path, capsys):
    frame, y = _named_problem()
    X = frame.to_numpy()
    model = _smoothed(X, y)
    sio.dump(model, tmp_path / "model.skops")
    np.save(tmp_path / "X.npy", X)
    expected = model.certify(X)
    radius = float(np.median(expected.radius))
    inside = expected.contains_ball(radius)
    assert 0 < inside.sum() < len(X)  # a radius that separates the inputs
    code, out, err = _run(capsys, "certify", "--model", tmp_path / "model.skops", "--data",
                          tmp_path / "X.npy", "--out", tmp_path / "out.csv", "--radius", radius,
                          "-q")
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith(f"certified at R={radius:g}"))
    assert f"{inside.sum()}/{len(X)} inputs ({inside.mean():.4f})" in line
    assert "accuracy" not in out  # that needs --labels


@pytest.mark.parametrize(
    "text, line, column",
    [
        ("a,b\n1,2\n3,\n", "line 3", "column 'b'"),
        ("a,b\n\n1,2\n\n,4\n", "line 5", "column 'a'"),  # file lines, blank ones counted
        ("1,2\n,4\n", "line 2", "column 1"),
        ("1,,3\n4,5,6\n", "line 1", "column 2"),  # a first row with a gap is no header
    ],
)
def test_empty_cell_names_the_line_and_the_column(tmp_path, capsys, data, text, line, column):
    X, y, paths = data
    sio.dump(_smoothed(X, y), tmp_path / "model.skops")
    bad = tmp_path / "gap.csv"
    bad.write_text(text)
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "model.skops", "--data", bad,
                        "--out", tmp_path / "out.csv", "-q")
    assert code == 1 and "empty value" in err
    assert f"{line}, {column}:" in err, err


# ------------------------------------------------ the guarantee in every output
def _certify_lr_isotropic(tmp_path, capsys, data):
    """``certify --method isotropic`` of a logistic regression (no training data)."""
    X, y, paths = data
    sio.dump(LogisticRegression().fit(X, y), tmp_path / "lr.skops")
    out = tmp_path / "certs.csv"
    code, stdout, err = _run(capsys, "certify", "--model", tmp_path / "lr.skops", "--data",
                             paths["npy"], "--out", out, "--method", "isotropic", "--n-iter", 1,
                             "--n-samples", 200, "--seed", 0, "-q")
    return code, stdout, err, out


def test_certify_writes_and_names_the_guarantee(tmp_path, capsys, data):
    X, y, paths = data
    code, stdout, err, out = _certify_lr_isotropic(tmp_path, capsys, data)
    assert code == 0, err
    assert {r["guarantee"] for r in _read_csv(out)} == {"per-covariance"}
    assert "guarantee: per-covariance" in stdout
    assert "does not cover the deployed classifier" in stdout
    sio.dump(_smoothed(X, y), tmp_path / "model.skops")
    code, stdout, err = _run(capsys, "certify", "--model", tmp_path / "model.skops", "--data",
                             paths["npy"], "--out", out, "-q")
    assert code == 0, err
    assert {r["guarantee"] for r in _read_csv(out)} == {"fixed-noise"}
    assert "guarantee: fixed-noise" in stdout and "deployed" not in stdout


# ------------------------------------------------------ long runs lose nothing
def _slow_model(tmp_path, n_rows=40):
    """A saved model that takes a few seconds on ``n_rows`` rows, and the data file."""
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 2))
    model = SmoothedClassifier(KNeighborsClassifier(algorithm="brute"), sigma=0.5,
                               n_samples=3000, n_samples_selection=10, random_state=3)
    model.fit(X, (X[:, 0] > 0).astype(int))
    sio.dump(model, tmp_path / "slow.skops")
    np.save(tmp_path / "X.npy", X[:n_rows])
    return tmp_path / "slow.skops", tmp_path / "X.npy"


def _certify_argv(model, X, out, *extra):
    return ["certify", "--model", str(model), "--data", str(X), "--out", str(out),
            "--chunk-size", "4", "-q", *extra]


def _wait_for_rows(path, process, timeout=120):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_text().count("\n") >= 5:  # header + a chunk
            return
        time.sleep(0.005)


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_an_interrupted_run_keeps_its_rows_and_resumes(tmp_path, capsys, how):
    import signal

    model, X = _slow_model(tmp_path)
    reference = tmp_path / "reference.csv"
    code, _, err = _run(capsys, *_certify_argv(model, X, reference))
    assert code == 0, err
    out = tmp_path / "certs.csv"
    process = subprocess.Popen(
        [sys.executable, "-m", "smoothcert.cli", *_certify_argv(model, X, out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    _wait_for_rows(out, process)
    process.send_signal(getattr(signal, how))
    _, stderr = process.communicate(timeout=120)
    if how == "SIGINT":
        assert process.returncode == 130 and "--resume" in stderr, stderr
    else:
        assert process.returncode == -signal.SIGKILL
    partial = _read_csv(out)  # a valid CSV of whole chunks, the same rows as the reference
    expected = reference.read_text().splitlines()
    assert 4 <= len(partial) < 40
    assert out.read_text().splitlines() == expected[: len(partial) + 1]
    code, _, err = _run(capsys, *_certify_argv(model, X, out, "--resume"))
    assert code == 0, err
    assert f"{len(partial)} of 40 rows already written" in err
    assert out.read_text() == reference.read_text()


def test_resume_continues_after_a_torn_line_and_refuses_a_foreign_file(tmp_path, capsys, data):
    X, y, paths = data
    sio.dump(_smoothed(X, y), tmp_path / "model.skops")
    reference, out = tmp_path / "reference.csv", tmp_path / "certs.csv"
    argv = ["certify", "--model", tmp_path / "model.skops", "--data", paths["npy"],
            "--chunk-size", 3, "-q"]
    assert _run(capsys, *argv, "--out", reference)[0] == 0
    lines = reference.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:8]) + lines[8][:10])  # 7 rows and a cut line
    code, _, err = _run(capsys, *argv, "--out", out, "--resume")
    assert code == 0, err
    assert "7 of 20 rows already written" in err
    assert out.read_text() == reference.read_text()
    # resuming a finished run certifies nothing and prints the summary again
    code, stdout, err = _run(capsys, *argv, "--out", out, "--resume")
    assert code == 0 and "20 of 20" in err and "certified 20/20" in stdout
    out.write_text("a,b\n1,2\n")
    code, _, err = _run(capsys, *argv, "--out", out, "--resume")
    assert code == 1 and "not an output of smoothcert certify" in err
    # without --resume an existing file is replaced
    assert _run(capsys, *argv, "--out", out)[0] == 0
    assert out.read_text() == reference.read_text()


# ------------------------------------------------------------- --noise-features
def _blobs_3d(n_per_class=10, seed=0):
    X, y = _blobs(n_per_class, seed)
    rng = np.random.default_rng(seed + 1)
    return np.c_[X, rng.integers(0, 3, len(y)).astype(float)], y  # a category code column


@pytest.mark.parametrize("value", ["x0,x1", "1,0", "x1, 0"])
def test_noise_features_option_reaches_the_estimator(tmp_path, capsys, value):
    from sklearn.frozen import FrozenEstimator

    X, y = _blobs_3d()
    base = LogisticRegression().fit(X, y)
    sio.dump(base, tmp_path / "lr.skops")
    data = _write_csv(tmp_path / "X.csv", X)  # header x0, x1, x2
    out = tmp_path / "certs.csv"
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "lr.skops", "--data", data,
                        "--out", out, "--noise-features", value, "--n-samples", 300,
                        "--seed", 0, "-q")
    assert code == 0, err
    rows = _read_csv(out)
    expected = SmoothedClassifier(FrozenEstimator(base), n_samples=300, random_state=0,
                                  noise_features=[0, 1]).fit(X).certify(X)
    assert_allclose([float(r["radius"]) for r in rows], expected.radius)
    assert {r["noise_features"] for r in rows} == {"0,1"}
    # without the option every column gets noise: other radii, no such column
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "lr.skops", "--data", data,
                        "--out", out, "--n-samples", 300, "--seed", 0, "-q")
    assert code == 0, err
    assert "noise_features" not in _read_csv(out)[0]


def test_noise_features_option_uses_the_model_names(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    X, y = _blobs_3d()
    frame = pd.DataFrame(X, columns=["age", "income", "city"])
    model = SmoothedClassifier(LogisticRegression(), n_samples=300, random_state=0).fit(frame, y)
    sio.dump(model, tmp_path / "model.skops")
    np.save(tmp_path / "X.npy", X)  # no header: the model's names apply
    out = tmp_path / "certs.csv"
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "model.skops", "--data",
                        tmp_path / "X.npy", "--out", out, "--noise-features", "income,age", "-q")
    assert code == 0, err
    expected = model.set_params(noise_features=["age", "income"]).certify(frame)
    assert_allclose([float(r["radius"]) for r in _read_csv(out)], expected.radius)


@pytest.mark.parametrize(
    "value, match",
    [
        ("x0,,x1", "empty field"),
        ("height", "no column is named 'height'; the columns are 'x0', 'x1', 'x2'"),
        ("5", "index 5 is out of range for 3 columns"),
        ("x0,0", "names a column twice"),
        ("-1", "no column is named '-1'"),
    ],
)
def test_bad_noise_features_option(tmp_path, capsys, value, match):
    X, y = _blobs_3d()
    sio.dump(LogisticRegression().fit(X, y), tmp_path / "lr.skops")
    data = _write_csv(tmp_path / "X.csv", X)
    out = tmp_path / "certs.csv"
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "lr.skops", "--data", data,
                        "--out", out, "--noise-features", value, "-q")
    assert code == 1 and match in err, err
    assert not out.exists()
    # without names, a name is refused with the way out (indices)
    np.save(tmp_path / "X.npy", X)
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "lr.skops", "--data",
                        tmp_path / "X.npy", "--out", out, "--noise-features", "x0", "-q")
    assert code == 1 and "give indices from 0" in err


# ------------------------------------------- --train-data: the deployed guarantee
def test_method_with_training_data_certifies_the_deployed_classifier(tmp_path, capsys, data):
    from sklearn.frozen import FrozenEstimator

    X, y, paths = data
    X_train, _ = _blobs(30, seed=5)
    base = LogisticRegression().fit(X, y)
    sio.dump(base, tmp_path / "lr.skops")
    train = _write_csv(tmp_path / "train.csv", X_train)
    out = tmp_path / "certs.csv"
    settings = ["--n-iter", 2, "--n-samples", 300, "--seed", 0, "-q"]
    code, stdout, err = _run(capsys, "certify", "--model", tmp_path / "lr.skops", "--data",
                             paths["csv"], "--out", out, "--method", "isotropic",
                             "--train-data", train, *settings)
    assert code == 0, err
    rows = _read_csv(out)
    assert {r["guarantee"] for r in rows} == {"deployed"}
    assert "guarantee: deployed" in stdout and "note:" not in err
    # the same certificates as CertifiedRegion fitted on those inputs (the base not retrained)
    expected = CertifiedRegion(FrozenEstimator(base), method="isotropic", n_iter=2,
                               n_samples=300, random_state=0).fit(X_train).certify(X)
    assert expected.guarantee == "deployed"
    assert_allclose([float(r["radius"]) for r in rows], expected.radius)
    # a smoothing estimator from a file: converted, its family fitted on the inputs
    sio.dump(_smoothed(X, y), tmp_path / "model.skops")
    code, stdout, err = _run(capsys, "certify", "--model", tmp_path / "model.skops", "--data",
                             paths["npy"], "--out", out, "--method", "diagonal",
                             "--train-data", train, *settings)
    assert code == 0, err
    assert {r["guarantee"] for r in _read_csv(out)} == {"deployed"}


def test_method_without_training_data_says_why_per_covariance(tmp_path, capsys, data):
    _, _, paths = data
    code, stdout, err, out = _certify_lr_isotropic(tmp_path, capsys, data)
    assert code == 0, err
    assert {r["guarantee"] for r in _read_csv(out)} == {"per-covariance"}
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1
    assert "per-covariance" in notes[0] and "--train-data" in notes[0]
    # fixed noise needs no family: no note
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "lr.skops", "--data",
                        paths["npy"], "--out", out, "--n-samples", 200, "-q")
    assert code == 0 and "note:" not in err


def test_a_deployed_region_keeps_its_family_for_its_own_method(tmp_path, capsys, data):
    X, y, paths = data
    from sklearn.datasets import make_moons

    X_train, y_train = make_moons(300, noise=0.2, random_state=0)
    region = CertifiedRegion(LogisticRegression(), method="isotropic", n_iter=3, n_samples=300,
                             n_samples_optim=16, random_state=0,
                             guarantee=DeployedGuarantee(n_family_inputs=32, n_selector_inputs=100,
                                                         selector=LogisticRegression()),
                             ).fit(X_train, y_train)
    assert len(region.covariance_family_) == 2
    sio.dump(region, tmp_path / "region.skops")
    out = tmp_path / "certs.csv"
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "region.skops", "--data",
                        paths["npy"], "--out", out, "--method", "isotropic", "-q")
    assert code == 0, err
    assert {r["guarantee"] for r in _read_csv(out)} == {"deployed"} and "note:" not in err
    assert_allclose([float(r["radius"]) for r in _read_csv(out)], region.certify(X).radius)
    # new noise columns need the family fitted again
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "region.skops", "--data",
                        paths["npy"], "--out", out, "--noise-features", "0", "-q")
    assert code == 1 and "--train-data" in err


def test_training_data_keep_a_deployed_guarantee_object_and_its_parameters():
    from sklearn.datasets import make_moons

    X_train, y_train = make_moons(200, noise=0.2, random_state=0)
    guarantee = DeployedGuarantee(n_prototypes=1, n_family_inputs=16, n_selector_inputs=60)
    region = CertifiedRegion(LogisticRegression(), method="isotropic", n_iter=2, n_samples=200,
                             n_samples_optim=16, guarantee=guarantee, random_state=0)
    region.fit(X_train, y_train)
    assert _models.guarantee_of(region) == "deployed"
    # another method with training data: the family is fitted again with the object's parameters
    configured = _models._configure(region, "diagonal", {}, X_train=X_train)
    assert configured.guarantee is guarantee and len(configured.covariance_family_) == 1
    # without training data the command certifies per covariance
    configured = _models._configure(region, "isotropic", {})
    assert _models.guarantee_of(configured) == "per-covariance"
    assert _models.guarantee_of(SmoothedClassifier()) is None


def test_a_pipeline_with_training_data_and_noise_features(tmp_path, capsys, data):
    # the training inputs go through the pipeline's preprocessing to fit the family;
    # --noise-features names columns of the last step's input
    X, y, paths = data
    pipe = make_pipeline(StandardScaler(), SmoothedClassifier(n_samples=300, random_state=0))
    pipe.fit(X * [5.0, 1.0], y)
    sio.dump(pipe, tmp_path / "pipe.skops")
    np.save(tmp_path / "Xs.npy", X * [5.0, 1.0])
    X_train, _ = _blobs(30, seed=5)
    np.save(tmp_path / "train.npy", X_train * [5.0, 1.0])
    out = tmp_path / "certs.csv"
    code, stdout, err = _run(capsys, "certify", "--model", tmp_path / "pipe.skops", "--data",
                             tmp_path / "Xs.npy", "--out", out, "--method", "isotropic",
                             "--n-iter", 2, "--train-data", tmp_path / "train.npy",
                             "--noise-features", "1", "-q")
    assert code == 0, err
    rows = _read_csv(out)
    assert {r["guarantee"] for r in rows} == {"deployed"}
    assert {r["noise_features"] for r in rows} == {"1"}  # raw column 1 feeds scaled column 1
    assert sum(r["abstained"] == "False" for r in rows) >= 15
    # training data with other columns are refused
    np.save(tmp_path / "train3.npy", np.ones((5, 3)))
    code, _, err = _run(capsys, "certify", "--model", tmp_path / "pipe.skops", "--data",
                        tmp_path / "Xs.npy", "--out", out, "--method", "isotropic",
                        "--train-data", tmp_path / "train3.npy", "-q")
    assert code == 1 and "features" in err
