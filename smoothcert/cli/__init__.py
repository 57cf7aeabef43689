"""The ``smoothcert`` command line: ``smoothcert demo`` and ``smoothcert certify``.

``smoothcert demo`` runs the comparison of fixed, isotropic (DDRS), diagonal
(ANCER) and Riemannian noise on an embedded two-moons data set, prints the
table and writes the figure.

``smoothcert certify`` certifies the rows of a ``.csv`` or ``.npy`` file with a
saved model and writes one row of results per input. Models are read with
skops (safe loading: only trusted types are built); pickle/joblib files, which
execute arbitrary code when loaded, need ``--unsafe-pickle``.

Every output file is written atomically (a temporary file in the same
directory, then :func:`os.replace`), so an interrupted run leaves no partial
file. Errors print one line to stderr and return a non-zero exit status
(``--debug`` shows the traceback).
"""

import argparse
import csv
import importlib
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["main"]

PROG = "smoothcert"
METHODS = ("fixed", "isotropic", "diagonal", "riemannian")
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

#: Classes of scikit-learn that skops does not trust by default but that are
#: plain data holders built without running code (the optimizers an
#: MLPClassifier keeps after fit).
EXTRA_TRUSTED_TYPES = frozenset(
    {
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    }
)


class CLIError(Exception):
    """An error reported to the user as one line, without a traceback."""


# --------------------------------------------------------------------- helpers
def _number(cast, what, accept):
    """An argparse ``type`` parsing ``cast(text)`` and checking ``accept(value)``."""

    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (np.isfinite(value) and accept(value)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, "a positive integer", lambda v: v >= 1)
_non_negative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
_positive_float = _number(float, "a positive number", lambda v: v > 0)
_non_negative_float = _number(float, "a finite number >= 0", lambda v: v >= 0)
_probability = _number(float, "a number in (0, 1)", lambda v: 0 < v < 1)


def _atomic_write(path, write):
    """Write ``path`` through ``write(tmp_path)`` then :func:`os.replace`."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise CLIError(f"output directory does not exist: {directory}")
    if path.is_dir():
        raise CLIError(f"output path is a directory: {path}")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _progress_enabled(quiet):
    if quiet:
        return 0
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return 0
    return 1


# ------------------------------------------------------------------------ data
def _parse_csv(path):
    """Non-empty rows of a CSV (comma) or TSV (tab) file as ``(line, fields)``."""
    delimiter = "\t" if Path(path).suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [
                (i + 1, [field.strip() for field in row])
                for i, row in enumerate(csv.reader(handle, delimiter=delimiter))
                if any(field.strip() for field in row)
            ]
    except UnicodeDecodeError:
        raise CLIError(f"{path} is not a text CSV file.") from None
    except (OSError, csv.Error) as exc:
        raise CLIError(f"cannot read {path}: {exc}") from None
    return rows


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_matrix(path, what="data"):
    """A 2-D float64 array from a ``.csv`` (numeric, optional header) or ``.npy`` file.

    Parameters
    ----------
    path : str or Path
        The file.
    what : str, default="data"
        Name used in error messages.

    Returns
    -------
    X : ndarray of shape (n_rows, n_columns)

    Raises
    ------
    CLIError
        Missing file, unknown format, non-numeric or non-finite values, not 2-D.
    """
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        X = _load_npy(path, what)
    elif suffix in (".csv", ".tsv"):
        rows = _parse_csv(path)
        if rows and not all(_is_number(v) for v in rows[0][1]):
            rows = rows[1:]  # a header
        if not rows:
            raise CLIError(f"{what} file {path} has no data rows.")
        width = len(rows[0][1])
        values = []
        for line, row in rows:
            if len(row) != width:
                raise CLIError(
                    f"{path}, line {line}: {len(row)} columns where the first row has {width}."
                )
            try:
                values.append([float(v) for v in row])
            except ValueError:
                bad = next(v for v in row if not _is_number(v))
                raise CLIError(f"{path}, line {line}: non-numeric value {bad!r}.") from None
        X = np.asarray(values, dtype=np.float64)
    else:
        raise CLIError(f"unsupported {what} format {suffix or '(none)'!r} for {path}: use .csv, .tsv or .npy.")
    if X.ndim == 1:
        raise CLIError(f"{what} in {path} is 1-D; expected a 2-D array (rows x features).")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise CLIError(f"{what} in {path} has shape {X.shape}; expected a non-empty 2-D array.")
    if not np.all(np.isfinite(X)):
        raise CLIError(f"{what} in {path} contains NaN or infinite values.")
    return X


def _load_npy(path, what):
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise CLIError(
                f"{path} holds Python objects, which would need unpickling; "
                f"save the {what} as a numeric array."
            ) from None
        raise CLIError(f"{path} is not a valid .npy file: {exc}") from None
    except (OSError, EOFError) as exc:
        raise CLIError(f"cannot read {path}: {exc}") from None
    if what == "data":
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
            raise CLIError(f"{what} in {path} must be real numbers, got dtype {array.dtype}.")
        return array.astype(np.float64)
    return array


def _load_labels(path, classes, n_rows):
    """Labels from a ``.csv`` (one column, optional header) or ``.npy`` file, as ``classes``.

    Parameters
    ----------
    path : str or Path
        The file.
    classes : ndarray
        Classes of the model; every label must be one of them.
    n_rows : int
        Expected number of labels.

    Returns
    -------
    y : ndarray of shape (n_rows,)
        Labels with the dtype of ``classes``.
    """
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"labels file not found: {path}")
    classes = np.asarray(classes)
    by_text = {str(c): c for c in classes}
    by_value = {}
    if np.issubdtype(classes.dtype, np.number):
        by_value = {float(c): c for c in classes}

    def lookup(value):
        if isinstance(value, str):
            if value in by_text:
                return by_text[value]
            if by_value and _is_number(value) and float(value) in by_value:
                return by_value[float(value)]
            return None
        if by_value and isinstance(value, (int, float, np.number)) and float(value) in by_value:
            return by_value[float(value)]
        return by_text.get(str(value))

    suffix = path.suffix.lower()
    if suffix == ".npy":
        raw = _load_npy(path, "labels")
        if raw.ndim == 2 and raw.shape[1] == 1:
            raw = raw[:, 0]
        if raw.ndim != 1:
            raise CLIError(f"labels in {path} must be 1-D, got shape {raw.shape}.")
        values = [v.item() if hasattr(v, "item") else v for v in raw]
        start = 0
    elif suffix in (".csv", ".tsv"):
        rows = _parse_csv(path)
        if any(len(row) != 1 for _, row in rows):
            raise CLIError(f"labels file {path} must have exactly one column.")
        values = [row[0] for _, row in rows]
        # a header: one extra first value that is not a class
        start = 1 if len(values) == n_rows + 1 and lookup(values[0]) is None else 0
    else:
        raise CLIError(f"unsupported labels format {suffix or '(none)'!r} for {path}: use .csv, .tsv or .npy.")
    values = values[start:]
    if len(values) != n_rows:
        raise CLIError(f"labels file {path} has {len(values)} labels for {n_rows} data rows.")
    y = [lookup(v) for v in values]
    unknown = sorted({str(v) for v, m in zip(values, y) if m is None})
    if unknown:
        raise CLIError(
            f"labels in {path} not among the model's classes {classes.tolist()}: {unknown[:5]}"
        )
    return np.asarray(y, dtype=classes.dtype)


# ----------------------------------------------------------------------- model
def _is_smoothcert_estimator(type_name):
    """Whether ``type_name`` names an estimator class defined in this package."""
    if not type_name.startswith("smoothcert."):
        return False
    module_name, _, class_name = type_name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    from sklearn.base import BaseEstimator

    obj = getattr(module, class_name, None)
    # Only estimators *defined* in smoothcert (not names it imports from elsewhere).
    return (
        isinstance(obj, type)
        and obj.__module__ == module_name
        and obj.__qualname__ == class_name
        and issubclass(obj, BaseEstimator)
    )


def _load_model(path, *, trust=False, unsafe_pickle=False):
    """Load a fitted model from a skops file (or, explicitly, a pickle/joblib file).

    Parameters
    ----------
    path : str or Path
        The model file.
    trust : bool, default=False
        Also build the types of the skops file that are not trusted by
        default (skops' defaults, smoothcert's estimators and a few plain
        scikit-learn classes are).
    unsafe_pickle : bool, default=False
        Load with joblib (pickle), which executes arbitrary code.

    Returns
    -------
    model : object
    """
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"model file not found: {path}")
    if unsafe_pickle:
        import joblib

        try:
            return joblib.load(path)
        except Exception as exc:  # any unpickling failure
            raise CLIError(f"cannot load {path} with joblib/pickle: {exc}") from None
    if not zipfile.is_zipfile(path):
        raise CLIError(
            f"{path} is not a skops file. Save models with skops.io.dump; to load a "
            "pickle/joblib file you fully trust, pass --unsafe-pickle (unpickling "
            "executes arbitrary code)."
        )
    try:
        import skops.io as sio
    except ImportError:
        raise CLIError("reading skops files requires skops: pip install skops") from None
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a corrupt or foreign zip archive
        raise CLIError(f"{path} is not a valid skops file: {exc}") from None
    unknown = [
        t for t in untrusted if t not in EXTRA_TRUSTED_TYPES and not _is_smoothcert_estimator(t)
    ]
    if unknown and not trust:
        raise CLIError(
            f"{path} contains types that are not trusted by default: {', '.join(unknown)}. "
            "Inspect them (skops.io.get_untrusted_types) and pass --trust to load them."
        )
    try:
        return sio.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise CLIError(f"cannot load {path}: {exc}") from None


def _n_features(model):
    return getattr(model, "n_features_in_", None)


def _copy_fitted_state(source, target):
    params = set(source.get_params(deep=False))
    for key, value in vars(source).items():
        if key not in params:
            setattr(target, key, value)
    return target


def _configure_smoother(smoother, method, params):
    """Apply --method and the numeric options to a fitted smoothing estimator."""
    from .._estimators._region import CertifiedRegion
    from .._estimators._smoothed import SmoothedClassifier

    if method is not None:
        if isinstance(smoother, CertifiedRegion):
            smoother.set_params(method=method)
        elif isinstance(smoother, SmoothedClassifier):
            if method != "fixed":
                shared = {
                    k: v
                    for k, v in smoother.get_params(deep=False).items()
                    if k in CertifiedRegion().get_params(deep=False)
                }
                smoother = _copy_fitted_state(
                    smoother, CertifiedRegion(**shared, method=method)
                )
        elif "method" in smoother.get_params(deep=False):
            smoother.set_params(method=method)
        else:
            raise CLIError(f"--method cannot be set on a {type(smoother).__name__}.")
    available = smoother.get_params(deep=False)
    for key, value in params.items():
        if value is None:
            continue
        if key not in available:
            raise CLIError(
                f"--{key.replace('_', '-')} does not apply to a {type(smoother).__name__}"
                + (" (use --method isotropic, diagonal or riemannian)" if key == "n_iter" else "")
                + "."
            )
        smoother.set_params(**{key: value})
    return smoother


def _build_certifier(model, X, method, params):
    """A fitted estimator that :func:`smoothcert.certify` accepts, for ``model``."""
    from sklearn.base import is_classifier
    from sklearn.exceptions import NotFittedError
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    from .._estimators._region import CertifiedRegion
    from .._estimators._smoothed import SmoothedClassifier

    expected = _n_features(model)
    if expected is not None and expected != X.shape[1]:
        raise CLIError(f"the data has {X.shape[1]} features but the model expects {expected}.")
    if isinstance(model, Pipeline) and hasattr(model.steps[-1][1], "certify"):
        name, last = model.steps[-1]
        model.steps[-1] = (name, _configure_smoother(last, method, params))
        return model
    if hasattr(model, "certify"):
        return _configure_smoother(model, method, params)
    if not (is_classifier(model) or (hasattr(model, "predict") and hasattr(model, "classes_"))):
        raise CLIError(
            f"the model ({type(model).__name__}) is neither a smoothing estimator nor a classifier."
        )
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise CLIError(f"the model ({type(model).__name__}) is not fitted.") from None
    method = method or "fixed"
    frozen = FrozenEstimator(model)
    if method == "fixed":
        smoother = SmoothedClassifier(frozen)
    else:
        smoother = CertifiedRegion(frozen, method=method)
    smoother = _configure_smoother(smoother, None, params)
    classes = np.asarray(model.classes_)
    # A frozen base model is not trained again: fit only records classes and shape.
    return smoother.fit(X[:1], classes[:1])


# -------------------------------------------------------------------- commands
def _format_table(table):
    try:
        return table.to_string(float_format=lambda v: f"{v:.2f}")
    except AttributeError:
        keys = list(table)
        widths = [max(len(k), 8) for k in keys]
        lines = ["  ".join(k.rjust(w) for k, w in zip(keys, widths))]
        for i in range(len(table[keys[0]])):
            cells = []
            for k, w in zip(keys, widths):
                v = table[k][i]
                cells.append((f"{v:.2f}" if isinstance(v, float) else str(v)).rjust(w))
            lines.append("  ".join(cells))
        return "\n".join(lines)


def _cmd_demo(args):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CLIError("smoothcert demo needs matplotlib: pip install matplotlib") from None
    from ..demo import plot_comparison, run_demo

    out = Path(args.out)
    fmt = out.suffix.lower().lstrip(".") or "png"
    fig = Figure(figsize=(15, 8), layout="constrained")
    if fmt not in fig.canvas.get_supported_filetypes():
        raise CLIError(f"unsupported figure format {fmt!r} for {out}.")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise CLIError(f"output directory does not exist: {out.parent}")
    try:
        import pandas  # noqa: F401

        as_frame = True
    except ImportError:
        as_frame = False
    result = run_demo(
        full=args.full,
        seed=args.seed,
        n_samples=args.n_samples,
        n_iter=args.n_iter,
        n_points=args.n_points,
        verbose=_progress_enabled(args.quiet),
        as_frame=as_frame,
    )
    s = result["settings"]
    print(
        f"Two moons, {s['n_points']} test inputs, alpha = 0.001, N = {s['n_samples']:,} "
        f"certification draws, {s['n_iter']} iterations per search stage.\n"
        "Percentage of inputs x whose ball B2(x, R) lies in the certified region, "
        "certified accuracy, and log-volume of the regions:\n"
    )
    print(_format_table(result["table"]))
    plot_comparison(result["certificates"], result["y"], estimator=result["estimator"], fig=fig)
    _atomic_write(out, lambda tmp: fig.savefig(tmp, format=fmt, dpi=args.dpi))
    print(f"\nwrote {out}")
    if args.table_out:
        table = result["table"]
        if as_frame:
            _atomic_write(args.table_out, lambda tmp: table.to_csv(tmp))
        else:
            def write(tmp):
                with open(tmp, "w", newline="") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(list(table))
                    writer.writerows(zip(*table.values()))

            _atomic_write(args.table_out, write)
        print(f"wrote {args.table_out}")
    return 0


def _write_certificates(path, cert, labels):
    rows = cert._columns()
    if labels is not None:
        rows["label"] = labels
        rows["correct"] = cert.certified & (cert.prediction == labels)

    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["row", *rows])
            columns = [np.asarray(v) for v in rows.values()]
            for i in range(len(cert)):
                writer.writerow([i, *(_cell(col[i]) for col in columns)])

    _atomic_write(path, write)


def _cell(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return str(value.item() if hasattr(value, "item") else value)


def _cmd_certify(args):
    from .._certify._pullback import certify
    from ..metrics import certificate_summary, certified_accuracy

    out = Path(args.out)
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise CLIError(f"output directory does not exist: {out.parent}")
    X = _load_matrix(args.data, "data")
    model = _load_model(args.model, trust=args.trust, unsafe_pickle=args.unsafe_pickle)
    params = {
        "sigma": args.sigma,
        "n_samples": args.n_samples,
        "n_samples_selection": args.n_samples_selection,
        "alpha": args.alpha,
        "n_iter": args.n_iter,
        "random_state": args.seed,
        "n_jobs": args.n_jobs,
        "verbose": _progress_enabled(args.quiet),
    }
    estimator = _build_certifier(model, X, args.method, params)
    classes = np.asarray(estimator.classes_)
    labels = _load_labels(args.labels, classes, X.shape[0]) if args.labels else None
    with warnings.catch_warnings():
        # The engine passes arrays; a base model fitted on named columns warns on each call.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        warnings.filterwarnings("ignore", message="X has feature names")
        cert = certify(estimator, X)
    _write_certificates(out, cert, labels)
    summary = certificate_summary(cert, labels)
    n, k = summary["n_inputs"], summary["n_certified"]
    print(
        f"certified {k}/{n} inputs ({n - k} abstained); mean certified radius "
        f"{summary['mean_radius']:.4g}, median {summary['median_radius']:.4g}"
    )
    if labels is not None:
        line = f"certified accuracy: {summary['certified_accuracy']:.4f} at R=0"
        if args.radius:
            acc = certified_accuracy(labels, cert, args.radius)
            line += f", {acc:.4f} at R={args.radius:g}"
        print(line)
    print(f"wrote {out}")
    return 0


# ---------------------------------------------------------------------- parser
def build_parser():
    """The argument parser of the ``smoothcert`` command.

    Returns
    -------
    parser : argparse.ArgumentParser

    Examples
    --------
    >>> from smoothcert.cli import build_parser
    >>> build_parser().parse_args(["demo", "--full"]).full
    True
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Certified robustness by randomized smoothing for scikit-learn and skorch "
            "classifiers."
        ),
        epilog=f"Run '{PROG} COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of errors")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="compare fixed, isotropic, diagonal and Riemannian noise on two moons",
        description=(
            "Certify the same two-moons test inputs with fixed noise (RS, Cohen et al.), "
            "isotropic data-dependent noise (DDRS), diagonal noise (ANCER) and full SPD "
            "noise optimized on the Fisher-Rao manifold (Riemannian), with alpha=0.001. "
            "Prints, for a range of radii R, the percentage of inputs x whose ball "
            "B2(x, R) lies in the certified region, and the mean and median log-volume "
            "of the regions; writes the figure. The default settings are small "
            "(10,000 certification draws, 30 iterations, 80 inputs: well under a "
            "minute on 2 cores); --full uses those of the talk (100,000 draws, 100 "
            "iterations, 100 inputs: several minutes)."
        ),
    )
    demo.add_argument("--full", action="store_true", help="the settings of the talk (slow)")
    demo.add_argument(
        "--out", default="smoothcert_demo.png", metavar="FIG",
        help="figure file; the format follows the extension (default: %(default)s)",
    )
    demo.add_argument(
        "--table-out", metavar="CSV", default=None, help="also write the table as CSV"
    )
    demo.add_argument(
        "--seed", type=_non_negative_int, default=0,
        help="seed of the data, the base model and the draws (default: %(default)s)",
    )
    demo.add_argument(
        "--n-samples", type=_positive_int, default=None, metavar="N",
        help="certification draws per input (overrides the default/--full setting)",
    )
    demo.add_argument(
        "--n-iter", type=_non_negative_int, default=None, metavar="K",
        help="optimization iterations per search stage (overrides the setting)",
    )
    demo.add_argument(
        "--n-points", type=_positive_int, default=None, metavar="M",
        help="number of test inputs to certify (overrides the setting)",
    )
    demo.add_argument(
        "--dpi", type=_positive_int, default=100, help="resolution of the figure (default: %(default)s)"
    )
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_cmd_demo)

    cert = sub.add_parser(
        "certify",
        help="certify the rows of a data file with a saved model",
        description=(
            "Certify every row of DATA with a saved model and write one CSV row per "
            "input (prediction, abstained, radius = largest certified l2 ball, "
            "mahalanobis_radius, p_lower, log_volume, proxy_radius, min_sigma, "
            "max_sigma, and label/correct with --labels). The model is either a fitted "
            "SmoothedClassifier / CertifiedRegion (or a Pipeline ending in one; its "
            "certificate is expressed in raw input space), used with its own settings "
            "unless options override them, or a plain fitted scikit-learn classifier, "
            "which is smoothed as is (FrozenEstimator) with --method."
        ),
        epilog=(
            "Model files are read with skops; types outside skops' trusted defaults "
            "and smoothcert's estimators are refused unless --trust is given. "
            "Pickle/joblib files need --unsafe-pickle. The output is written "
            "atomically."
        ),
    )
    cert.add_argument("--model", required=True, metavar="MODEL", help="model file (.skops)")
    cert.add_argument(
        "--data", required=True, metavar="DATA",
        help="inputs: .csv (numeric, optional header row) or .npy (2-D numeric array)",
    )
    cert.add_argument("--out", required=True, metavar="CSV", help="output CSV file")
    cert.add_argument(
        "--method", choices=METHODS, default=None,
        help="noise: fixed (RS), isotropic (DDRS), diagonal (ANCER) or riemannian "
        "(full SPD). Default: the model's own, or fixed for a plain classifier",
    )
    cert.add_argument("--sigma", type=_positive_float, default=None, help="noise level (start of the search)")
    cert.add_argument(
        "--n-samples", type=_positive_int, default=None, metavar="N",
        help="certification draws per input (default: the model's, 100,000 for a plain classifier)",
    )
    cert.add_argument(
        "--n-samples-selection", type=_positive_int, default=None, metavar="N0",
        help="draws selecting the top class before certification",
    )
    cert.add_argument(
        "--n-iter", type=_non_negative_int, default=None, metavar="K",
        help="optimization iterations per search stage (data-dependent methods)",
    )
    cert.add_argument("--alpha", type=_probability, default=None, help="failure probability of each certificate")
    cert.add_argument("--seed", type=_non_negative_int, default=None, help="seed of the draws")
    cert.add_argument("--n-jobs", type=int, default=None, help="joblib workers")
    cert.add_argument(
        "--labels", default=None, metavar="LABELS",
        help="true labels (.csv with one column and optional header, or .npy): adds "
        "label/correct columns and reports the certified accuracy",
    )
    cert.add_argument(
        "--radius", type=_non_negative_float, default=0.0,
        help="also report the certified accuracy at this l2 radius (with --labels)",
    )
    cert.add_argument(
        "--trust", action="store_true",
        help="load the types of the skops file that are not trusted by default "
        "(inspect them first: the error message lists them)",
    )
    cert.add_argument(
        "--unsafe-pickle", action="store_true",
        help="load MODEL with joblib/pickle instead of skops. WARNING: unpickling "
        "executes arbitrary code; use only with files you created or fully trust",
    )
    cert.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    cert.set_defaults(func=_cmd_certify)
    return parser


def _version():
    from .. import __version__

    return __version__


def main(argv=None):
    """Entry point of the ``smoothcert`` command.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name (``sys.argv[1:]`` when ``None``).

    Returns
    -------
    status : int
        0 on success, 1 on errors, 2 on usage errors, 130 when interrupted.

    Examples
    --------
    >>> from smoothcert.cli import main
    >>> main(["--version"])  # doctest: +ELLIPSIS
    smoothcert ...
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CLIError as exc:
        if args.debug:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # clear message, no traceback, for any failure
        if args.debug:
            raise
        print(f"{PROG}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
