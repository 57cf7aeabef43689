"""What every display shares: the optional matplotlib import and the axes."""

import numpy as np

from .._certify._certificate import Certificate

__all__ = ["check_matplotlib_support"]


def check_matplotlib_support(caller_name):
    """Raise an ImportError that says how to install matplotlib when it is missing.

    The displays import matplotlib lazily: smoothcert itself does not need it.
    Every public entry point of :mod:`smoothcert.plotting` calls this first,
    before any computation.

    Parameters
    ----------
    caller_name : str
        Name of the caller, used in the message (for example
        ``"CertifiedAccuracyDisplay.plot"``).

    Raises
    ------
    ImportError
        If matplotlib cannot be imported.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller_name} requires matplotlib, which is not installed. Install it "
            "with pip install 'smoothcert[plot]' (or pip install matplotlib)."
        ) from exc


def _get_axes(ax, caller_name):
    """``ax``, or the axes of a new pyplot figure when ``ax`` is None."""
    check_matplotlib_support(caller_name)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
        return ax
    if not hasattr(ax, "add_collection") or getattr(ax, "figure", None) is None:
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}.")
    return ax


def _class_index(values, classes, what):
    """Positions of ``values`` in ``classes``; a ValueError naming ``what`` otherwise."""
    values = np.asarray(values)
    out = np.full(values.shape, -1, dtype=np.intp)
    for i, c in enumerate(classes):
        out[values == c] = i
    if np.any(out < 0):
        unknown = np.unique(values[out < 0])[:5]
        raise ValueError(
            f"{what} holds labels that are not classes of the estimator: {unknown.tolist()} "
            f"(classes: {np.asarray(classes).tolist()})."
        )
    return out


def _check_certificate(certificate):
    """Refuse anything but a :class:`~smoothcert.Certificate` (a TypeError)."""
    if not isinstance(certificate, Certificate):
        raise TypeError(
            f"certificate must be a Certificate, got {type(certificate).__name__}."
        )
