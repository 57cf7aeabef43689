"""The ``smoothcert`` command line: ``smoothcert demo`` and ``smoothcert certify``.

``smoothcert demo`` runs the comparison of fixed, isotropic (DDRS), diagonal
(ANCER) and Riemannian noise on an embedded two-moons data set, prints the
table and writes the figure.

``smoothcert certify`` certifies the rows of a ``.csv``, ``.tsv`` or ``.npy``
file with a saved model and writes one row of results per input. Models are
read with skops (safe loading: only trusted types are built); pickle/joblib
files, which execute arbitrary code when loaded, need ``--unsafe-pickle``.
The columns of a CSV with a header are matched by name to those the model was
fitted on.

Output files are written atomically (a temporary file in the same directory,
then :func:`os.replace`). ``smoothcert certify`` writes its rows chunk by chunk
as they are certified (``--chunk-size``): the first chunk replaces the output
atomically, the next ones are appended whole, so an interrupted run (Ctrl-C, a
kill) leaves a valid CSV of the rows done, and ``--resume`` continues it
without redoing them. Errors print one line to stderr and return a non-zero exit status
(``--debug`` shows the traceback).

Modules: ``_parser`` (the argument parser), ``_io`` (data and label files,
atomic writes), ``_columns`` (data columns matched to the model's features),
``_models`` (safe loading, the certifying estimator) and ``_commands`` (the
commands).
"""

import sys

from ._errors import EXIT_ERROR, EXIT_INTERRUPTED, CLIError
from ._parser import PROG, build_parser

__all__ = ["main"]


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
        from ._commands import COMMANDS

        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        hint = ""
        if args.command == "certify":
            hint = f"; the rows done are in {args.out}, rerun with --resume to continue"
        print(f"{PROG}: interrupted{hint}", file=sys.stderr)
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
