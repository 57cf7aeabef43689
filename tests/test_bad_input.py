"""A catalogue of bad input, across the estimators, the metrics, the memory and the CLI.

Every case either works (string labels, pandas without column names, boolean
input, ...) or fails with a documented exception type (ValueError and its
subclasses, TypeError, FileNotFoundError, or a non-zero CLI exit status) whose
message names the offending parameter or input. No case may surface an
IndexError, a LinAlgError, a torch error or a storm of warnings, and a failed
CLI run writes no output file (and leaves a previous one untouched).
"""

import contextlib
import io
import pickle
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_moons
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from smoothcert import (
    Certificate,
    CertificateMemory,
    CertifiedRegion,
    SmoothedClassifier,
    certified_accuracy,
    certified_accuracy_curve,
    make_certified_scorer,
)
from smoothcert._geometry._forms import RowCovariances
from smoothcert.search import DiagonalSearch, RiemannianSearch

pd = pytest.importorskip("pandas")

FAST = dict(n_samples=100, n_samples_selection=10, random_state=0)
REGION = dict(method="diagonal", n_iter=1, n_samples_optim=8, **FAST)
PREVIOUS = "previous complete content\n"

# Exceptions that must never reach a user of the library.
FORBIDDEN = (IndexError, KeyError, np.linalg.LinAlgError, ZeroDivisionError, OverflowError,
             AttributeError)
try:  # a torch error surfacing through the skorch adapter
    import torch

    FORBIDDEN = FORBIDDEN + (torch.OutOfMemoryError,)
except (ImportError, AttributeError):  # pragma: no cover
    torch = None


# ------------------------------------------------------------------ context
@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    X, y = make_moons(n_samples=60, noise=0.1, random_state=0)
    c = types.SimpleNamespace(X=X, y=y)
    c.smoothed = SmoothedClassifier(LogisticRegression(), **FAST).fit(X, y)
    c.region = CertifiedRegion(LogisticRegression(), **REGION, guarantee="per-covariance").fit(X, y)
    frame = pd.DataFrame(X, columns=["u", "v"])
    c.frame = frame
    c.named = SmoothedClassifier(LogisticRegression(), **FAST).fit(frame, y)
    c.cert = c.smoothed.certify(X[:6])
    c.rcert = c.region.certify(X[:6])
    memory = CertificateMemory()
    memory.process(c.rcert)
    c.memory = memory
    d = tmp_path_factory.mktemp("bad_input")
    c.dir = d
    good = d / "memory.npz"
    memory.save(good)
    c.memory_file = good
    # CLI files
    sio = pytest.importorskip("skops.io")
    c.model_file = d / "model.skops"
    sio.dump(c.smoothed, c.model_file)
    c.pickle_file = d / "model.pkl"
    c.pickle_file.write_bytes(pickle.dumps(c.smoothed))
    c.data_file = d / "data.npy"
    np.save(c.data_file, X[:5])
    return c


def _npz_variant(ctx, name, **changes):
    """A copy of the good memory file with some arrays replaced (or removed: None)."""
    with np.load(ctx.memory_file, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    path = ctx.dir / f"{name}.npz"
    np.savez(path, **arrays)
    return path


def _with_nan(a, where=(0, 0)):
    a = np.array(a, dtype=float, copy=True)
    a[where] = np.nan
    return a


def _not_spd(covs):
    covs = np.array(covs, copy=True)
    covs[0] = np.diag([1.0, -1.0])
    return covs


def _overlapping(ctx):
    # two regions of different classes around the same centre
    return dict(
        centers=np.array([[0.0, 0.0], [0.1, 0.0]]),
        covariances=np.stack([np.eye(2), np.eye(2)]),
        mahalanobis_radii=np.array([1.0, 1.0]),
        p_lower=np.array([0.9, 0.9]),
        label_codes=np.array([0, 1]),
    )


def _cli(ctx, *args, out=True, previous=False):
    """Run ``smoothcert certify`` (or ``demo``) in-process; return (status, stderr, out_path)."""
    from smoothcert.cli import main

    command = "certify"
    if args and args[0] == "demo":
        command, args = "demo", args[1:]
    suffix = ".png" if command == "demo" else ".csv"
    out_path = ctx.dir / f"out_{abs(hash(args))}{suffix}"
    if not out:
        out_path = Path(str(args[list(args).index("--out") + 1]))
    if out_path.exists():
        out_path.unlink()
    if previous and out_path.parent.is_dir():
        out_path.write_text(PREVIOUS)
    argv = [command, *[str(a) for a in args]]
    if out:
        argv += ["--out", str(out_path)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, err.getvalue(), out_path


def _bad_file(ctx, name, data):
    path = ctx.dir / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


def _cert(ctx, **changes):
    kwargs = dict(
        center=np.zeros((2, 2)), prediction=np.array([0, 1]), abstained=np.array([False, False]),
        covariance=RowCovariances.isotropic([1.0, 1.0], 2),
        mahalanobis_radius=np.array([1.0, 1.0]), p_lower=np.array([0.9, 0.9]), alpha=0.01,
    )
    kwargs.update(changes)
    return Certificate(**kwargs)


def _est(kind):
    return (SmoothedClassifier(LogisticRegression(), **FAST) if kind == "smoothed"
            else CertifiedRegion(LogisticRegression(), search=DiagonalSearch(), **REGION, guarantee="per-covariance"))


# ------------------------------------------------------------------- cases
# (id, action(ctx), expected, match)
#   expected: an exception class, "works", ("warns", Warning, match), or ("cli", status)
CASES = []


def case(id, expected, match=None, marks=()):
    def register(action):
        CASES.append(pytest.param(action, expected, match, id=id, marks=marks))
        return action

    return register


for kind in ("smoothed", "region"):
    # ---------------------------------------------------------- X at fit
    case(f"{kind}-fit-nan", ValueError, "NaN")(
        lambda c, k=kind: _est(k).fit(_with_nan(c.X), c.y))
    case(f"{kind}-fit-inf", ValueError, "infinity")(
        lambda c, k=kind: _est(k).fit(np.where(c.X > 1.5, np.inf, c.X), c.y))
    case(f"{kind}-fit-empty", ValueError, "0 sample")(
        lambda c, k=kind: _est(k).fit(np.zeros((0, 2)), np.zeros(0)))
    case(f"{kind}-fit-1d", ValueError, "Expected 2D array")(
        lambda c, k=kind: _est(k).fit(c.X[:, 0], c.y))
    case(f"{kind}-fit-3d", ValueError, "dim 3")(
        lambda c, k=kind: _est(k).fit(c.X[:, :, None], c.y))
    case(f"{kind}-fit-strings", ValueError, "columns that are not numbers: \\[0, 1\\]")(
        lambda c, k=kind: _est(k).fit(np.array([["a", "b"]] * 60, dtype=object), c.y))
    case(f"{kind}-fit-complex", ValueError, "Complex data not supported")(
        lambda c, k=kind: _est(k).fit(c.X + 1j, c.y))
    case(f"{kind}-fit-sparse", TypeError, "[Ss]parse")(
        lambda c, k=kind: _est(k).fit(sp.csr_matrix(c.X), c.y))
    case(f"{kind}-fit-length-mismatch", ValueError, "inconsistent numbers of samples")(
        lambda c, k=kind: _est(k).fit(c.X, c.y[:-1]))
    case(f"{kind}-fit-continuous-y", ValueError, "Unknown label type")(
        lambda c, k=kind: _est(k).fit(c.X, c.X[:, 0]))
    case(f"{kind}-fit-single-class", ValueError, "only one class")(
        lambda c, k=kind: _est(k).fit(c.X, np.zeros(60, dtype=int)))
    case(f"{kind}-fit-nan-y", ValueError, "NaN")(
        lambda c, k=kind: _est(k).fit(c.X, _with_nan(c.y.astype(float), 0)))
    case(f"{kind}-string-labels-work", "works")(
        lambda c, k=kind: _check_string_labels(_est(k), c))
    case(f"{kind}-boolean-X-works", "works")(
        lambda c, k=kind: _est(k).fit(c.X > 0, c.y).certify(c.X[:3] > 0))
    case(f"{kind}-object-numbers-work", "works")(
        lambda c, k=kind: _est(k).fit(c.X.astype(object), c.y).certify(c.X[:2].astype(object)))
    case(f"{kind}-pandas-without-names-works", "works")(
        lambda c, k=kind: _est(k).fit(pd.DataFrame(c.X), c.y).certify(pd.DataFrame(c.X[:3])))
    # ---------------------------------------------------------- X at inference
    for method in ("certify", "predict_proba"):
        case(f"{kind}-{method}-n-features", ValueError, "3 features")(
            lambda c, k=kind, m=method: getattr(getattr(c, k), m)(np.zeros((2, 3))))
        case(f"{kind}-{method}-nan", ValueError, "NaN")(
            lambda c, k=kind, m=method: getattr(getattr(c, k), m)(_with_nan(c.X[:3])))
        case(f"{kind}-{method}-empty", ValueError, "0 sample")(
            lambda c, k=kind, m=method: getattr(getattr(c, k), m)(np.zeros((0, 2))))
        case(f"{kind}-{method}-sparse", TypeError, "[Ss]parse")(
            lambda c, k=kind, m=method: getattr(getattr(c, k), m)(sp.csr_matrix(c.X[:3])))
    case(f"{kind}-predict-complex", ValueError, "Complex data not supported")(
        lambda c, k=kind: getattr(c, k).predict(c.X[:3] + 1j))
    case(f"{kind}-certify-not-fitted", NotFittedError, "not fitted")(
        lambda c, k=kind: _est(k).certify(c.X[:3]))

# --------------------------------------------------------------- feature names
case("pandas-renamed-columns", ValueError, "feature names should match")(
    lambda c: c.named.certify(c.frame.rename(columns={"u": "w"}).iloc[:3]))
case("pandas-missing-column", ValueError, "feature names|features")(
    lambda c: c.named.certify(c.frame[["u"]].iloc[:3]))
case("pandas-fit-names-predict-array", ("warns", UserWarning, "valid feature names"))(
    lambda c: c.named.certify(c.X[:3]))
case("frozen-base-fitted-on-dataframe-no-warning-storm", "works")(
    lambda c: _frozen_named(c).certify(c.frame.iloc[:5]))
case("frozen-base-selecting-columns-by-name", "works")(
    lambda c: _by_name(c, frozen=True).certify(c.frame.iloc[:3]))
case("base-selecting-columns-by-name", "works")(
    lambda c: _by_name(c, frozen=False).certify(c.frame.iloc[:3]))
case("pandas-fit-array-predict-names", ("warns", UserWarning, "fitted without feature names"))(
    lambda c: c.smoothed.certify(c.frame.iloc[:3]))

# ---------------------------------------------------------------- parameters
BAD_PARAMS = [
    ("sigma", 0), ("sigma", -1.0), ("sigma", "big"), ("sigma", np.inf), ("sigma", np.nan),
    ("alpha", 0), ("alpha", 1), ("alpha", 1.5), ("alpha", np.nan),
    ("n_samples", 1), ("n_samples", 10.5), ("n_samples", 0),
    ("n_samples_selection", 0), ("n_samples_selection", None),
    ("vote", "majority"), ("vote", None),
    ("batch_size", 0), ("batch_size", "big"), ("batch_size", 2.5),
    ("random_state", "seed"), ("random_state", -1), ("random_state", 1.5),
    ("n_jobs", "many"), ("noise_augmentation", -1), ("verbose", "loud"),
    ("estimator", "svm"),
]
REGION_PARAMS = [
    ("method", "spherical"), ("method", None),
    ("search", "diagonal"), ("search", LogisticRegression()),
    ("n_iter", -1), ("n_iter", 2.5),
    ("n_samples_optim", 1), ("radius", -0.5),
]
#: parameters of the covariance search (``search=DiagonalSearch(...)``)
SEARCH_PARAMS = [
    ("objective", "area"),
    ("gradient", "finite"), ("gradient", "pathwise"),
    ("kappa", -1.0), ("kappa", "x"),
    ("max_probability", 0.5), ("max_probability", 1.0),
    ("scale_cap", "none"), ("floor", None), ("votes", "majority"),
    ("sigma_bounds", (2.0, 4.0)), ("sigma_bounds", (0.5,)), ("sigma_bounds", (0.0, 4.0)),
    ("sigma_bounds", (0.5, np.nan)), ("sigma_bounds", "wide"), ("sigma_bounds", (0.5, 0.9)),
    ("learning_rate", 0), ("learning_rate", -0.1),
]


def _bad_param_at_fit(c, kind, name, value):
    _est(kind).set_params(**{name: value}).fit(c.X, c.y)


def _bad_param_after_fit(c, kind, name, value):
    est = _est(kind).fit(c.X, c.y)
    est.set_params(**{name: value})
    est.certify(c.X[:3])


for kind, params in (("smoothed", BAD_PARAMS), ("region", BAD_PARAMS + REGION_PARAMS)):
    for name, value in params:
        exc = ValueError if name not in ("sigma_bounds", "search") else (ValueError, TypeError)
        case(f"{kind}-param-{name}={value!r}", exc, name)(
            lambda c, k=kind, n=name, v=value: _bad_param_at_fit(c, k, n, v))
for name, value in SEARCH_PARAMS:
    exc = ValueError if name != "sigma_bounds" else (ValueError, TypeError)
    case(f"region-search-{name}={value!r}", exc, name)(
        lambda c, n=name, v=value: _bad_param_at_fit(c, "region", "search", DiagonalSearch(**{n: v})))
for name, value in [("sigma", 0), ("alpha", 2), ("vote", "x"), ("batch_size", 0)]:
    case(f"smoothed-param-{name}={value!r}-set-after-fit", ValueError, name)(
        lambda c, n=name, v=value: _bad_param_after_fit(c, "smoothed", n, v))
for name, value in [("method", "x"), ("search__sigma_bounds", (3.0, 1.0)), ("n_iter", -2),
                    ("search__learning_rate", -1.0), ("search__objective", "area")]:
    case(f"region-param-{name}={value!r}-set-after-fit", ValueError, name.split("__")[-1])(
        lambda c, n=name, v=value: _bad_param_after_fit(c, "region", n, v))
case("soft-vote-without-predict-proba", ValueError, "predict_proba")(
    lambda c: SmoothedClassifier(SVC(), vote="soft", **FAST).fit(c.X, c.y))
case("sigma-square-overflows", ValueError, "sigma")(
    lambda c: SmoothedClassifier(LogisticRegression(), sigma=1e160, **FAST).fit(c.X, c.y)
    .certify(c.X[:2]))
case("sigma-square-underflows", ValueError, "sigma")(
    lambda c: CertifiedRegion(LogisticRegression(), sigma=1e-200, **REGION, guarantee="per-covariance").fit(c.X, c.y)
    .certify(c.X[:2]))

# -------------------------------------------------------------- covariances
case("rowcov-not-symmetric", ValueError, "symmetric")(
    lambda c: RowCovariances.from_matrices(np.array([[[1.0, 0.5], [0.0, 1.0]]])))
case("rowcov-not-positive-definite", ValueError, "positive definite")(
    lambda c: RowCovariances.from_matrices(np.array([np.diag([1.0, -1.0])])))
case("rowcov-singular", ValueError, "positive definite")(
    lambda c: RowCovariances.from_matrices(np.array([np.diag([1.0, 0.0])])))
case("rowcov-not-square", ValueError, "shape|square")(
    lambda c: RowCovariances.from_matrices(np.ones((2, 2, 3))))
case("rowcov-wrong-ndim", ValueError, "covariance")(
    lambda c: RowCovariances.create("full", np.ones((2, 2)), 2))
case("rowcov-wrong-features", ValueError, "features")(
    lambda c: RowCovariances.create("diagonal", np.ones((2, 3)), 2))
case("rowcov-nan", ValueError, "NaN")(
    lambda c: RowCovariances.isotropic([1.0, np.nan], 2))
case("rowcov-zero-variance", ValueError, "strictly positive")(
    lambda c: RowCovariances.isotropic([1.0, 0.0], 2))
case("rowcov-unknown-kind", ValueError, "kind")(
    lambda c: RowCovariances.create("spherical", np.ones(2), 2))
case("certificate-covariance-rows", ValueError, "covariance")(
    lambda c: _cert(c, covariance=RowCovariances.isotropic([1.0, 1.0, 1.0], 2)))
case("certificate-negative-radius", ValueError, "mahalanobis_radius")(
    lambda c: _cert(c, mahalanobis_radius=np.array([1.0, -1.0])))
case("certificate-prediction-shape", ValueError, "prediction")(
    lambda c: _cert(c, prediction=np.array([0, 1, 1])))
case("certificate-guarantee", ValueError, "guarantee")(
    lambda c: _cert(c, guarantee="certainly"))
case("certificate-contains-ball-negative", ValueError, "radius")(
    lambda c: c.cert.contains_ball(-1.0))
CERT_BUG = ("bug: Certificate.__init__ does not check {}; proposed: validate it and raise a "
            "ValueError/TypeError naming the parameter")
case("certificate-covariances-wrong-features", ValueError, "covariances|features")(
    lambda c: _cert(c, covariance=RowCovariances.isotropic([1.0, 1.0], 3)))
case("certificate-covariances-as-array", (TypeError, ValueError), "covariance")(
    lambda c: _cert(c, covariance=np.stack([np.eye(2), -np.eye(2)])))
case("certificate-alpha-out-of-range", ValueError, "alpha")(
    lambda c: _cert(c, alpha=2.0))
case("certificate-p-lower-out-of-range", ValueError, "p_lower")(
    lambda c: _cert(c, p_lower=np.array([0.9, 1.5])))
case("certificate-contains-points-wrong-dimension", ValueError, "points")(
    lambda c: c.cert.contains_points(np.zeros((6, 3))))
case("certificate-contains-ball-wrong-length", ValueError, "radius")(
    lambda c: c.cert.contains_ball(np.ones(4)))
case("certificate-contains-ball-nan", ValueError, "radius")(
    lambda c: c.cert.contains_ball(np.nan))

# ------------------------------------------------------------------ metrics
case("metric-length-mismatch", ValueError, "inconsistent numbers of samples")(
    lambda c: certified_accuracy(c.y[:5], c.cert, 0.1))
case("metric-negative-radius", ValueError, "radius")(
    lambda c: certified_accuracy(c.y[:6], c.cert, -0.1))
case("metric-infinite-radius", ValueError, "radius")(
    lambda c: certified_accuracy(c.y[:6], c.cert, np.inf))
case("metric-not-a-certificate", ValueError, "certificate")(
    lambda c: certified_accuracy(c.y[:6], "cert", 0.1))
case("metric-negative-weights", ValueError, "[Nn]egative|sample_weight")(
    lambda c: certified_accuracy(c.y[:6], c.cert, 0.1, sample_weight=-np.ones(6)))
case("metric-zero-weights", ValueError, "[Ss]ample.weight")(
    lambda c: certified_accuracy(c.y[:6], c.cert, 0.1, sample_weight=np.zeros(6)))
case("metric-curve-nan-radii", ValueError, "radii")(
    lambda c: certified_accuracy_curve(c.y[:6], c.cert, radii=[0.0, np.nan]))
case("metric-curve-empty-radii", ValueError, "radii")(
    lambda c: certified_accuracy_curve(c.y[:6], c.cert, radii=[]))
case("metric-curve-one-radius", ValueError, "radii")(
    lambda c: certified_accuracy_curve(c.y[:6], c.cert, radii=1))
case("metric-label-types-differ", ValueError, "same type")(
    lambda c: certified_accuracy(c.y[:6], _cert_strings(c), 0.1))
case("metric-2d-labels", ValueError, "shape|1d|column")(
    lambda c: certified_accuracy(np.zeros((6, 2)), c.cert, 0.1))
case("scorer-negative-radius", ValueError, "radius")(
    lambda c: make_certified_scorer(-1.0))
case("scorer-nan-radius", ValueError, "radius")(
    lambda c: make_certified_scorer(np.nan))

# ------------------------------------------------------------------- memory
case("memory-file-missing", FileNotFoundError, "nothing_here")(
    lambda c: CertificateMemory.load(c.dir / "nothing_here.npz"))
case("memory-file-random-bytes", ValueError, "Invalid certificate memory file")(
    lambda c: CertificateMemory.load(_bad_file(c, "junk.npz", bytes(range(256)) * 4)))
case("memory-file-truncated", ValueError, "Invalid certificate memory file")(
    lambda c: CertificateMemory.load(
        _bad_file(c, "truncated.npz", c.memory_file.read_bytes()[:200])))
case("memory-file-empty", ValueError, "Invalid certificate memory file")(
    lambda c: CertificateMemory.load(_bad_file(c, "empty.npz", b"")))
case("memory-file-missing-key", ValueError, "missing key")(
    lambda c: CertificateMemory.load(_npz_variant(c, "nokey", covariances=None)))
case("memory-file-object-array", ValueError, "Invalid certificate memory file")(
    lambda c: CertificateMemory.load(
        _npz_variant(c, "objects", centers=np.array([object()] * 2, dtype=object))))
case("memory-file-nan-center", ValueError, "NaN")(
    lambda c: CertificateMemory.load(_npz_variant(c, "nan", centers=_with_nan(c.memory.centers))))
case("memory-file-not-spd", ValueError, "positive definite")(
    lambda c: CertificateMemory.load(
        _npz_variant(c, "notspd", covariances=_not_spd(c.memory.covariances))))
case("memory-file-wrong-shape", ValueError, "shape")(
    lambda c: CertificateMemory.load(
        _npz_variant(c, "shape", mahalanobis_radii=np.ones(len(c.memory) + 1))))
case("memory-file-negative-radius", ValueError, "mahalanobis_radii")(
    lambda c: CertificateMemory.load(
        _npz_variant(c, "negr", mahalanobis_radii=-np.asarray(c.memory.mahalanobis_radii))))
case("memory-file-bad-label-code", ValueError, "label_codes")(
    lambda c: CertificateMemory.load(
        _npz_variant(c, "codes", label_codes=np.full(len(c.memory), 99))))
case("memory-file-intersecting-classes", ValueError, "intersect")(
    lambda c: CertificateMemory.load(
        _npz_variant(c, "overlap", classes=np.array([0, 1]), **_overlapping(c))))
case("memory-file-wrong-version", ValueError, "version")(
    lambda c: CertificateMemory.load(_npz_variant(c, "version", version=np.array(99))))
case("memory-file-foreign-zip", ValueError, "Invalid certificate memory file")(
    lambda c: CertificateMemory.load(_foreign_zip(c)))
case("memory-process-not-a-certificate", TypeError, "Certificate")(
    lambda c: CertificateMemory().process(c.X))
case("memory-process-wrong-dimension", ValueError, "dimensions|features")(
    lambda c: _fresh_memory(c).process(_cert(c, center=np.zeros((2, 3)),
                                             covariance=RowCovariances.isotropic([1.0, 1.0], 3))))
case("memory-add-not-spd", ValueError, "positive definite")(
    lambda c: CertificateMemory().add([0.0, 0.0], np.diag([1.0, -1.0]), 1.0, 0))
case("memory-add-zero-radius", ValueError, "radi")(
    lambda c: CertificateMemory().add([0.0, 0.0], np.eye(2), 0.0, 0))
case("memory-add-intersecting-class", ValueError, "intersects")(
    lambda c: CertificateMemory().add([0.0, 0.0], np.eye(2), 1.0, 0)
    .add([0.5, 0.0], np.eye(2), 1.0, 1))
case("memory-add-mixed-label-types", ValueError, "label")(
    lambda c: CertificateMemory().add([0.0, 0.0], np.eye(2), 1.0, "a")
    .add([5.0, 0.0], np.eye(2), 1.0, 1))
case("memory-margin", ValueError, "margin")(
    lambda c: CertificateMemory(margin=0.0))
case("memory-n-features", ValueError, "n_features")(
    lambda c: CertificateMemory(n_features=0))
case("memory-query-nan", ValueError, "NaN")(
    lambda c: c.memory.query(_with_nan(c.X[:2])))
case("memory-query-sparse", (TypeError, ValueError), "[Ss]parse|X")(
    lambda c: c.memory.query(sp.csr_matrix(c.X[:2])))
case("memory-query-wrong-features", ValueError, "features|dimensions")(
    lambda c: c.memory.query(np.zeros((2, 3))))


def _frozen_named(c):
    from sklearn.frozen import FrozenEstimator

    base = LogisticRegression().fit(c.frame, c.y)
    est = SmoothedClassifier(FrozenEstimator(base), n_samples=1000, batch_size=100, random_state=0)
    return est.fit(c.frame, c.y)


def _by_name(c, frozen):
    from sklearn.compose import ColumnTransformer
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(ColumnTransformer([("scale", StandardScaler(), ["u", "v"])]),
                         LogisticRegression())
    if frozen:
        pipe = FrozenEstimator(pipe.fit(c.frame, c.y))
    return SmoothedClassifier(pipe, **FAST).fit(c.frame, c.y)


def _skorch_smoothed(c):
    if not hasattr(c, "skorch_smoothed"):
        from nets import TanhMLP, classifier

        # 2 -> 8 -> 2 tanh, weights and biases 0.5 N(0, 1) from seed 0
        net = classifier(TanhMLP(hidden=8), criterion=torch.nn.CrossEntropyLoss, max_epochs=2)
        c.skorch_smoothed = SmoothedClassifier(net, **FAST).fit(c.X, c.y)
    return c.skorch_smoothed


for method in ("certify", "predict_proba"):
    case(f"skorch-{method}-n-features", ValueError, "3 features", marks=pytest.mark.torch)(
        lambda c, m=method: getattr(_skorch_smoothed(c), m)(np.zeros((2, 3))))
    case(f"skorch-{method}-nan", ValueError, "NaN", marks=pytest.mark.torch)(
        lambda c, m=method: getattr(_skorch_smoothed(c), m)(_with_nan(c.X[:2])))
case("skorch-pathwise-on-forest", ValueError, "gradient")(
    lambda c: CertifiedRegion(SVC(), search=RiemannianSearch(gradient="pathwise"), **REGION, guarantee="per-covariance")
    .fit(c.X, c.y))


def _cert_strings(c):
    cert = c.smoothed.certify(c.X[:6])
    cert.prediction = np.array(["zero", "one"])[np.asarray(cert.prediction)]
    return cert


def _fresh_memory(c):
    memory = CertificateMemory()
    memory.process(_cert(c))
    return memory


def _foreign_zip(c):
    path = c.dir / "foreign.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "not an array")
    return path


def _check_string_labels(est, c):
    labels = np.array(["cat", "dog"])[c.y]
    cert = est.fit(c.X, labels).certify(c.X[:4])
    assert set(cert.prediction.tolist()) <= {"cat", "dog"}
    assert certified_accuracy(labels[:4], cert, 0.0) >= 0.0


# ---------------------------------------------------------------------- CLI
def _nan_csv(c):
    return _bad_file(c, "nan.csv", "a,b\n0.1,0.2\nnan,0.3\n")


def _named_model(c):
    """The model fitted on the DataFrame with columns ``u``, ``v``, saved once."""
    import skops.io as sio

    path = c.dir / "named.skops"
    if not path.exists():
        sio.dump(c.named, path)
    return path


def _frame_csv(c, name, **to_csv):
    path = c.dir / name
    c.frame.iloc[:5].to_csv(path, **to_csv)
    return path


CLI_CASES = [
    ("cli-model-missing", lambda c: ("--model", c.dir / "none.skops", "--data", c.data_file),
     "model file not found"),
    ("cli-model-random-bytes", lambda c: ("--model", _bad_file(c, "m.skops", b"\x00garbage" * 50),
                                          "--data", c.data_file), "not a skops file"),
    ("cli-model-foreign-zip", lambda c: ("--model", _foreign_zip(c), "--data", c.data_file),
     "skops"),
    ("cli-model-pickle-without-flag", lambda c: ("--model", c.pickle_file, "--data", c.data_file),
     "unsafe-pickle"),
    ("cli-data-missing", lambda c: ("--model", c.model_file, "--data", c.dir / "none.npy"),
     "data file not found"),
    ("cli-data-nan", lambda c: ("--model", c.model_file, "--data", _nan_csv(c)), "NaN"),
    ("cli-data-wrong-features", lambda c: ("--model", c.model_file, "--data",
                                           _bad_file(c, "three.csv", "1,2,3\n4,5,6\n")),
     "features"),
    ("cli-data-non-numeric", lambda c: ("--model", c.model_file, "--data",
                                        _bad_file(c, "text.csv", "1,2\n3,x\n")), "non-numeric"),
    ("cli-data-empty", lambda c: ("--model", c.model_file, "--data",
                                  _bad_file(c, "empty.csv", "")), "no data rows"),
    ("cli-data-empty-cell", lambda c: ("--model", c.model_file, "--data",
                                       _bad_file(c, "gap.csv", "a,b\n1,2\n3,\n")),
     "line 3, column 'b': empty value"),
    ("cli-data-column-names", lambda c: ("--model", _named_model(c), "--data",
                                         _bad_file(c, "uw.csv", "u,w\n1,2\n3,4\n")),
     "missing: 'v'; extra: 'w'"),
    ("cli-data-pandas-index", lambda c: ("--model", _named_model(c), "--data",
                                         _frame_csv(c, "indexed.csv")), "index=False"),
    ("cli-data-pandas-index-unnamed-model", lambda c: ("--model", c.model_file, "--data",
                                                       _frame_csv(c, "indexed2.csv")),
     "index=False"),
    ("cli-data-ragged", lambda c: ("--model", c.model_file, "--data",
                                   _bad_file(c, "ragged.csv", "1,2\n3\n")), "columns"),
    ("cli-data-unknown-format", lambda c: ("--model", c.model_file, "--data",
                                           _bad_file(c, "data.xlsx", "1,2")), "format"),
    ("cli-data-object-npy", lambda c: ("--model", c.model_file, "--data", _object_npy(c)),
     "objects"),
    ("cli-labels-count", lambda c: ("--model", c.model_file, "--data", c.data_file, "--labels",
                                    _bad_file(c, "labels.csv", "0\n1\n")), "labels"),
    ("cli-labels-unknown-class", lambda c: ("--model", c.model_file, "--data", c.data_file,
                                            "--labels", _bad_file(c, "l2.csv", "0\n1\n7\n0\n1\n")),
     "classes"),
    ("cli-n-iter-on-smoothed", lambda c: ("--model", c.model_file, "--data", c.data_file,
                                          "--n-iter", 3), "n-iter"),
    ("cli-out-directory-missing", lambda c: ("--model", c.model_file, "--data", c.data_file,
                                             "--out", c.dir / "no" / "dir" / "x.csv"),
     "output directory"),
]
CLI_USAGE_CASES = [
    ("cli-alpha", ("--alpha", "2"), "--alpha"),
    ("cli-alpha-text", ("--alpha", "small"), "--alpha"),
    ("cli-sigma-negative", ("--sigma", "-1"), "--sigma"),
    ("cli-sigma-nan", ("--sigma", "nan"), "--sigma"),
    ("cli-n-samples-zero", ("--n-samples", "0"), "--n-samples"),
    ("cli-method", ("--method", "spherical"), "--method"),
    ("cli-seed-negative", ("--seed", "-3"), "--seed"),
]


def _object_npy(c):
    path = c.dir / "objects.npy"
    np.save(path, np.array([[1, "a"]], dtype=object), allow_pickle=True)
    return path


for cid, make_args, match in CLI_CASES:
    CASES.append(pytest.param(make_args, ("cli", 1), match, id=cid))
CLI_DEMO_CASES = [
    ("cli-demo-unknown-format", ("demo", "--out", "DIR/figure.unknownformat"), 1, "format"),
    ("cli-demo-missing-directory", ("demo", "--out", "DIR/no/such/dir/figure.png"), 1,
     "output directory"),
    ("cli-demo-n-points-zero", ("demo", "--n-points", "0"), 2, "--n-points"),
    ("cli-demo-seed-text", ("demo", "--seed", "abc"), 2, "--seed"),
]
for cid, argv, status, match in CLI_DEMO_CASES:
    CASES.append(pytest.param(
        lambda c, a=argv: tuple(str(x).replace("DIR", str(c.dir)) for x in a),
        ("cli", status), match, id=cid))
for cid, extra, match in CLI_USAGE_CASES:
    CASES.append(pytest.param(
        lambda c, e=extra: ("--model", c.model_file, "--data", c.data_file, *e),
        ("cli", 2), match, id=cid))


# --------------------------------------------------------------------- test
def _run_cli(ctx, args, status, match):
    args = tuple(args)
    has_out = "--out" in args
    for previous in (False, True):
        got, err, out_path = _cli(ctx, *args, out=not has_out, previous=previous)
        assert got == status, err
        assert err.strip(), "no error message"
        assert "Traceback" not in err
        last = err.strip().splitlines()[-1]  # argparse prints its usage first
        assert status == 2 or len(err.strip().splitlines()) == 1, err
        assert last.startswith("smoothcert"), err
        assert any(s in last for s in match.split("|")), err
        for name in FORBIDDEN_NAMES:
            assert name not in err, err
        if previous and out_path.parent.is_dir():
            assert out_path.read_text() == PREVIOUS  # untouched
            out_path.unlink()
        else:
            assert not out_path.exists()
    # no temporary files left behind
    assert not [p for p in ctx.dir.iterdir() if p.name.endswith(".tmp")]


FORBIDDEN_NAMES = ("IndexError", "LinAlgError", "KeyError", "AttributeError")


@pytest.mark.parametrize("action, expected, match", CASES)
def test_bad_input(ctx, action, expected, match):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if isinstance(expected, tuple) and expected[0] == "cli":
            _run_cli(ctx, action(ctx), expected[1], match)
        elif isinstance(expected, tuple) and expected[0] == "warns":
            action(ctx)
            relevant = [w for w in caught if issubclass(w.category, expected[1])
                        and any(s in str(w.message) for s in expected[2].split("|"))]
            assert relevant, [str(w.message) for w in caught]
        elif expected == "works":
            action(ctx)
        else:
            with pytest.raises(expected, match=match) as info:
                action(ctx)
            # (NotFittedError is documented, although it subclasses AttributeError)
            if not isinstance(info.value, NotFittedError):
                assert not isinstance(info.value, FORBIDDEN), repr(info.value)
            if torch is not None:
                assert "torch" not in type(info.value).__module__
    # one warning per problem at most (sklearn may warn once per call); never a storm
    messages = [f"{w.category.__name__}: {w.message}" for w in caught
                if not issubclass(w.category, (ImportWarning, DeprecationWarning,
                                               PendingDeprecationWarning))]
    assert len(messages) <= 2, messages


# ------------------------------------------------------------- small traps
@pytest.mark.parametrize("cls", [SmoothedClassifier, CertifiedRegion])
def test_nan_inputs_get_smoothcerts_own_message(cls):
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = (X[:, 0] > 0).astype(int)
    bad = X.copy()
    bad[4, 2] = np.nan
    est = cls(HistGradientBoostingClassifier(max_iter=3), n_samples=50, random_state=0)
    with pytest.raises(ValueError, match=r"X contains NaN .* at row 4, column 2") as info:
        est.fit(bad, y)
    assert "HistGradientBoosting" not in str(info.value)
    est.fit(X, y)
    for method in ("predict", "certify", "predict_proba"):
        with pytest.raises(ValueError, match=r"X contains NaN .*Impute") as info:
            getattr(est, method)(bad)
        assert "HistGradientBoosting" not in str(info.value)
    bad[4, 2] = np.inf
    with pytest.raises(ValueError, match="X contains infinity at row 4, column 2"):
        est.certify(bad)


def test_warns_when_alpha_and_n_samples_make_every_certificate_impossible():
    from smoothcert.exceptions import NoCertificateWarning

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2))
    y = (X[:, 0] > 0).astype(int)
    with pytest.warns(NoCertificateWarning, match=r"n_samples=2, no input .*n_samples >= 10"):
        est = SmoothedClassifier(LogisticRegression(), n_samples=2, random_state=0).fit(X, y)
    with pytest.warns(NoCertificateWarning):
        assert est.certify(X).abstained.all()
    # alpha ** (1 / 10) = 0.501: certificates become possible at 10 draws
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoCertificateWarning)
        SmoothedClassifier(LogisticRegression(), n_samples=10, random_state=0).fit(X, y)
    with pytest.warns(NoCertificateWarning, match="soft votes"):
        SmoothedClassifier(LogisticRegression(), n_samples=10, vote="soft").fit(X, y)
    with pytest.warns(NoCertificateWarning):
        CertifiedRegion(LogisticRegression(), n_samples=9, n_iter=1, guarantee="per-covariance").fit(X, y)
