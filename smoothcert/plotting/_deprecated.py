"""The plotting functions of smoothcert 0.1, kept for one release on top of the displays."""

import warnings

import numpy as np

from .._certify._certificate import Certificate
from ._accuracy import CertifiedAccuracyDisplay
from ._base import _get_axes
from ._regions import CertifiedRegionsDisplay

__all__ = ["plot_certified_accuracy", "plot_certified_regions"]


def _is_curve(obj):
    if not isinstance(obj, tuple) or len(obj) != 2:
        return False
    try:
        a, b = (np.asarray(v, dtype=np.float64) for v in obj)
    except (TypeError, ValueError):
        return False
    return a.ndim == 1 and a.shape == b.shape


def _as_entries(curves_or_certs, labels):
    """List of (label, Certificate or (radii, accuracies))."""
    if isinstance(curves_or_certs, dict):
        entries = list(curves_or_certs.items())
        if labels is not None:
            entries = [(lab, v) for lab, (_, v) in zip(labels, entries, strict=True)]
        return entries
    if isinstance(curves_or_certs, Certificate) or _is_curve(curves_or_certs):
        items = [curves_or_certs]
    else:
        items = list(curves_or_certs)
    if labels is None:
        labels = [None] * len(items)
    elif isinstance(labels, str):
        labels = [labels]
    if len(labels) != len(items):
        raise ValueError(f"Got {len(labels)} labels for {len(items)} curves.")
    return list(zip(labels, items))


def plot_certified_accuracy(
    curves_or_certs, y_true=None, radii=None, ax=None, labels=None, **plot_kwargs
):
    """Certified accuracy against the l2 radius (deprecated).

    .. deprecated:: 0.2
        Use :class:`CertifiedAccuracyDisplay` instead:
        :meth:`CertifiedAccuracyDisplay.from_certificate` once per
        certificate, with the same ``ax`` and ``radii``. This function will
        be removed in 0.3.

    Parameters
    ----------
    curves_or_certs : Certificate, (radii, accuracies) tuple, list or dict of them
        Certificates (their curve needs ``y_true``) or precomputed curves; a
        dict maps legend labels to them.
    y_true : array-like of shape (n_samples,), default=None
        True labels, required for certificates.
    radii : int or array-like, default=None
        Radii for certificates; ``None`` uses one grid from 0 to the largest
        certified radius of all of them.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when ``None``.
    labels : list of str, default=None
        Legend labels (the dict keys when a dict is given).
    **plot_kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot`.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import warnings
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from smoothcert.plotting import plot_certified_accuracy
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     ax = plot_certified_accuracy({"fixed": ([0.0, 0.5, 1.0], [0.9, 0.6, 0.1])})
    >>> caught[0].category.__name__
    'FutureWarning'
    """
    warnings.warn(
        "plot_certified_accuracy is deprecated and will be removed in 0.3; "
        "use CertifiedAccuracyDisplay.from_certificate (or .from_estimator) instead.",
        FutureWarning,
        stacklevel=2,
    )
    ax = _get_axes(ax, "plot_certified_accuracy")
    entries = _as_entries(curves_or_certs, labels)
    for _, value in entries:
        if not (isinstance(value, Certificate) or _is_curve(value)):
            raise TypeError(
                "Expected a Certificate or a (radii, accuracies) pair, got "
                f"{type(value).__name__}."
            )
    certs = [v for _, v in entries if isinstance(v, Certificate)]
    if certs and y_true is None:
        raise ValueError("y_true is required to plot the certified accuracy of certificates.")
    if certs and radii is None:
        top = max(float(c.radius[c.certified].max(initial=0.0)) for c in certs)
        radii = np.linspace(0.0, top, 200)
    for label, value in entries:
        if isinstance(value, Certificate):
            CertifiedAccuracyDisplay.from_certificate(
                value, y_true, radii=radii, name=label, ax=ax, **plot_kwargs
            )
        else:
            r, acc = value
            CertifiedAccuracyDisplay(radii=r, accuracies=acc, name=label).plot(
                ax=ax, **plot_kwargs
            )
    return ax


def plot_certified_regions(
    estimator_or_certificate,
    X=None,
    y=None,
    ax=None,
    *,
    certificate=None,
    background="base",
    grid_resolution=200,
    show_balls=True,
    max_regions=None,
    margin=0.15,
    cmap=None,
):
    """Certified regions and inscribed balls of 2-D inputs (deprecated).

    .. deprecated:: 0.2
        Use :class:`CertifiedRegionsDisplay` instead:
        :meth:`CertifiedRegionsDisplay.from_estimator`, or
        :meth:`CertifiedRegionsDisplay.from_certificate` for a certificate you
        already have. This function will be removed in 0.3.

    Parameters
    ----------
    estimator_or_certificate : estimator or Certificate
        A fitted smoothing estimator or a pipeline ending in one (``X`` is
        certified unless ``certificate`` is given), or a :class:`Certificate`
        (drawn without background).
    X : array-like of shape (n_samples, 2), default=None
        The inputs; required with an estimator.
    y : array-like of shape (n_samples,), default=None
        True labels, which colour the points.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when ``None``.
    certificate : Certificate, default=None
        A certificate of ``X`` by the estimator (not certified again).
    background : {"base", "smoothed", "none"}, default="base"
        Decision regions of the estimator (see
        :meth:`CertifiedRegionsDisplay.from_estimator`).
    grid_resolution : int, default=200
        Grid points per axis of the background.
    show_balls : bool, default=True
        Draw the inscribed l2 balls.
    max_regions : int, default=None
        Draw the regions of at most this many inputs.
    margin : float, default=0.15
        Space around the inputs, as a fraction of their range.
    cmap : str or list of colours, default=None
        Colours of the classes (``colors`` of :meth:`CertifiedRegionsDisplay.plot`).

    Returns
    -------
    ax : matplotlib Axes
    """
    warnings.warn(
        "plot_certified_regions is deprecated and will be removed in 0.3; "
        "use CertifiedRegionsDisplay.from_estimator (or .from_certificate) instead.",
        FutureWarning,
        stacklevel=2,
    )
    CertifiedRegionsDisplay._check_background(background)
    style = dict(
        grid_resolution=grid_resolution, margin=margin, ax=ax, max_regions=max_regions,
        show_balls=show_balls, colors=cmap,
    )
    if isinstance(estimator_or_certificate, Certificate):
        cert = estimator_or_certificate
        if X is not None and not np.allclose(np.asarray(X, dtype=np.float64), cert.center):
            raise ValueError("X must be the inputs of the certificate.")
        display = CertifiedRegionsDisplay.from_certificate(cert, y, background="none", **style)
    else:
        if X is None:
            raise ValueError("X is required to plot the regions of an estimator.")
        if certificate is None:
            display = CertifiedRegionsDisplay.from_estimator(
                estimator_or_certificate, X, y, background=background, **style
            )
        else:
            display = CertifiedRegionsDisplay.from_certificate(
                certificate, y, estimator=estimator_or_certificate, background=background,
                **style,
            )
    return display.ax_
