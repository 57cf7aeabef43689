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
from ._io import atomic_write, check_output_dir, load_labels, load_matrix, write_certificates
from ._models import build_certifier, feature_info, load_model


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
    from ..demo import plot_comparison, run_demo

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
        "certified accuracy, and log-volume of the regions:\n"
    )
    print(_format_table(result["table"]))
    plot_comparison(result["certificates"], result["y"], estimator=result["estimator"], fig=fig)
    atomic_write(out, lambda tmp: fig.savefig(tmp, format=fmt, dpi=args.dpi))
    print(f"\nwrote {out}")
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
def cmd_certify(args):
    """``smoothcert certify``: certify the rows of a data file, write the certificates.

    Takes the parsed arguments of the ``certify`` subcommand and, like
    :func:`cmd_demo`, returns 0. Prints a summary: the inputs certified, the
    mean and median radius, and with ``--labels`` the certified accuracy.
    """
    from .._certify._pullback import certify
    from ..metrics import certificate_summary, certified_accuracy

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
    estimator = build_certifier(model, X, args.method, params)
    classes = np.asarray(estimator.classes_)
    labels = load_labels(args.labels, classes, X.shape[0]) if args.labels else None
    if note:
        print(note, file=sys.stderr)
    with warnings.catch_warnings():
        # The columns are in the model's order (checked above) and passed as an
        # array; a base model fitted on named columns warns on each call.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        warnings.filterwarnings("ignore", message="X has feature names")
        cert = certify(estimator, X)
    write_certificates(args.out, cert, labels)
    summary = certificate_summary(cert, labels)
    n, k = summary["n_inputs"], summary["n_certified"]
    print(
        f"certified {k}/{n} inputs ({n - k} abstained); mean certified radius "
        f"{summary['mean_radius']:.4g}, median {summary['median_radius']:.4g}"
    )
    if args.radius is not None:
        inside = cert.contains_ball(args.radius)
        print(
            f"certified at R={args.radius:g} (ball B2(x, R) inside the certified region): "
            f"{inside.sum()}/{n} inputs ({inside.mean():.4f})"
        )
    if labels is not None:
        line = f"certified accuracy: {summary['certified_accuracy']:.4f} at R=0"
        if args.radius:
            acc = certified_accuracy(labels, cert, args.radius)
            line += f", {acc:.4f} at R={args.radius:g}"
        print(line)
    print(f"wrote {args.out}")
    return 0


#: The function of each subcommand, by name.
COMMANDS = {"demo": cmd_demo, "certify": cmd_certify}
