"""Persistence of a CertificateMemory: the ``.npz`` format, its checks, label helpers.

The file holds plain arrays (no pickle): format tag and version, dimension,
margin, centres, covariances, Mahalanobis radii, lower bounds, label codes and
the classes, and, for regions of certificates with noise on some columns
only, those columns (``noise_features``; the covariances are then those of
these columns). Everything read back is validated before a memory is built.
"""

import numbers
import os
import zipfile
import zlib

import numpy as np
from numpy.lib.npyio import NpzFile

from .._geometry._linalg import check_spd, spd_power

__all__ = ["write_npz", "read_npz", "validated_parts"]

_FORMAT = "smoothcert.CertificateMemory"
_VERSION = 1
_KEYS = (
    "format",
    "version",
    "n_features",
    "margin",
    "centers",
    "covariances",
    "mahalanobis_radii",
    "p_lower",
    "label_codes",
    "classes",
    "label_type",
)


def _label_key(label):
    """Canonical hashable form of a class label and its type ("str" / "numeric")."""
    if isinstance(label, np.ndarray) and label.ndim == 0:
        label = label[()]
    if isinstance(label, (str, np.str_)):
        return str(label), "str"
    if isinstance(label, (bool, np.bool_)):
        return bool(label), "numeric"
    if isinstance(label, numbers.Integral):
        return int(label), "numeric"
    if isinstance(label, numbers.Real):
        value = float(label)
        if not np.isfinite(value):
            raise ValueError(f"class labels must be finite, got {label!r}.")
        return value, "numeric"
    raise ValueError(
        f"class labels must be strings or real numbers, got {type(label).__name__} {label!r}."
    )


def _labels_array(labels, label_type):
    """A numpy array (str or numeric, never object) of canonical labels."""
    if label_type == "str":
        return np.asarray(labels, dtype=str) if len(labels) else np.zeros(0, dtype="<U1")
    return np.asarray(labels) if len(labels) else np.zeros(0, dtype=np.float64)


def _spd_parts(covariances):
    """Validate a stack of SPD matrices; return (symmetrized, eigenvalues, precisions)."""
    covariances, w, v = check_spd(covariances)
    return covariances, w, spd_power(None, -1, eig=(w, v))


def write_npz(memory, path):
    """Write ``memory`` to ``path`` (str, path-like or file-like) as ``.npz``."""
    m = memory._n
    d = -1 if memory._d is None else memory._d
    k = d if memory._features is None else memory._features.size
    arrays = dict(
        format=np.array(_FORMAT),
        version=np.array(_VERSION, dtype=np.int64),
        n_features=np.array(d, dtype=np.int64),
        margin=np.array(memory._margin),
        centers=np.ascontiguousarray(memory.centers) if m else np.zeros((0, max(d, 0))),
        covariances=(
            np.ascontiguousarray(memory._covs[:m]) if m else np.zeros((0, max(k, 0), max(k, 0)))
        ),
        mahalanobis_radii=np.ascontiguousarray(memory.mahalanobis_radii),
        p_lower=np.ascontiguousarray(memory.p_lower),
        label_codes=memory._codes[:m].copy() if m else np.zeros(0, dtype=np.int64),
        classes=memory.classes,
        label_type=np.array(memory._label_type or "none"),
    )
    if memory._features is not None:
        arrays["noise_features"] = memory._features.astype(np.int64)
    if isinstance(path, (str, os.PathLike)):
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
    else:
        np.savez(path, **arrays)


def read_npz(path):
    """The arrays of a memory file, as a dict (every key of the format present)."""
    unreadable = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except unreadable as exc:
        raise ValueError(
            f"Invalid certificate memory file {path!r}: cannot read it as an .npz "
            f"archive without pickle ({type(exc).__name__}: {exc})."
        ) from exc
    if not isinstance(npz, NpzFile):
        raise ValueError(f"Invalid certificate memory file {path!r}: not an .npz archive.")
    with npz:
        missing = [key for key in _KEYS if key not in npz.files]
        if missing:
            raise ValueError(
                f"Invalid certificate memory file {path!r}: missing key(s) {missing}."
            )
        try:
            data = {key: npz[key] for key in _KEYS}
            data["noise_features"] = npz["noise_features"] if "noise_features" in npz.files else None
        except unreadable as exc:
            raise ValueError(
                f"Invalid certificate memory file {path!r}: corrupted archive "
                f"({type(exc).__name__}: {exc})."
            ) from exc
    return data


def validated_parts(data):
    """Check the arrays of a memory file; return what a memory is built from.

    Returns a dict with ``n_features`` (None for an empty memory without
    dimension) and ``margin``, and otherwise ``centers``, ``covariances``,
    ``eigenvalues``, ``precisions``, ``radii``, ``p_lower``, ``codes``,
    ``classes`` (canonical label keys) and ``label_type``.
    """
    def scalar(key, kinds):
        value = data[key]
        if value.shape != () or value.dtype.kind not in kinds:
            raise ValueError(
                f"{key!r} must be a scalar of kind {kinds!r}, got {value.dtype} {value.shape}."
            )
        return value[()]

    if str(scalar("format", "U")) != _FORMAT:
        raise ValueError(f"not a {_FORMAT} file.")
    version = int(scalar("version", "iu"))
    if version != _VERSION:
        raise ValueError(f"unsupported format version {version} (expected {_VERSION}).")
    d = int(scalar("n_features", "iu"))
    margin = float(scalar("margin", "f"))
    if not (np.isfinite(margin) and 0.0 <= margin < 1.0):
        raise ValueError(f"margin must be in [0, 1), got {margin}.")
    label_type = str(scalar("label_type", "U"))
    if label_type not in ("str", "numeric", "none"):
        raise ValueError(f"unknown label_type {label_type!r}.")

    centers = data["centers"]
    m = centers.shape[0] if centers.ndim >= 1 else -1
    if d == -1:
        if centers.ndim != 2 or m != 0:
            raise ValueError("a memory without dimension must hold no regions.")
        return {"n_features": None, "margin": margin, "noise_features": None}
    if d < 1:
        raise ValueError(f"n_features must be positive, got {d}.")
    features = data.get("noise_features")
    if features is not None:
        if (features.ndim != 1 or features.dtype.kind not in "iu" or features.size == 0
                or np.any(np.diff(features) <= 0) or features[0] < 0 or features[-1] >= d):
            raise ValueError("'noise_features' must be increasing column indices in [0, n_features).")
        features = features.astype(np.intp)
    k = d if features is None else features.size
    expected = {
        "centers": ((m, d), "f"),
        "covariances": ((m, k, k), "f"),
        "mahalanobis_radii": ((m,), "f"),
        "p_lower": ((m,), "f"),
        "label_codes": ((m,), "iu"),
    }
    for key, (shape, kinds) in expected.items():
        arr = data[key]
        if arr.shape != shape:
            raise ValueError(f"{key!r} has shape {arr.shape}, expected {shape}.")
        if arr.dtype.kind not in kinds:
            raise ValueError(f"{key!r} has dtype {arr.dtype}, expected kind {kinds!r}.")
    centers = centers.astype(np.float64)
    covs = data["covariances"].astype(np.float64)
    radii = data["mahalanobis_radii"].astype(np.float64)
    p_low = data["p_lower"].astype(np.float64)
    codes = data["label_codes"].astype(np.int64)
    for key, arr in (("centers", centers), ("covariances", covs), ("mahalanobis_radii", radii)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{key!r} contains NaN or infinite values.")
    if np.any(radii <= 0):
        raise ValueError("'mahalanobis_radii' must be strictly positive.")
    if np.any(~np.isnan(p_low) & ~((p_low >= 0) & (p_low <= 1))):
        raise ValueError("'p_lower' must be in [0, 1] or NaN.")
    classes = data["classes"]
    if classes.ndim != 1:
        raise ValueError(f"'classes' must be 1-D, got shape {classes.shape}.")
    kind_ok = {"str": "U", "numeric": "biuf", "none": "biufU"}[label_type]
    if classes.dtype.kind not in kind_ok or (label_type == "none" and classes.size):
        raise ValueError(
            f"'classes' of dtype {classes.dtype} do not match label_type {label_type!r}."
        )
    keys = [_label_key(c)[0] for c in classes.tolist()]
    if len(set(keys)) != len(keys):
        raise ValueError("'classes' contains duplicates.")
    if m and (codes.min() < 0 or codes.max() >= len(keys)):
        raise ValueError("'label_codes' out of range of 'classes'.")
    try:
        covs, eigvals, precs = _spd_parts(covs)
    except ValueError as exc:
        raise ValueError(f"'covariances': {exc}") from exc
    return dict(
        n_features=d, margin=margin, centers=centers, covariances=covs, eigenvalues=eigvals,
        precisions=precs, radii=radii, p_lower=p_low, codes=codes, classes=keys,
        label_type=None if label_type == "none" else label_type, m=m, noise_features=features,
    )


def _set_labels(pred, rows, labels):
    """``pred`` with ``pred[rows] = labels``, widening str dtypes as needed."""
    pred = np.asarray(pred)
    if pred.dtype.kind == "O":
        out = pred.copy()
        for row, lab in zip(rows, labels):
            out[row] = lab
        return out
    new = np.asarray(labels)
    pred_str = pred.dtype.kind in "US"
    new_str = new.dtype.kind in "US"
    if pred_str != new_str:
        raise ValueError(
            f"the memory's class labels ({new.dtype}) and the certificate's predictions "
            f"({pred.dtype}) are not of the same type."
        )
    out = pred.astype(np.result_type(pred.dtype, new.dtype), copy=True)
    out[rows] = new
    return out
