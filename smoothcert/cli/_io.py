"""Files of ``smoothcert certify``: data and label files in, certificates out.

Data are read from ``.csv`` (comma), ``.tsv`` (tab) or ``.npy`` files; a CSV
whose first row holds names has a header, kept with the values
(:class:`DataTable`). Every output is
written atomically (:func:`atomic_write`): a temporary file in the same
directory, then :func:`os.replace`, so an interrupted write leaves no partial
file and keeps a previous one. The certificates of ``smoothcert certify`` are
written chunk by chunk: the first chunk replaces the output atomically, the
next ones are appended whole (:func:`append_output`), so an interrupted run
leaves a valid CSV of the rows done, which ``--resume`` continues
(:func:`read_output`).
"""

import csv
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._errors import CLIError


# ---------------------------------------------------------------------- output
def check_output_dir(path):
    """Refuse ``path`` early when its directory does not exist.

    Parameters
    ----------
    path : str or Path
        The output file.

    Raises
    ------
    CLIError
        The directory of ``path`` does not exist.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise CLIError(f"output directory does not exist: {directory}")


def atomic_write(path, write):
    """Write ``path`` through ``write(tmp_path)``, then :func:`os.replace`.

    Parameters
    ----------
    path : str or Path
        The file to write; an existing one is replaced only on success.
    write : callable
        Called with the path of a temporary file in the same directory.

    Raises
    ------
    CLIError
        The directory does not exist or ``path`` is a directory.
    """
    path = Path(path)
    check_output_dir(path)
    if path.is_dir():
        raise CLIError(f"output path is a directory: {path}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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


def certificate_columns(cert, labels=None):
    """The output columns of certificates: those of ``Certificate.to_frame``, then labels.

    Parameters
    ----------
    cert : Certificate
        The certificates.
    labels : ndarray of shape (n,), default=None
        True labels: adds the columns ``label`` and ``correct`` (certified and
        predicted right).

    Returns
    -------
    columns : dict of str to ndarray
        One array per column, in output order.
    """
    rows = cert._columns()
    if labels is not None:
        rows["label"] = labels
        rows["correct"] = cert.certified & (cert.prediction == labels)
    return rows


def format_rows(columns, start):
    """The CSV text of the rows of ``columns``, numbered from ``start``.

    Returns
    -------
    header : list of str
        ``"row"`` and the column names.
    text : str
        One CSV line per row, each ending with a newline.
    """
    header = ["row", *columns]
    values = [np.asarray(v) for v in columns.values()]
    n = len(values[0]) if values else 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for i in range(n):
        writer.writerow([start + i, *(_cell(col[i]) for col in values)])
    return header, buffer.getvalue()


def _header_text(header):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(header)
    return buffer.getvalue()


def write_certificates(path, cert, labels=None):
    """Write one CSV row per certified input (atomically).

    Parameters
    ----------
    path : str or Path
        The output CSV file.
    cert : Certificate
        The certificates; their columns are those of ``Certificate.to_frame``.
    labels : ndarray of shape (n,), default=None
        True labels: adds the columns ``label`` and ``correct`` (certified and
        predicted right).
    """
    header, text = format_rows(certificate_columns(cert, labels), 0)
    start_output(path, header, text)


def start_output(path, header, text):
    """Write a new output CSV: the header and the first rows, atomically."""

    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            handle.write(_header_text(header))
            handle.write(text)

    atomic_write(path, write)


def append_output(path, text):
    """Append complete CSV lines to ``path`` with one write, then flush them to disk.

    The lines are written with a single append (``O_APPEND``) and synced, so
    that the file holds whole chunks of rows; a write cut short by a kill can
    leave at most one incomplete last line, which :func:`read_output` drops.
    """
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_output(path, n_rows):
    """The header and the complete rows of an output CSV written by ``certify``.

    An incomplete last line (a write cut short) is removed from the file.

    Parameters
    ----------
    path : str or Path
        The partial output.
    n_rows : int
        Rows of the data being certified; the file may not hold more.

    Returns
    -------
    header : list of str or None
        The header (``None`` for an empty file).
    rows : list of list of str
        The complete rows, numbered 0, 1, ... in order.

    Raises
    ------
    CLIError
        The file is not an output of ``smoothcert certify`` for these data.
    """
    path = Path(path)
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(path, "rb+") as handle:
            handle.truncate(keep)
            os.fsync(handle.fileno())
        data = data[:keep]
    try:
        lines = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"cannot resume from {path}: not a certify output ({exc}).") from None
    if not lines:
        return None, []
    header, rows = lines[0], lines[1:]
    if not header or header[0] != "row":
        raise CLIError(f"cannot resume from {path}: it is not an output of smoothcert certify.")
    for i, row in enumerate(rows):
        if len(row) != len(header) or row[0] != str(i):
            raise CLIError(
                f"cannot resume from {path}: line {i + 2} is not row {i} of the output."
            )
    if len(rows) > n_rows:
        raise CLIError(
            f"cannot resume from {path}: it holds {len(rows)} rows, the data only {n_rows}."
        )
    return header, rows


def _cell(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return str(value.item() if hasattr(value, "item") else value)


# ------------------------------------------------------------------------ data
@dataclass(frozen=True)
class DataTable:
    """The numbers of a data file and, when it has a header, its column names.

    Parameters
    ----------
    path : Path
        The file, for messages.
    values : ndarray of shape (n_rows, n_columns)
        Finite float64 values.
    columns : tuple of str or None
        The names of the header row; ``None`` without one (and for ``.npy``).
    """

    path: Path
    values: np.ndarray
    columns: tuple | None = None


def parse_csv(path):
    """Non-empty rows of a CSV (comma) or TSV (tab) file.

    Parameters
    ----------
    path : str or Path
        The file; ``.tsv`` files are split on tabs, others on commas.

    Returns
    -------
    rows : list of (int, list of str)
        The file line (from 1) and the stripped fields of each row that has
        a non-blank field.
    """
    delimiter = "\t" if Path(path).suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            rows = []
            for row in reader:
                fields = [field.strip() for field in row]
                if any(fields):
                    rows.append((reader.line_num, fields))
    except UnicodeDecodeError:
        raise CLIError(f"{path} is not a text CSV file.") from None
    except (OSError, csv.Error) as exc:
        raise CLIError(f"cannot read {path}: {exc}") from None
    return rows


def is_number(text):
    """Whether ``float(text)`` succeeds."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_header(fields):
    """Whether the first row of a CSV holds column names rather than numbers."""
    if any(field and not is_number(field) for field in fields):
        return True
    # DataFrame.to_csv of unnamed columns: an empty index header, then 0, 1, ...
    return (
        len(fields) > 1
        and fields[0] == ""
        and fields[1:] == [str(j) for j in range(len(fields) - 1)]
    )


def load_matrix(path, what="data"):
    """Read a numeric 2-D table from a ``.csv``/``.tsv`` (optional header) or ``.npy`` file.

    Parameters
    ----------
    path : str or Path
        The file.
    what : str, default="data"
        Name used in error messages.

    Returns
    -------
    table : DataTable
        The float64 values and the header's column names (``None`` without).

    Raises
    ------
    CLIError
        Missing file, unknown format, empty, non-numeric or non-finite values
        (naming the file line and the column), ragged rows, not 2-D.
    """
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    columns = None
    if suffix == ".npy":
        X = load_npy(path, what)
    elif suffix in (".csv", ".tsv"):
        rows = parse_csv(path)
        if rows and _is_header(rows[0][1]):
            columns = tuple(rows[0][1])
            rows = rows[1:]
        if not rows:
            raise CLIError(f"{what} file {path} has no data rows.")
        width = len(columns) if columns is not None else len(rows[0][1])
        first = "the header" if columns is not None else "the first row"
        values = []
        for line, row in rows:
            if len(row) != width:
                raise CLIError(
                    f"{path}, line {line}: {len(row)} columns where {first} has {width}."
                )
            try:
                values.append([float(v) for v in row])
            except ValueError:
                j = next(j for j, v in enumerate(row) if not is_number(v))
                where = f"{path}, line {line}, column {_column_name(columns, j)}"
                if row[j] == "":
                    raise CLIError(f"{where}: empty value; every cell needs a number.") from None
                raise CLIError(f"{where}: non-numeric value {row[j]!r}.") from None
        X = np.asarray(values, dtype=np.float64)
    else:
        raise CLIError(
            f"unsupported {what} format {suffix or '(none)'!r} for {path}: "
            "use .csv, .tsv or .npy."
        )
    if X.ndim == 1:
        raise CLIError(f"{what} in {path} is 1-D; expected a 2-D array (rows x features).")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise CLIError(f"{what} in {path} has shape {X.shape}; expected a non-empty 2-D array.")
    if not np.all(np.isfinite(X)):
        raise CLIError(f"{what} in {path} contains NaN or infinite values.")
    return DataTable(path, X, columns)


def _column_name(columns, j):
    """``'name'`` of column ``j`` when the header names it, else its number (from 1)."""
    if columns is not None and columns[j]:
        return repr(columns[j])
    return str(j + 1)


def load_npy(path, what):
    """Read a ``.npy`` file without unpickling; ``what="data"`` must be real numbers."""
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
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(
            array.dtype, np.complexfloating
        ):
            raise CLIError(f"{what} in {path} must be real numbers, got dtype {array.dtype}.")
        return array.astype(np.float64)
    return array


# ---------------------------------------------------------------------- labels
def load_labels(path, classes, n_rows):
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

    Raises
    ------
    CLIError
        Missing file, unknown format, not one column, wrong count, or labels
        that are not classes of the model.
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
            if by_value and is_number(value) and float(value) in by_value:
                return by_value[float(value)]
            return None
        if by_value and isinstance(value, (int, float, np.number)) and float(value) in by_value:
            return by_value[float(value)]
        return by_text.get(str(value))

    suffix = path.suffix.lower()
    if suffix == ".npy":
        raw = load_npy(path, "labels")
        if raw.ndim == 2 and raw.shape[1] == 1:
            raw = raw[:, 0]
        if raw.ndim != 1:
            raise CLIError(f"labels in {path} must be 1-D, got shape {raw.shape}.")
        values = [v.item() if hasattr(v, "item") else v for v in raw]
        start = 0
    elif suffix in (".csv", ".tsv"):
        rows = parse_csv(path)
        if any(len(row) != 1 for _, row in rows):
            raise CLIError(f"labels file {path} must have exactly one column.")
        values = [row[0] for _, row in rows]
        # a header: one extra first value that is not a class
        start = 1 if len(values) == n_rows + 1 and lookup(values[0]) is None else 0
    else:
        raise CLIError(
            f"unsupported labels format {suffix or '(none)'!r} for {path}: "
            "use .csv, .tsv or .npy."
        )
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
