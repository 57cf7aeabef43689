"""The argument parser of the ``smoothcert`` command.

:func:`build_parser` builds it without importing the commands, so that the
documentation (sphinx-argparse) and ``--help`` stay cheap. The chosen command
is ``args.command``; :func:`smoothcert.cli.main` dispatches on it.
"""

import argparse
import math

PROG = "smoothcert"
METHODS = ("fixed", "isotropic", "diagonal", "riemannian")


def _number(cast, what, accept):
    """An argparse ``type`` parsing ``cast(text)`` and checking ``accept(value)``."""

    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (isinstance(value, float) and not math.isfinite(value)) or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, "a positive integer", lambda v: v >= 1)
_non_negative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
_positive_float = _number(float, "a positive number", lambda v: v > 0)
_non_negative_float = _number(float, "a finite number >= 0", lambda v: v >= 0)
_probability = _number(float, "a number in (0, 1)", lambda v: 0 < v < 1)


#: The options of both commands: flag -> (type, metavar, help; each command adds a note).
_SHARED_OPTIONS = {
    "--n-samples": (_positive_int, "N", "certification draws per input"),
    "--n-iter": (_non_negative_int, "K", "optimization iterations per search stage"),
}


def _add_shared(parser, flag, note):
    """Add the option ``flag`` of :data:`_SHARED_OPTIONS`, ``note`` ending its help in brackets."""
    cast, metavar, text = _SHARED_OPTIONS[flag]
    parser.add_argument(flag, type=cast, default=None, metavar=metavar, help=f"{text} ({note})")


def _version():
    from importlib import metadata

    try:
        return metadata.version("smoothcert")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0+unknown"


def build_parser():
    """The argument parser of the ``smoothcert`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        Its subcommands ``demo`` and ``certify`` store their name in
        ``args.command``.

    Examples
    --------
    >>> from smoothcert.cli._parser import build_parser
    >>> args = build_parser().parse_args(["demo", "--full"])
    >>> args.command, args.full
    ('demo', True)
    >>> build_parser().parse_args(["certify", "--model", "m.skops", "--data", "X.csv",
    ...                            "--out", "out.csv", "--radius", "0.5"]).radius
    0.5
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_demo(sub)
    _add_certify(sub)
    return parser


def _add_demo(sub):
    demo = sub.add_parser(
        "demo",
        help="compare fixed, isotropic, diagonal and Riemannian noise on two moons",
        description=(
            "Certify the same two-moons test inputs with fixed noise (RS, Cohen et al.), "
            "isotropic data-dependent noise (DDRS), diagonal noise (ANCER) and full SPD "
            "noise optimized on the Fisher-Rao manifold (Riemannian), with alpha=0.001. "
            "Prints, for a range of radii R, the percentage of inputs x whose ball "
            "B2(x, R) lies in the certified region, and the mean and median log-volume "
            "of the regions; writes the figure and prints its caption. The default settings are small "
            "(10,000 certification draws, 30 iterations, 80 inputs: well under a "
            "minute on 2 cores); --full uses those of the talk (100,000 draws, 100 "
            "iterations, 100 inputs: several minutes)."
        ),
    )
    demo.add_argument("--full", action="store_true", help="the settings of the talk (slow)")
    demo.add_argument(
        "--out", default="smoothcert_demo.png", metavar="FIG",
        help="figure file; the format follows the extension: .png, .pdf, .svg (vector, "
        "for papers) or any other matplotlib format (default: %(default)s)",
    )
    demo.add_argument(
        "--table-out", metavar="CSV", default=None, help="also write the table as CSV"
    )
    demo.add_argument(
        "--seed", type=_non_negative_int, default=0,
        help="seed of the data, the base model and the draws (default: %(default)s)",
    )
    _add_shared(demo, "--n-samples", "overrides the default/--full setting")
    _add_shared(demo, "--n-iter", "overrides the setting")
    demo.add_argument(
        "--n-points", type=_positive_int, default=None, metavar="M",
        help="number of test inputs to certify (overrides the setting)",
    )
    demo.add_argument(
        "--dpi", type=_positive_int, default=100,
        help="resolution of the figure (default: %(default)s)",
    )
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _add_certify(sub):
    cert = sub.add_parser(
        "certify",
        help="certify the rows of a data file with a saved model",
        description=(
            "Certify every row of DATA with a saved model and write one CSV row per "
            "input (prediction, abstained, radius = largest certified l2 ball, "
            "mahalanobis_radius, p_lower, log_volume, proxy_radius, min_sigma, "
            "max_sigma, guarantee = the classifier the radii hold for, and "
            "label/correct with --labels). The model is either a fitted "
            "SmoothedClassifier / CertifiedRegion (or a Pipeline ending in one; its "
            "certificate is expressed in raw input space), used with its own settings "
            "unless options override them, or a plain fitted scikit-learn classifier, "
            "which is smoothed as is (FrozenEstimator) with --method. When the model "
            "was fitted on named columns (a DataFrame), the columns of a CSV with a "
            "header are matched to them by name; a file without names must have the "
            "columns in the model's order."
        ),
        epilog=(
            "Model files are read with skops; types outside skops' trusted defaults "
            "and smoothcert's estimators (with their covariances) are refused unless "
            "--trust is given. "
            "Pickle/joblib files need --unsafe-pickle. The output is written chunk "
            "by chunk as rows are certified (the first chunk replaces an existing "
            "file atomically, the next ones are appended whole), so an interrupted "
            "run leaves a valid CSV of the rows done; --resume continues it."
        ),
    )
    cert.add_argument("--model", required=True, metavar="MODEL", help="model file (.skops)")
    cert.add_argument(
        "--data", required=True, metavar="DATA",
        help="inputs: .csv/.tsv (numeric, optional header row of column names) or .npy "
        "(2-D numeric array)",
    )
    cert.add_argument("--out", required=True, metavar="CSV", help="output CSV file")
    cert.add_argument(
        "--method", choices=METHODS, default=None,
        help="noise: fixed (RS), isotropic (DDRS), diagonal (ANCER) or riemannian "
        "(full SPD). Default: the model's own, or fixed for a plain classifier",
    )
    cert.add_argument(
        "--train-data", default=None, metavar="TRAIN",
        help="training inputs (same formats and columns as DATA; no labels needed): with "
        "--method isotropic, diagonal or riemannian, the covariance family of the classifier "
        "CertifiedRegion deploys is fitted on them, and the certificates hold for that "
        "classifier (guarantee 'deployed'). Without it, such a --method certifies each input "
        "with its own searched covariance (guarantee 'per-covariance'), which does not cover "
        "the deployed classifier",
    )
    cert.add_argument(
        "--noise-features", default=None, metavar="COLUMNS",
        help="comma-separated columns that receive noise, by name (the model's feature "
        "names, or the header of DATA) or by index from 0 in the model's column order; "
        "the other columns stay fixed in every draw and the certificates cover "
        "perturbations of these columns only. For a pipeline: columns of its last step's "
        "input. Default: the model's own setting (every column for a plain classifier)",
    )
    cert.add_argument(
        "--sigma", type=_positive_float, default=None, help="noise level (start of the search)"
    )
    _add_shared(cert, "--n-samples", "default: the model's, 100,000 for a plain classifier")
    cert.add_argument(
        "--n-samples-selection", type=_positive_int, default=None, metavar="N0",
        help="draws selecting the top class before certification",
    )
    _add_shared(cert, "--n-iter", "data-dependent methods")
    cert.add_argument(
        "--alpha", type=_probability, default=None,
        help="failure probability of each certificate",
    )
    cert.add_argument("--seed", type=_non_negative_int, default=None, help="seed of the draws")
    cert.add_argument("--n-jobs", type=int, default=None, help="joblib workers")
    cert.add_argument(
        "--labels", default=None, metavar="LABELS",
        help="true labels (.csv with one column and optional header, or .npy): adds "
        "label/correct columns and reports the certified accuracy",
    )
    cert.add_argument(
        "--radius", type=_non_negative_float, default=None, metavar="R",
        help="also report the fraction of inputs whose l2 ball of radius R lies in the "
        "certified region, and with --labels the certified accuracy at R",
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
    cert.add_argument(
        "--chunk-size", type=_positive_int, default=100, metavar="ROWS",
        help="rows certified and written at a time: each chunk is appended to the output "
        "as soon as it is done (default: %(default)s)",
    )
    cert.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted run: keep the rows already in the output and "
        "certify the others (use the arguments of the interrupted run; the results are "
        "those of an uninterrupted run, every row being seeded on its own)",
    )
    cert.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
