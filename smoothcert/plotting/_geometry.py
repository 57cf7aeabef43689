"""Helpers of the regions display: checks, plot extent, background grid, colours, ellipses."""

from numbers import Integral, Real

import numpy as np


def _check_2d(n_features, what):
    if n_features != 2:
        raise ValueError(
            f"CertifiedRegionsDisplay draws 2-D inputs only: {what} has {n_features} "
            "features, expected 2."
        )


def _check_labels(y, n, what="y"):
    if y is None:
        return None
    if np.ndim(y) != 1 or len(y) != n:
        raise ValueError(f"{what} must hold one label per input ({n}), got shape {np.shape(y)}.")
    return np.asarray(y)


def _extent(points, margin):
    """(x_min, x_max, y_min, y_max): the range of ``points`` plus ``margin`` of it."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = margin * np.maximum(hi - lo, 1e-12)
    pad = np.where(hi - lo > 0, pad, 1.0)  # a single point: a unit window around it
    lo, hi = lo - pad, hi + pad
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


def _grid(extent, grid_resolution):
    x0, x1, y0, y1 = extent
    return np.meshgrid(
        np.linspace(x0, x1, grid_resolution), np.linspace(y0, y1, grid_resolution)
    )


def _as_model_input(points, estimator):
    """Grid points as the estimator saw its training data (a DataFrame if it had names)."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return points
    import pandas as pd  # fitted on a DataFrame: pandas is there

    return pd.DataFrame(points, columns=list(names))


def _background_labels(estimator, points, background):
    """Labels of the grid ``points``: the base model's or the smoothed prediction."""
    if background == "smoothed":
        return np.asarray(estimator.predict(_as_model_input(points, estimator)))
    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    if not hasattr(final, "predict_base"):
        raise TypeError(
            "background='base' needs a smoothing estimator with a predict_base method "
            f"(or a pipeline ending in one), got {type(final).__name__}; use "
            "background='smoothed' or 'none'."
        )
    Z = _as_model_input(points, estimator)
    if steps and len(steps) > 1:
        Z = estimator[:-1].transform(Z)
    return np.asarray(final.predict_base(Z))


def _select_colors(colors, n_classes):
    """RGBA colours of the classes: a qualitative palette unless told otherwise."""
    import matplotlib as mpl

    if colors is None:
        colors = "tab10" if n_classes <= 10 else "tab20" if n_classes <= 20 else "turbo"
    if isinstance(colors, str):
        try:
            cmap = mpl.colormaps[colors]
        except KeyError:
            raise ValueError(
                f"colors must be a matplotlib colormap name or a list of colours, got "
                f"{colors!r}."
            ) from None
        if isinstance(cmap, mpl.colors.ListedColormap) and cmap.N >= n_classes:
            return mpl.colors.to_rgba_array(cmap.colors[:n_classes])
        return cmap(np.linspace(0.0, 1.0, n_classes))
    colors = list(colors)
    if len(colors) != n_classes:
        raise ValueError(f"colors must hold one colour per class ({n_classes}), got {len(colors)}.")
    if not all(mpl.colors.is_color_like(c) for c in colors):
        raise ValueError(f"colors holds values that are not matplotlib colours: {colors!r}.")
    return mpl.colors.to_rgba_array(colors)


def _class_label(c):
    return f"class {c}" if isinstance(c, (Integral, Real, np.number, np.bool_)) else str(c)


def _ellipse_params(certificate, rows, matrices=None, radii=None):
    """Widths, heights (full axis lengths) and angles in degrees of the ellipses.

    Those of the class ellipses by default; of ``{d : d^T M^-1 d <= r^2}`` for
    other ``matrices`` ``M`` of the rows and ``radii`` ``r`` (selection regions).
    """
    w, v = np.linalg.eigh(certificate.covariance[rows] if matrices is None else matrices)
    r = certificate.mahalanobis_radius[rows] if radii is None else radii
    w = np.maximum(w, 0.0)
    major = v[:, :, 1]  # eigenvector of the largest eigenvalue
    angles = np.degrees(np.arctan2(major[:, 1], major[:, 0]))
    return 2 * r * np.sqrt(w[:, 1]), 2 * r * np.sqrt(w[:, 0]), angles
