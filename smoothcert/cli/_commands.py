"""The commands ``smoothcert demo`` and ``smoothcert certify``.

Each command takes the parsed arguments and returns the exit status; errors
meant for the user are raised as :class:`~smoothcert.cli._errors.CLIError`.
"""

import csv
import sys
import warnings
from pathlib import Path

import numpy as np

from ._errors import CLIError
from ._columns import match_columns
from ._io import (
    append_output,
    atomic_write,
    certificate_columns,
    check_output_dir,
    format_rows,
    load_labels,
    load_matrix,
    read_output,
    start_output,
)
from ._models import build_certifier, feature_info, guarantee_of, load_model


def _progress_enabled(quiet):
    if quiet:
        return 0
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return 0
    return 1


# ------------------------------------------------------------------------ demo
def _format_table(table):
    try:
        return table.to_string(float_format=lambda v: f"{v:.2f}")
    except AttributeError:  # a dict of columns, without pandas
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


def cmd_demo(args):
    """``smoothcert demo``: print the comparison table and write the figure.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of the ``demo`` subcommand.

    Returns
    -------
    status : int
        0.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CLIError("smoothcert demo needs matplotlib: pip install matplotlib") from None
    from ..demo import figure_caption, plot_comparison, run_demo

    out = Path(args.out)
    fmt = out.suffix.lower().lstrip(".") or "png"
    fig = Figure(figsize=(15, 8), layout="constrained")
    if fmt not in fig.canvas.get_supported_filetypes():
        raise CLIError(f"unsupported figure format {fmt!r} for {out}.")
    check_output_dir(out)
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
        "and log-volume of the regions:\n"
    )
    print(_format_table(result["table"]))
    plot_comparison(result["certificates"], result["y"], estimator=result["estimator"], fig=fig)
    atomic_write(out, lambda tmp: fig.savefig(tmp, format=fmt, dpi=args.dpi))
    print(f"\nwrote {out}")
    print(f"caption: {figure_caption(result['certificates'])}")
    if args.table_out:
        table = result["table"]
        if as_frame:
            atomic_write(args.table_out, lambda tmp: table.to_csv(tmp))
        else:
            def write(tmp):
                with open(tmp, "w", newline="") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(list(table))
                    writer.writerows(zip(*table.values()))

            atomic_write(args.table_out, write)
        print(f"wrote {args.table_out}")
    return 0


# --------------------------------------------------------------------- certify
def _summary(header, rows, radius):
    """The summary of ``certify`` from the written rows (all of them, resumed or not)."""
    col = {name: j for j, name in enumerate(header)}
    certified = np.array([r[col["abstained"]] == "False" for r in rows])
    radii = np.array([float(r[col["radius"]]) for r in rows])
    out = {
        "n": len(rows),
        "k": int(certified.sum()),
        "mean": float(radii.mean()),
        "median": float(np.median(radii)),
        "guarantee": rows[0][col["guarantee"]] if "guarantee" in col else None,
        "inside": None if radius is None else certified & (radius <= radii),
        "correct": None,
    }
    if "correct" in col:
        out["correct"] = np.array([r[col["correct"]] == "True" for r in rows])
    return out


def cmd_certify(args):
    """``smoothcert certify``: certify the rows of a data file, write the certificates.

    Takes the parsed arguments of the ``certify`` subcommand and, like
    :func:`cmd_demo`, returns 0. The rows are certified in chunks of
    ``--chunk-size`` and each chunk is written as soon as it is done, so that an
    interrupted run keeps the rows done and ``--resume`` continues it. Prints a
    summary: the inputs certified, the mean and median radius, the guarantee
    the radii hold for, and with ``--labels`` the certified accuracy.
    """
    from .._certify._certificate import describe_guarantee
    from .._certify._pullback import certify

    check_output_dir(args.out)
    table = load_matrix(args.data, "data")
    model = load_model(args.model, trust=args.trust, unsafe_pickle=args.unsafe_pickle)
    X, note = match_columns(table, *feature_info(model))
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
    X_train = None
    if args.train_data is not None:
        X_train, _ = match_columns(load_matrix(args.train_data, "training data"),
                                   *feature_info(model))
    column_names = table.columns if getattr(model, "feature_names_in_", None) is None else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        estimator = build_certifier(model, X, args.method, params,
                                    noise_features=args.noise_features,
                                    column_names=column_names, X_train=X_train)
    smoother = estimator[-1] if hasattr(estimator, "steps") else estimator
    if args.method not in (None, "fixed") and guarantee_of(smoother) == "per-covariance":
        print(
            f"note: without training data, --method {args.method} certifies each input with "
            "its own searched covariance (guarantee per-covariance), which does not cover the "
            "classifier CertifiedRegion deploys; pass --train-data TRAIN to fit its covariance "
            "family and certify that classifier (guarantee deployed).",
            file=sys.stderr,
        )
    elif X_train is not None and not (args.method not in (None, "fixed")
                                      or args.noise_features is not None):
        print("note: --train-data is only used with --method isotropic, diagonal or "
              "riemannian (to fit the deployed classifier's covariance family); it was not "
              "used.", file=sys.stderr)
    classes = np.asarray(estimator.classes_)
    labels = load_labels(args.labels, classes, X.shape[0]) if args.labels else None
    if note:
        print(note, file=sys.stderr)
    n = X.shape[0]
    header, written = None, []
    out = Path(args.out)
    if args.resume and out.is_file():
        header, written = read_output(out, n)
        print(f"resuming {out}: {len(written)} of {n} rows already written", file=sys.stderr)
    # Every row's result depends only on that row and the seed, so certifying
    # chunk by chunk gives the rows of one run over all of them.
    for begin in range(len(written), n, args.chunk_size):
        end = min(n, begin + args.chunk_size)
        with warnings.catch_warnings():
            # The columns are in the model's order (checked above) and passed as an
            # array; a base model fitted on named columns warns on each call.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            warnings.filterwarnings("ignore", message="X has feature names")
            cert = certify(estimator, X[begin:end])
        part = None if labels is None else labels[begin:end]
        chunk_header, text = format_rows(certificate_columns(cert, part), begin)
        if header is None or begin == 0:
            start_output(out, chunk_header, text)
        elif chunk_header != header:
            raise CLIError(
                f"cannot resume {out}: its columns {header} differ from this run's "
                f"{chunk_header}; resume with the arguments of the interrupted run."
            )
        else:
            append_output(out, text)
        header = chunk_header
    header, rows = read_output(out, n)
    if len(rows) != n:  # pragma: no cover - every chunk was written above
        raise CLIError(f"{out} holds {len(rows)} rows for {n} inputs.")
    summary = _summary(header, rows, args.radius)
    k = summary["k"]
    print(
        f"certified {k}/{n} inputs ({n - k} abstained); mean certified radius "
        f"{summary['mean']:.4g}, median {summary['median']:.4g}"
    )
    guarantee = summary["guarantee"]
    if guarantee is not None:
        print(f"guarantee: {guarantee} (each certificate {describe_guarantee(guarantee)})")
    if args.radius is not None:
        inside = summary["inside"]
        print(
            f"certified at R={args.radius:g} (ball B2(x, R) inside the certified region): "
            f"{inside.sum()}/{n} inputs ({inside.mean():.4f})"
        )
    if summary["correct"] is not None:
        correct = summary["correct"]
        line = f"certified accuracy: {correct.mean():.4f} at R=0"
        if args.radius:
            acc = (correct & summary["inside"]).mean()
            line += f", {acc:.4f} at R={args.radius:g}"
        print(line)
    print(f"wrote {out}")
    return 0


#: The function of each subcommand, by name.
COMMANDS = {"demo": cmd_demo, "certify": cmd_certify}
