"""The columns of a data file, matched to the features the model was fitted on.

A model fitted on a DataFrame records its column names (``feature_names_in_``).
A CSV with a header is matched to them by name, so a file whose columns are
in another order is reordered rather than certified wrong; a file without
names (headerless CSV, ``.npy``) can only be checked for the number of
columns. A frequent slip, the index column that ``DataFrame.to_csv`` writes by
default, gets its own hint.
"""

import numpy as np

from ._errors import CLIError

#: Header of the column in which pandas writes the index of a DataFrame
#: (``DataFrame.to_csv`` with its default ``index=True``): empty, or
#: ``Unnamed: 0`` once such a file is read back and written again.
INDEX_HEADERS = ("", "Unnamed: 0")


def match_columns(table, n_features=None, feature_names=None):
    """The data columns in the model's order, and a note for the user.

    With a header and a model fitted on named columns, the columns are matched
    by name (reordered when needed). Without one of the two, only their number
    is checked; a model with names then gets a note that the order is assumed.

    Parameters
    ----------
    table : smoothcert.cli._io.DataTable
        The data file.
    n_features : int, default=None
        Number of features of the model (``None``: unknown, not checked).
    feature_names : array-like of str, default=None
        The model's ``feature_names_in_``.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features)
        The columns in the model's order.
    note : str or None
        One line for stderr when the column order had to be assumed.

    Raises
    ------
    CLIError
        Wrong number of columns (with a hint when the extra first column looks
        like a pandas index), or header names that do not match the model's
        (listing the missing and unexpected ones), or duplicate names.

    Examples
    --------
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from smoothcert.cli._io import DataTable
    >>> table = DataTable(Path("X.csv"), np.array([[1.0, 2.0]]), ("b", "a"))
    >>> match_columns(table, 2, ["a", "b"])
    (array([[2., 1.]]), None)
    >>> match_columns(DataTable(Path("X.npy"), np.array([[1.0, 2.0]])), 2, ["a", "b"])[1]
    "note: X.npy has no column names; its 2 columns are assumed to be in the order the model was fitted on ('a', 'b')."
    """
    X = table.values
    names = None if feature_names is None else [str(name) for name in feature_names]
    if n_features is None and names is not None:
        n_features = len(names)
    if names is not None and table.columns is not None:
        return _match_names(table, names), None
    if n_features is not None and X.shape[1] != n_features:
        if X.shape[1] == n_features + 1 and _looks_like_index(table):
            raise CLIError(_index_hint(table, n_features))
        raise CLIError(
            f"the data in {table.path} has {X.shape[1]} features but the model expects "
            f"{n_features}."
        )
    if names is None:
        return X, None
    return X, (
        f"note: {table.path} has no column names; its {len(names)} columns are assumed "
        f"to be in the order the model was fitted on ({_preview(names)})."
    )


def _match_names(table, names):
    header = list(table.columns)
    if header == names:
        return table.values
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise CLIError(f"the header of {table.path} repeats the column names {_preview(duplicated)}.")
    known = set(names)
    missing = [name for name in names if name not in header]
    extra = [name for name in header if name not in known]
    if not missing and not extra:
        return table.values[:, [header.index(name) for name in names]]
    if not missing and extra == header[:1] and _looks_like_index(table):
        raise CLIError(_index_hint(table, len(names)))
    problems = []
    if missing:
        problems.append(f"missing: {_preview(missing)}")
    if extra:
        problems.append(f"extra: {_preview(extra)}")
    raise CLIError(
        f"the columns of {table.path} do not match the {len(names)} features the model "
        f"was fitted on ({_preview(names)}): {'; '.join(problems)}."
    )


def _looks_like_index(table):
    """Whether the first column holds row numbers, as a pandas index written to CSV."""
    first = table.values[:, 0]
    if not np.array_equal(first, np.round(first)):
        return False
    if table.columns is not None and table.columns[0] in INDEX_HEADERS:
        return True
    return np.array_equal(first, np.arange(len(first)))


def _index_hint(table, n_features):
    header = ""
    if table.columns is not None:
        name = table.columns[0]
        header = f" (header {name!r})" if name else " (empty header)"
    return (
        f"{table.path} has {table.values.shape[1]} columns but the model expects "
        f"{n_features} features: its first column{header} holds row numbers, as "
        "pandas writes the index of a DataFrame (to_csv with its default index=True). "
        "Write the file with to_csv(..., index=False) or drop that column."
    )


def _preview(names, limit=8):
    shown = ", ".join(repr(name) for name in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return shown


def parse_noise_features(text, n_features, names=None):
    """The column indices of ``--noise-features``: comma-separated names or indices.

    A field that is one of ``names`` is that column; otherwise it must be a
    whole number, the index of the column from 0 in the model's order.

    Parameters
    ----------
    text : str
        The option's value, e.g. ``"age,income"`` or ``"0,2"``.
    n_features : int
        Number of columns of the estimator that receives the noise.
    names : sequence of str, default=None
        Their names, when known (the model's feature names, or the data file's
        header).

    Returns
    -------
    indices : ndarray of int
        Sorted, distinct column indices.

    Raises
    ------
    CLIError
        An empty field, an unknown name, an index out of range or a column
        named twice.

    Examples
    --------
    >>> parse_noise_features("income, age", 3, ["age", "income", "city"])
    array([0, 1])
    >>> parse_noise_features("2", 3)
    array([2])
    """
    names = None if names is None else [str(name) for name in names]
    fields = [field.strip() for field in str(text).split(",")]
    if not fields or any(not field for field in fields):
        raise CLIError(
            f"--noise-features {text!r} has an empty field: give comma-separated column "
            "names or indices, e.g. --noise-features age,income or --noise-features 0,2."
        )
    indices = []
    for field in fields:
        if names is not None and field in names:
            indices.append(names.index(field))
        elif field.isdigit():
            index = int(field)
            if index >= n_features:
                raise CLIError(
                    f"--noise-features: column index {index} is out of range for "
                    f"{n_features} columns (indices count from 0)."
                )
            indices.append(index)
        elif names is None:
            raise CLIError(
                f"--noise-features: {field!r} is not a column index and the columns have "
                "no names (the model was not fitted on named columns and the data file has "
                "no header): give indices from 0."
            )
        else:
            raise CLIError(
                f"--noise-features: no column is named {field!r}; the columns are "
                f"{_preview(names)} (or give indices from 0)."
            )
    if len(set(indices)) != len(indices):
        raise CLIError(f"--noise-features names a column twice: {text!r}.")
    return np.array(sorted(indices), dtype=np.int64)
