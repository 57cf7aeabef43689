"""Plots of certificates: certified-accuracy curves and 2-D certified regions.

matplotlib is optional (``pip install smoothcert[plot]``); it is imported only
when a plotting function is called.
"""

import numpy as np

from .._certify._certificate import Certificate

__all__ = ["plot_certified_accuracy", "plot_certified_regions"]


_MISSING = (
    "smoothcert.plotting requires matplotlib: pip install 'smoothcert[plot]' "
    "(or pip install matplotlib)."
)


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.collections import EllipseCollection  # noqa: F401
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    return matplotlib


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    return plt


def _get_ax(ax):
    if ax is not None:
        return ax
    plt = _pyplot()
    _, ax = plt.subplots()
    return ax


def _is_curve(obj):
    if not isinstance(obj, tuple) or len(obj) != 2:
        return False
    try:
        a, b = (np.asarray(v, dtype=np.float64) for v in obj)
    except (TypeError, ValueError):
        return False
    return a.ndim == 1 and a.shape == b.shape


def _as_entries(curves_or_certs, labels):
    """List of (label, Certificate or (radii, acc))."""
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
    """Certified accuracy against the l2 radius, several estimators on one axis.

    Parameters
    ----------
    curves_or_certs : Certificate, (radii, accuracies) tuple, list or dict of them
        What to draw: certificates (the curve is computed with
        :func:`~smoothcert.certified_accuracy_curve`, which needs ``y_true``)
        or precomputed curves. A dict maps labels to them.
    y_true : array-like of shape (n_samples,), default=None
        True labels, required for certificates.
    radii : int or array-like, default=None
        Radii for certificates; ``None`` uses one common grid from 0 to the
        largest certified radius of all of them.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when ``None``.
    labels : list of str, default=None
        Legend labels (the dict keys when a dict is given).
    **plot_kwargs
        Passed to :meth:`~matplotlib.axes.Axes.plot` (e.g. ``lw``).

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from smoothcert.plotting import plot_certified_accuracy
    >>> ax = plot_certified_accuracy({"fixed": ([0.0, 0.5, 1.0], [0.9, 0.6, 0.1])})
    >>> ax.get_xlabel()
    'l2 radius R'
    """
    from ..metrics import certified_accuracy_curve

    entries = _as_entries(curves_or_certs, labels)
    certs = [v for _, v in entries if isinstance(v, Certificate)]
    if certs and y_true is None:
        raise ValueError("y_true is required to plot the certified accuracy of certificates.")
    if certs and radii is None:
        top = max(float(c.radius[c.certified].max(initial=0.0)) for c in certs)
        radii = np.linspace(0.0, top, 200)
    ax = _get_ax(ax)
    for label, value in entries:
        if isinstance(value, Certificate):
            r, acc = certified_accuracy_curve(y_true, value, radii=radii)
        elif _is_curve(value):
            r, acc = (np.asarray(v, dtype=np.float64) for v in value)
        else:
            raise TypeError(
                "Expected a Certificate or a (radii, accuracies) pair, got "
                f"{type(value).__name__}."
            )
        ax.plot(r, acc, label=label, **plot_kwargs)
    ax.set_xlabel("l2 radius R")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=0.0)
    if any(label is not None for label, _ in entries):
        ax.legend()
    return ax


def _class_index(values, classes):
    """Positions of ``values`` in ``classes`` (-1 when absent)."""
    values = np.asarray(values)
    out = np.full(values.shape, -1, dtype=int)
    for i, c in enumerate(classes):
        out[values == c] = i
    return out


def _background(estimator, points, background):
    """Class index of each grid point, or None."""
    from sklearn.pipeline import Pipeline

    if background == "none" or estimator is None:
        return None
    if background == "smoothed":
        return _class_index(estimator.predict(points), estimator.classes_)
    # "base": the base model's prediction, through any preprocessing
    if isinstance(estimator, Pipeline):
        points = estimator[:-1].transform(points) if len(estimator) > 1 else points
        estimator = estimator[-1]
    if hasattr(estimator, "_adapter"):  # a smoothing estimator: fast, index-valued path
        return estimator._adapter().labels(np.asarray(points, dtype=np.float64))
    return _class_index(estimator.predict(points), estimator.classes_)


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
    cmap="coolwarm",
):
    """Decision regions, certified ellipses and inscribed balls of 2-D inputs.

    Parameters
    ----------
    estimator_or_certificate : estimator or Certificate
        A fitted :class:`SmoothedClassifier`, :class:`CertifiedRegion` or a
        Pipeline ending in one (``X`` is then certified with
        :func:`smoothcert.certify`, unless ``certificate`` is given), or a
        :class:`Certificate` (drawn without background).
    X : array-like of shape (n_samples, 2), default=None
        The inputs; defaults to the certificate's centres.
    y : array-like of shape (n_samples,), default=None
        True labels, used to colour the points (predictions otherwise).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when ``None``.
    certificate : Certificate, default=None
        A precomputed certificate of ``X`` for an estimator (avoids certifying
        again).
    background : {"base", "smoothed", "none"}, default="base"
        Decision regions on a grid: the base model's prediction (cheap), the
        smoothed classifier's ``predict`` (``grid_resolution**2`` Monte-Carlo
        predictions: slow), or none.
    grid_resolution : int, default=200
        Grid points per axis of the background.
    show_balls : bool, default=True
        Draw each certified input's largest inscribed l2 ball (dashed).
    max_regions : int, default=None
        Draw the regions of at most this many inputs (the first certified
        ones); every input is still drawn as a point.
    margin : float, default=0.15
        Extra space around the inputs, as a fraction of their range.
    cmap : str or Colormap, default="coolwarm"
        Colours of the classes.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import make_moons
    >>> from smoothcert import SmoothedClassifier
    >>> from smoothcert.plotting import plot_certified_regions
    >>> X, y = make_moons(40, noise=0.1, random_state=0)
    >>> clf = SmoothedClassifier(n_samples=200, random_state=0).fit(X, y)
    >>> ax = plot_certified_regions(clf, X[:10], y[:10], grid_resolution=50)
    """
    mpl = _matplotlib()
    from matplotlib.collections import EllipseCollection

    if background not in ("base", "smoothed", "none"):
        raise ValueError(
            f"background must be 'base', 'smoothed' or 'none', got {background!r}."
        )
    if isinstance(estimator_or_certificate, Certificate):
        estimator, cert = None, estimator_or_certificate
        if X is not None and not np.allclose(np.asarray(X, dtype=np.float64), cert.center):
            raise ValueError("X must be the inputs of the certificate.")
    else:
        estimator = estimator_or_certificate
        if X is None:
            raise ValueError("X is required to plot the regions of an estimator.")
        if certificate is None:
            from .._certify._pullback import certify

            certificate = certify(estimator, X)
        cert = certificate
    points = cert.center
    if points.shape[1] != 2:
        raise ValueError(f"plot_certified_regions needs 2-D inputs, got {points.shape[1]} features.")
    if y is not None and len(y) != len(cert):
        raise ValueError(f"y has {len(y)} labels for {len(cert)} inputs.")
    classes = (
        np.asarray(estimator.classes_)
        if estimator is not None and hasattr(estimator, "classes_")
        else np.unique(np.concatenate([cert.prediction, np.asarray(y if y is not None else [])]))
    )
    ax = _get_ax(ax)
    colormap = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
    n_classes = max(len(classes), 2)

    def colour(idx):
        return colormap(np.asarray(idx) / (n_classes - 1))

    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = margin * np.maximum(hi - lo, 1e-12)
    lo, hi = lo - pad, hi + pad
    if estimator is not None and background != "none":
        xx, yy = np.meshgrid(
            np.linspace(lo[0], hi[0], grid_resolution), np.linspace(lo[1], hi[1], grid_resolution)
        )
        flat = np.c_[xx.ravel(), yy.ravel()]
        grid = _background(estimator, flat, background)
        ax.contourf(
            xx, yy, grid.reshape(xx.shape), levels=np.arange(n_classes + 1) - 0.5,
            cmap=colormap, vmin=0, vmax=n_classes - 1, alpha=0.25,
        )
    rows = np.flatnonzero(cert.certified)
    if max_regions is not None:
        rows = rows[:max_regions]
    if rows.size:
        w, v = np.linalg.eigh(cert.covariance[rows])
        r = cert.mahalanobis_radius[rows]
        major = v[:, :, 1]
        angles = np.degrees(np.arctan2(major[:, 1], major[:, 0]))
        pred_idx = _class_index(cert.prediction[rows], classes)
        face = colour(pred_idx)
        edge = face.copy()
        face[:, 3], edge[:, 3] = 0.12, 0.9
        ax.add_collection(
            EllipseCollection(
                2 * r * np.sqrt(w[:, 1]), 2 * r * np.sqrt(w[:, 0]), angles, units="xy",
                offsets=points[rows], offset_transform=ax.transData,
                facecolors=face, edgecolors=edge, linewidths=1.0,
            )
        )
        if show_balls:
            diam = 2 * cert.radius[rows]
            ax.add_collection(
                EllipseCollection(
                    diam, diam, np.zeros(rows.size), units="xy", offsets=points[rows],
                    offset_transform=ax.transData, facecolors="none", edgecolors="0.25",
                    linewidths=0.6, linestyles="--",
                )
            )
    labels_idx = _class_index(cert.prediction if y is None else np.asarray(y), classes)
    ok = cert.certified
    ax.scatter(*points[ok].T, c=colour(labels_idx[ok]), edgecolors="k", s=18, zorder=3)
    if (~ok).any():
        ax.scatter(*points[~ok].T, c="k", marker="x", s=24, zorder=3, label="abstained")
        ax.legend(loc="best")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    return ax
