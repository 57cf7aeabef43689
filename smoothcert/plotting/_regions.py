"""Certified regions of 2-D inputs: :class:`CertifiedRegionsDisplay`."""

from numbers import Integral, Real

import numpy as np

from .._certify._certificate import embed_matrices
from ._base import _check_certificate, _class_index, _get_axes, check_matplotlib_support
from ._geometry import (
    _check_2d,
    _check_labels,
    _extent,
    _grid,
    _background_labels,
    _select_colors,
    _class_label,
    _ellipse_params,
)

__all__ = ["CertifiedRegionsDisplay"]

BACKGROUNDS = ("base", "smoothed", "none")


class CertifiedRegionsDisplay:
    """Certified regions of 2-D inputs, their inscribed balls and decision regions.

    For each certified input ``x``, the ellipse ``{x + d : d^T Sigma^-1 d <=
    r^2}`` of its :class:`~smoothcert.Certificate` (coloured by the predicted
    class; for a certificate of the deployed classifier of
    :class:`~smoothcert.CertifiedRegion`, its intersection with the selection
    region, whose boundary is drawn dotted), the largest l2 ball inside it
    (dashed; its radius is :attr:`Certificate.radius`, what certified accuracy
    checks), the input
    itself (coloured by its true label when given), a cross for each
    abstention, and optionally the decision regions of the model in the
    background.

    Create it with :meth:`from_estimator` (certifies ``X``) or
    :meth:`from_certificate` (uses a certificate you already have); the
    constructor takes precomputed data. All parameters are stored as
    attributes.

    Parameters
    ----------
    certificate : Certificate
        Certificate of 2-D inputs (its ``center`` are the inputs).
    classes : array-like of shape (n_classes,)
        The class labels, in colour order (an estimator's ``classes_``).
    y : array-like of shape (n_samples,), default=None
        True labels of the inputs, which colour the points; the predictions
        colour them when ``None``.
    xx0, xx1 : ndarray of shape (n_grid_y, n_grid_x), default=None
        Grid of the background (outputs of :func:`numpy.meshgrid`).
    response : ndarray of shape (n_grid_y, n_grid_x), default=None
        Index in ``classes`` of the prediction at each grid point; no
        background when ``None``.
    extent : tuple of 4 floats, default=None
        ``(x_min, x_max, y_min, y_max)`` of the view; the range of the grid,
        or of the inputs plus 15 % of it, when ``None``.
    xlabel, ylabel : str, default=None
        Axis labels; ``"x1"`` and ``"x2"`` when ``None``.

    Attributes
    ----------
    ellipses_ : matplotlib.collections.EllipseCollection or None
        The certified regions (``None`` when no region is drawn).
    balls_ : matplotlib.collections.EllipseCollection or None
        The largest l2 balls inside the regions, dashed (``None`` when
        ``show_balls=False`` or no region is drawn).
    selections_ : matplotlib.collections.EllipseCollection or None
        Certificates with a selection region (``guarantee="deployed"``, see
        :class:`~smoothcert.Certificate`): the boundaries of the selection
        regions, dotted. The certified region is the intersection of the
        class ellipse (:attr:`ellipses_`, then drawn as an outline) and the
        selection region. ``None`` for other certificates.
    intersections_ : list of matplotlib.patches.Ellipse or None
        With selection regions: the certified regions shaded, each class
        ellipse filled and clipped to its selection region (the
        intersection), one per drawn region. ``None`` for other certificates.
    points_ : matplotlib.collections.PathCollection or None
        The certified inputs (``None`` when every input abstained).
    abstained_ : matplotlib.collections.PathCollection or None
        The inputs where the smoothed classifier abstains, drawn as crosses
        (``None`` when there is none).
    surface_ : matplotlib.contour.QuadContourSet or None
        The decision regions in the background (``None`` without background).
    legend_ : matplotlib.legend.Legend or None
        Legend of the classes, regions, balls and abstentions (``None`` when
        ``legend=False``).
    class_colors_ : ndarray of shape (n_classes, 4)
        RGBA colour of each class.
    ax_ : matplotlib.axes.Axes
        Axes of the plot.
    figure_ : matplotlib.figure.Figure
        Figure holding the axes.

    See Also
    --------
    CertifiedAccuracyDisplay : The certified accuracy against the radius.
    smoothcert.certify : Certificates of estimators and pipelines.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from smoothcert import Certificate
    >>> from smoothcert.plotting import CertifiedRegionsDisplay
    >>> cert = Certificate(
    ...     center=np.array([[0.0, 0.0], [2.0, 1.0], [1.0, 2.0]]),
    ...     prediction=np.array([0, 1, 1]), abstained=np.array([False, False, True]),
    ...     covariance=np.array([[1.0, 0.25], [0.25, 0.25], [0.5, 0.5]]),
    ...     mahalanobis_radius=np.array([0.8, 1.2, 0.0]),
    ...     p_lower=np.array([0.79, 0.88, 0.4]), alpha=0.001)
    >>> display = CertifiedRegionsDisplay(certificate=cert, classes=[0, 1]).plot()
    >>> display.ellipses_.get_widths()
    array([1.6, 1.2])
    >>> display.balls_.get_widths()
    array([0.8, 1.2])
    >>> [t.get_text() for t in display.legend_.get_texts()]
    ['class 0', 'class 1', 'certified region', 'inscribed l2 ball', 'abstained']
    """

    def __init__(
        self,
        *,
        certificate,
        classes,
        y=None,
        xx0=None,
        xx1=None,
        response=None,
        extent=None,
        xlabel=None,
        ylabel=None,
    ):
        _check_certificate(certificate)
        _check_2d(certificate.n_features, "the certificate")
        classes = np.asarray(classes)
        if classes.ndim != 1 or classes.size == 0:
            raise ValueError(f"classes must be a non-empty 1-D array, got shape {classes.shape}.")
        y = _check_labels(y, len(certificate))
        _class_index(certificate.prediction[certificate.certified], classes, "the prediction")
        if y is not None:
            _class_index(y, classes, "y")
        if response is not None:
            response = np.asarray(response)
            if xx0 is None or xx1 is None:
                raise ValueError("xx0 and xx1 (the grid) are required with a response.")
            xx0, xx1 = np.asarray(xx0, dtype=np.float64), np.asarray(xx1, dtype=np.float64)
            if not (xx0.ndim == 2 and xx0.shape == xx1.shape == response.shape):
                raise ValueError(
                    "xx0, xx1 and response must be 2-D arrays of one shape, got "
                    f"{xx0.shape}, {xx1.shape} and {response.shape}."
                )
            if np.any((response < 0) | (response >= classes.size)):
                raise ValueError(
                    f"response must hold class indices in [0, {classes.size}), the "
                    "positions of the predictions in classes."
                )
        if extent is not None:
            extent = tuple(float(v) for v in extent)
            if len(extent) != 4 or not (extent[0] < extent[1] and extent[2] < extent[3]):
                raise ValueError(
                    f"extent must be (x_min, x_max, y_min, y_max) with min < max, got {extent}."
                )
        self.certificate = certificate
        self.classes = classes
        self.y = y
        self.xx0 = xx0
        self.xx1 = xx1
        self.response = response
        self.extent = extent
        self.xlabel = xlabel
        self.ylabel = ylabel

    def plot(
        self, ax=None, *, name=None, max_regions=None, show_balls=True, colors=None, legend=True,
        **kwargs,
    ):
        """Draw the regions, balls, points and background.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when ``None``.
        name : str, default=None
            Title of the axes (for example the name of the method); the
            title is left as it is when ``None``.
        max_regions : int, default=None
            Draw the regions of at most this many inputs (the first certified
            ones); every input is still drawn as a point.
        show_balls : bool, default=True
            Draw each region's largest inscribed l2 ball, dashed (a segment
            along the noisy column when the certificate's ``noise_features``
            holds one of the two; the regions are then segments too).
        colors : str or list of colours, default=None
            Colours of the classes: a matplotlib colormap name (the first
            colours of a qualitative one such as ``"tab10"``, else evenly
            spaced) or one colour per class. ``None`` uses ``"tab10"`` (up to
            10 classes), whose classes are all clearly coloured.
        legend : bool, default=True
            Add a legend of the classes, the regions, the inscribed balls and
            the abstentions.
        **kwargs
            Passed to the :class:`~matplotlib.collections.EllipseCollection`
            of the regions (``linewidths``, ``alpha``, ...).

        Returns
        -------
        display : CertifiedRegionsDisplay
            This display, with the artists, ``ax_`` and ``figure_`` set.
        """
        ax = _get_axes(ax, f"{type(self).__name__}.plot")
        from matplotlib.collections import EllipseCollection
        from matplotlib.colors import ListedColormap
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        if max_regions is not None and (
            not isinstance(max_regions, Integral) or isinstance(max_regions, bool)
            or max_regions < 0
        ):
            raise ValueError(
                f"max_regions must be a non-negative int or None, got {max_regions!r}."
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}.")
        cert = self.certificate
        classes = self.classes
        n_classes = classes.size
        self.class_colors_ = _select_colors(colors, n_classes)
        points = cert.center

        self.surface_ = None
        if self.response is not None:
            self.surface_ = ax.contourf(
                self.xx0, self.xx1, self.response, levels=np.arange(n_classes + 1) - 0.5,
                cmap=ListedColormap(self.class_colors_), vmin=-0.5, vmax=n_classes - 0.5,
                alpha=0.2, zorder=0, antialiased=True,
            )

        rows = np.flatnonzero(cert.certified)
        if max_regions is not None:
            rows = rows[:max_regions]
        self.ellipses_ = self.balls_ = self.selections_ = self.intersections_ = None
        selected = cert.selection_covariances is not None
        if rows.size:
            widths, heights, angles = _ellipse_params(cert, rows)
            colour = self.class_colors_[_class_index(cert.prediction[rows], classes, "prediction")]
            face, edge = colour.copy(), colour.copy()
            face[:, 3], edge[:, 3] = 0.12, 0.9
            if selected:
                # the region is an intersection: the class ellipse is an outline,
                # the intersection is shaded below
                face[:, 3] = 0.0
            style = {"facecolors": face, "edgecolors": edge, "linewidths": 1.0, "zorder": 1}
            style.update(kwargs)
            self.ellipses_ = ax.add_collection(
                EllipseCollection(
                    widths, heights, angles, units="xy", offsets=points[rows],
                    offset_transform=ax.transData, **style,
                ),
                autolim=False,
            )
            if selected:
                self._draw_selection(ax, rows, (widths, heights, angles), colour)
            if show_balls:
                diameters = 2 * cert.radius[rows]
                # with noise on one column only, the "ball" is a segment along it
                noisy = np.ones(2) if cert.noise_features is None else np.isin([0, 1], cert.noise_features)
                self.balls_ = ax.add_collection(
                    EllipseCollection(
                        diameters * noisy[0], diameters * noisy[1], np.zeros(rows.size), units="xy",
                        offsets=points[rows], offset_transform=ax.transData,
                        facecolors="none", edgecolors="0.2", linewidths=0.8,
                        linestyles="--", zorder=2,
                    ),
                    autolim=False,
                )

        labels = cert.prediction if self.y is None else self.y
        ok = cert.certified
        self.points_ = self.abstained_ = None
        if ok.any():
            idx = _class_index(labels[ok], classes, "y" if self.y is not None else "prediction")
            self.points_ = ax.scatter(
                *points[ok].T, c=self.class_colors_[idx], edgecolors="k", linewidths=0.6,
                s=20, zorder=3,
            )
        if (~ok).any():
            self.abstained_ = ax.scatter(
                *points[~ok].T, c="k", marker="x", s=28, linewidths=1.2, zorder=3,
                label="abstained",
            )

        x0, x1, y0, y1 = self._view_extent()
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_xlabel("x1" if self.xlabel is None else self.xlabel)
        ax.set_ylabel("x2" if self.ylabel is None else self.ylabel)
        if name is not None:
            ax.set_title(name)

        self.legend_ = None
        if legend:
            handles = [
                Line2D([], [], ls="none", marker="o", markerfacecolor=c, markeredgecolor="k",
                       markeredgewidth=0.6, label=_class_label(label))
                for c, label in zip(self.class_colors_, classes)
            ]
            if self.ellipses_ is not None and self.selections_ is not None:
                handles += [
                    Patch(facecolor=(0.5, 0.5, 0.5, 0.3), edgecolor="none",
                          label="certified region (intersection)"),
                    Patch(facecolor="none", edgecolor="0.35", label="class ellipse"),
                    Line2D([], [], color="0.15", ls=":", lw=1.2, label="selection region"),
                ]
            elif self.ellipses_ is not None:
                handles.append(
                    Patch(facecolor=(0.5, 0.5, 0.5, 0.15), edgecolor="0.35",
                          label="certified region")
                )
            if self.balls_ is not None:
                handles.append(Line2D([], [], color="0.2", ls="--", lw=0.8,
                                      label="inscribed l2 ball"))
            if self.abstained_ is not None:
                handles.append(self.abstained_)
            self.legend_ = ax.legend(handles=handles, loc="best", fontsize="small",
                                     framealpha=0.85)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    def _draw_selection(self, ax, rows, class_ellipses, colour):
        """The selection regions (dotted outlines) and the shaded intersections.

        A row whose selection is unconstrained (infinite selection radius: every
        member certifies the class) has no selection boundary; its certified
        region is its class ellipse, shaded whole.
        """
        from matplotlib.collections import EllipseCollection
        from matplotlib.patches import Ellipse

        cert = self.certificate
        r_h = cert.selection_mahalanobis_radius[rows]
        finite = np.isfinite(r_h)
        matrices = cert.selection_covariances.matrices()[rows]
        if matrices.shape[-1] != cert.n_features:
            # selection noise on the columns noise_features only: zero elsewhere
            matrices = embed_matrices(matrices, cert.noise_features, cert.n_features)
        widths, heights, angles = _ellipse_params(
            cert, rows, matrices=matrices, radii=np.where(finite, r_h, 0.0)
        )
        points = cert.center[rows]
        self.selections_ = ax.add_collection(
            EllipseCollection(
                widths[finite], heights[finite], angles[finite], units="xy",
                offsets=points[finite], offset_transform=ax.transData, facecolors="none",
                edgecolors="0.15", linewidths=1.2, linestyles=":", zorder=1.5,
            ),
            autolim=False,
        )
        shade = colour.copy()
        shade[:, 3] = 0.3
        self.intersections_ = []
        for i, centre in enumerate(points):
            region = Ellipse(centre, class_ellipses[0][i], class_ellipses[1][i],
                             angle=class_ellipses[2][i], facecolor=shade[i], edgecolor="none",
                             zorder=0.9)
            ax.add_patch(region)
            if finite[i]:
                region.set_clip_path(Ellipse(centre, widths[i], heights[i], angle=angles[i],
                                             transform=ax.transData))
            self.intersections_.append(region)

    def _view_extent(self):
        if self.extent is not None:
            return self.extent
        if self.xx0 is not None:
            return (float(self.xx0.min()), float(self.xx0.max()),
                    float(self.xx1.min()), float(self.xx1.max()))
        return _extent(self.certificate.center, 0.15)

    @classmethod
    def from_estimator(
        cls, estimator, X, y=None, *, background="base", grid_resolution=200, margin=0.15,
        xlabel=None, ylabel=None, name=None, ax=None, max_regions=None, show_balls=True,
        colors=None, legend=True, **kwargs,
    ):
        """Certify 2-D inputs and draw their certified regions.

        ``X`` is certified with :func:`smoothcert.certify`, so for a
        :class:`~sklearn.pipeline.Pipeline` ending in a smoothing estimator the
        regions are drawn in raw input space.

        Parameters
        ----------
        estimator : fitted estimator
            A :class:`~smoothcert.SmoothedClassifier`, a
            :class:`~smoothcert.CertifiedRegion`, or a pipeline ending in one.
        X : array-like of shape (n_samples, 2)
            Inputs to certify: exactly 2 features.
        y : array-like of shape (n_samples,), default=None
            True labels, which colour the points (the predictions when
            ``None``).
        background : {"base", "smoothed", "none"}, default="base"
            Decision regions drawn on a grid: the base model's prediction
            (``predict_base``, after the preprocessing of a pipeline; one
            base-model call per grid point), the smoothed classifier's
            ``predict`` (``grid_resolution**2`` Monte-Carlo predictions: slow),
            or none.
        grid_resolution : int, default=200
            Grid points per axis of the background.
        margin : float, default=0.15
            Space around the inputs, as a fraction of their range.
        xlabel, ylabel : str, default=None
            Axis labels; the estimator's ``feature_names_in_`` when it has
            them, else ``"x1"`` and ``"x2"``.
        name : str, default=None
            Title of the axes.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when ``None``.
        max_regions, show_balls, colors, legend, **kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : CertifiedRegionsDisplay
            Drawn by :meth:`plot`; its ``certificate`` is the one of ``X``.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.datasets import make_moons
        >>> from smoothcert import SmoothedClassifier
        >>> from smoothcert.plotting import CertifiedRegionsDisplay
        >>> X, y = make_moons(60, noise=0.1, random_state=0)
        >>> clf = SmoothedClassifier(n_samples=200, random_state=0).fit(X, y)
        >>> display = CertifiedRegionsDisplay.from_estimator(
        ...     clf, X[:10], y[:10], grid_resolution=50)
        >>> display.response.shape
        (50, 50)
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        from .._certify._pullback import certify

        cls._check_background(background)
        shape = np.shape(X)
        if len(shape) != 2:
            raise ValueError(f"X must be a 2-D array (n_samples, 2), got shape {shape}.")
        _check_2d(shape[1], "X")
        _check_labels(y, shape[0])
        certificate = certify(estimator, X)
        return cls.from_certificate(
            certificate, y, estimator=estimator, background=background,
            grid_resolution=grid_resolution, margin=margin, xlabel=xlabel, ylabel=ylabel,
            name=name, ax=ax, max_regions=max_regions, show_balls=show_balls, colors=colors,
            legend=legend, **kwargs,
        )

    @classmethod
    def from_certificate(
        cls, certificate, y=None, *, estimator=None, background=None, grid_resolution=200,
        margin=0.15, xlabel=None, ylabel=None, name=None, ax=None, max_regions=None,
        show_balls=True, colors=None, legend=True, **kwargs,
    ):
        """Draw the certified regions of a certificate of 2-D inputs.

        Parameters
        ----------
        certificate : Certificate
            Certificate of 2-D inputs, from ``certify``.
        y : array-like of shape (n_samples,), default=None
            True labels of the certified inputs, which colour the points (the
            predictions when ``None``).
        estimator : fitted estimator, default=None
            The estimator that made the certificate (a smoothing estimator or
            a pipeline ending in one): gives the classes, the background and
            the feature names.
        background : {"base", "smoothed", "none"}, default=None
            Decision regions of ``estimator`` (see :meth:`from_estimator`);
            ``None`` means ``"base"`` with an estimator and ``"none"`` without.
        grid_resolution, margin, xlabel, ylabel, name, ax
            As in :meth:`from_estimator` (without an estimator the axis labels
            default to ``"x1"`` and ``"x2"``).
        max_regions, show_balls, colors, legend, **kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : CertifiedRegionsDisplay
            Drawn by :meth:`plot`, with the classes of ``estimator`` (when it
            has them) or those seen in the predictions and ``y``.

        Examples
        --------
        Without an estimator there is no background, and the classes are
        those of the predictions and of ``y``:

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from smoothcert import Certificate
        >>> from smoothcert.plotting import CertifiedRegionsDisplay
        >>> cert = Certificate(
        ...     center=[[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], prediction=["a", "b", "c"],
        ...     abstained=[False] * 3, covariance=[0.5] * 3, mahalanobis_radius=[1.0] * 3,
        ...     p_lower=[0.84] * 3, alpha=0.001)
        >>> display = CertifiedRegionsDisplay.from_certificate(cert, ["a", "b", "b"])
        >>> display.response is None
        True
        >>> display.classes
        array(['a', 'b', 'c'], dtype='<U1')
        >>> display.abstained_ is None, display.ax_.get_xlabel()
        (True, 'x1')
        """
        check_matplotlib_support(f"{cls.__name__}.from_certificate")
        _check_certificate(certificate)
        _check_2d(certificate.n_features, "the certificate")
        y = _check_labels(y, len(certificate))
        if background is None:
            background = "none" if estimator is None else "base"
        cls._check_background(background)
        if background != "none" and estimator is None:
            raise ValueError(
                f"background={background!r} needs the estimator: pass estimator=..., or "
                "background='none'."
            )
        if (
            not isinstance(grid_resolution, Integral) or isinstance(grid_resolution, bool)
            or grid_resolution < 2
        ):
            raise ValueError(f"grid_resolution must be an int >= 2, got {grid_resolution!r}.")
        if not isinstance(margin, Real) or not np.isfinite(margin) or margin < 0:
            raise ValueError(f"margin must be a non-negative number, got {margin!r}.")

        if estimator is not None and hasattr(estimator, "classes_"):
            classes = np.asarray(estimator.classes_)
        else:
            seen = [certificate.prediction[certificate.certified]]
            if y is not None:
                seen.append(y)
            classes = np.unique(np.concatenate(seen)) if any(map(len, seen)) else np.array([0])
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None and len(names) == 2:
            xlabel = str(names[0]) if xlabel is None else xlabel
            ylabel = str(names[1]) if ylabel is None else ylabel

        extent = _extent(certificate.center, margin)
        xx0 = xx1 = response = None
        if background != "none":
            xx0, xx1 = _grid(extent, grid_resolution)
            labels = _background_labels(estimator, np.c_[xx0.ravel(), xx1.ravel()], background)
            response = _class_index(labels, classes, "the background prediction").reshape(
                xx0.shape
            )
        display = cls(
            certificate=certificate, classes=classes, y=y, xx0=xx0, xx1=xx1,
            response=response, extent=extent, xlabel=xlabel, ylabel=ylabel,
        )
        return display.plot(
            ax=ax, name=name, max_regions=max_regions, show_balls=show_balls, colors=colors,
            legend=legend, **kwargs,
        )

    @staticmethod
    def _check_background(background):
        if background not in BACKGROUNDS:
            raise ValueError(
                f"background must be one of {BACKGROUNDS}, got {background!r}."
            )
