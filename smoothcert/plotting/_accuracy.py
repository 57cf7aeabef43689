"""Certified accuracy against the l2 radius: :class:`CertifiedAccuracyDisplay`."""

import weakref
from numbers import Integral

import numpy as np

from ._base import _check_certificate, _get_axes, check_matplotlib_support

__all__ = ["CertifiedAccuracyDisplay"]


#: The default grid runs this far past the largest certified radius, so that every
#: curve visibly ends at 0.
GRID_MARGIN = 1.05

#: Per axes, the curves drawn there on a default grid (see ``_shared_grid``).
_DEFAULT_GRID_CURVES = weakref.WeakKeyDictionary()


def _default_grid(top, n_radii):
    """``n_radii`` radii from 0 to a little past ``top``: the curve's last value is 0."""
    end = GRID_MARGIN * top if top > 0 else 1.0
    return np.linspace(0.0, end, n_radii)


def _shared_grid(ax, display, top, n_radii):
    """Draw ``display`` and the earlier default-grid curves of ``ax`` on one grid.

    The grid runs past the largest certified radius of all of them; the
    earlier curves are recomputed on it (their line data updated).
    """
    curves = [d for d in _DEFAULT_GRID_CURVES.get(ax, []) if d.line_.axes is ax]
    top = max([top, *(d._top for d in curves)])
    n_radii = max([n_radii, *(len(d.radii) for d in curves)])
    radii = _default_grid(top, n_radii)
    for other in curves:
        if len(other.radii) != len(radii) or not np.array_equal(other.radii, radii):
            other.radii, other.accuracies = radii, other._curve(radii)
            other.line_.set_data(radii, other.accuracies)
    _DEFAULT_GRID_CURVES[ax] = [*curves, display]
    return radii


def _estimator_name(estimator):
    """Class name of a smoothing estimator, or of the last step of a pipeline."""
    steps = getattr(estimator, "steps", None)
    if steps:
        estimator = steps[-1][1]
    return type(estimator).__name__


class CertifiedAccuracyDisplay:
    """Certified accuracy curve: the fraction of inputs certified at each l2 radius.

    The curve is :func:`~smoothcert.certified_accuracy_curve`: at radius ``R``,
    the fraction of inputs that are certified, correctly classified and whose
    ball ``B2(x, R)`` lies inside their certified region. It is non-increasing;
    its value at ``R = 0`` is the accuracy of the smoothed classifier with
    abstentions counted as errors.

    The curve measures the guarantee of the certificate it is drawn from
    (``Certificate.guarantee``): ``"fixed-noise"`` radii hold for the smoothed
    classifier's own ``predict``; ``"per-covariance"`` radii (data-dependent
    :class:`~smoothcert.CertifiedRegion`) hold for the classifier smoothed with
    each input's own covariance, not for the deployed classifier.

    Create it with :meth:`from_estimator` (certifies ``X``) or
    :meth:`from_certificate` (uses a certificate you already have); the
    constructor takes a precomputed curve. All parameters are stored as
    attributes. To draw several curves on one axis, pass the same ``ax`` to
    each: curves drawn with the default radii share one grid, which runs past
    the largest certified radius of all of them, so that every curve ends at 0
    (a later curve with larger radii extends the grid of the earlier ones).

    Parameters
    ----------
    radii : array-like of shape (n_radii,)
        The l2 radii, non-negative.
    accuracies : array-like of shape (n_radii,)
        Certified accuracy at each radius, in [0, 1].
    name : str, default=None
        Label of the curve in the legend; no legend entry when ``None``.

    Attributes
    ----------
    line_ : matplotlib.lines.Line2D
        The curve.
    ax_ : matplotlib.axes.Axes
        Axes holding the curve.
    figure_ : matplotlib.figure.Figure
        Figure holding the axes.

    See Also
    --------
    smoothcert.certified_accuracy_curve : The values of the curve.
    CertifiedRegionsDisplay : The certified regions of 2-D inputs.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from smoothcert.plotting import CertifiedAccuracyDisplay
    >>> display = CertifiedAccuracyDisplay(
    ...     radii=[0.0, 0.5, 1.0], accuracies=[0.9, 0.6, 0.1], name="fixed noise")
    >>> display = display.plot()
    >>> display.line_.get_ydata()
    array([0.9, 0.6, 0.1])
    >>> display.ax_.get_xlabel()
    'l2 radius R'
    """

    def __init__(self, *, radii, accuracies, name=None):
        radii = np.asarray(radii, dtype=np.float64)
        accuracies = np.asarray(accuracies, dtype=np.float64)
        if radii.ndim != 1 or radii.size == 0:
            raise ValueError(f"radii must be a non-empty 1-D array, got shape {radii.shape}.")
        if accuracies.shape != radii.shape:
            raise ValueError(
                f"accuracies must have the shape of radii {radii.shape}, got {accuracies.shape}."
            )
        if np.any(~np.isfinite(radii)) or np.any(radii < 0):
            raise ValueError("radii must be finite and non-negative.")
        if np.any(~(accuracies >= 0) | ~(accuracies <= 1)):
            raise ValueError("accuracies must lie in [0, 1].")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}.")
        self.radii = radii
        self.accuracies = accuracies
        self.name = name

    def plot(self, ax=None, *, name=None, **kwargs):
        """Draw the curve.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when ``None``. Pass the axes of
            another display to draw several curves together.
        name : str, default=None
            Legend label; overrides the ``name`` of the display.
        **kwargs
            Passed to :meth:`matplotlib.axes.Axes.plot` (``color``, ``lw``,
            ``ls``, ...).

        Returns
        -------
        display : CertifiedAccuracyDisplay
            This display, with ``line_``, ``ax_`` and ``figure_`` set.
        """
        ax = _get_axes(ax, f"{type(self).__name__}.plot")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}.")
        name = self.name if name is None else name
        if name is not None:
            kwargs.setdefault("label", name)
        (self.line_,) = ax.plot(self.radii, self.accuracies, **kwargs)
        ax.set_xlabel("l2 radius R")
        ax.set_ylabel("certified accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=0.0)
        if "label" in kwargs:
            ax.legend(loc="upper right")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(
        cls, estimator, X, y, *, radii=None, sample_weight=None, name=None, ax=None, **kwargs
    ):
        """Certify ``X`` and draw the certified accuracy curve.

        ``X`` is certified with :func:`smoothcert.certify`, so a
        :class:`~sklearn.pipeline.Pipeline` ending in a smoothing estimator
        gives the curve at raw-space radii.

        Parameters
        ----------
        estimator : fitted estimator
            A :class:`~smoothcert.SmoothedClassifier`, a
            :class:`~smoothcert.CertifiedRegion`, or a pipeline ending in one.
        X : array-like of shape (n_samples, n_features)
            Inputs to certify.
        y : array-like of shape (n_samples,)
            Their true labels.
        radii : int or array-like of shape (n_radii,), default=None
            Radii of the curve: ``None`` for 100 radii from 0 to a little
            past the largest certified radius (5 % further), so that the curve
            ends at 0; an int for that many. Curves drawn on one ``ax`` with
            ``None`` or an int share one grid, extended to the largest radius
            of them all; an array is used as given.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the inputs.
        name : str, default=None
            Legend label; the estimator's class name (of the last step of a
            pipeline) when ``None``.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when ``None``.
        **kwargs
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : CertifiedAccuracyDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.datasets import make_moons
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.preprocessing import StandardScaler
        >>> from smoothcert import SmoothedClassifier
        >>> from smoothcert.plotting import CertifiedAccuracyDisplay
        >>> X, y = make_moons(60, noise=0.1, random_state=0)
        >>> pipe = make_pipeline(
        ...     StandardScaler(), SmoothedClassifier(n_samples=200, random_state=0)).fit(X, y)
        >>> display = CertifiedAccuracyDisplay.from_estimator(pipe, X[:20], y[:20])
        >>> display.line_.get_label()  # the class of the pipeline's last step
        'SmoothedClassifier'
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        from .._certify._pullback import certify

        certificate = certify(estimator, X)
        return cls.from_certificate(
            certificate,
            y,
            radii=radii,
            sample_weight=sample_weight,
            name=_estimator_name(estimator) if name is None else name,
            ax=ax,
            **kwargs,
        )

    @classmethod
    def from_certificate(
        cls, certificate, y, *, radii=None, sample_weight=None, name=None, ax=None, **kwargs
    ):
        """Draw the certified accuracy curve of a certificate.

        Parameters
        ----------
        certificate : Certificate
            Certificate of the inputs, from ``certify``.
        y : array-like of shape (n_samples,)
            True labels of the certified inputs.
        radii, sample_weight
            As in :meth:`from_estimator`.
        name : str, default=None
            Legend label; no legend entry when ``None``.
        ax, **kwargs
            As in :meth:`from_estimator`.

        Returns
        -------
        display : CertifiedAccuracyDisplay
            Drawn by :meth:`plot`; its ``radii`` are those of the curve.

        Examples
        --------
        Two curves on one axis, on one grid of radii (the certificate is made
        of plain lists here; ``certify`` makes one in practice):

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from smoothcert import Certificate
        >>> from smoothcert.plotting import CertifiedAccuracyDisplay
        >>> cert = Certificate(
        ...     center=[[0.0, 0.0]] * 3, prediction=[0, 1, 1], abstained=[False, False, True],
        ...     covariance=[0.25] * 3, mahalanobis_radius=[1.0, 2.0, 0.0],
        ...     p_lower=[0.84, 0.98, 0.4], alpha=0.001)
        >>> radii = [0.0, 0.5, 1.0, 1.5]
        >>> first = CertifiedAccuracyDisplay.from_certificate(
        ...     cert, [0, 1, 1], radii=radii, name="cert")
        >>> first.accuracies.round(3)
        array([0.667, 0.667, 0.333, 0.   ])
        >>> second = CertifiedAccuracyDisplay.from_certificate(
        ...     cert[:2], [0, 1], radii=radii, name="first two", ax=first.ax_)
        >>> [line.get_label() for line in first.ax_.get_lines()]
        ['cert', 'first two']
        """
        check_matplotlib_support(f"{cls.__name__}.from_certificate")
        from ..metrics import DEFAULT_N_RADII, certified_accuracy_curve

        _check_certificate(certificate)
        if y is None:
            raise ValueError(
                "y (the true labels) is required: the certified accuracy counts the "
                "correctly classified inputs."
            )
        if np.ndim(y) != 1 or len(y) != len(certificate):
            raise ValueError(
                f"y must hold one label per certified input ({len(certificate)}), got "
                f"shape {np.shape(y)}."
            )
        if radii is None or isinstance(radii, Integral):
            if radii is not None and radii < 1:
                raise ValueError(f"radii must be a positive int or an array, got {radii!r}.")
            n_radii = DEFAULT_N_RADII if radii is None else int(radii)
            top = float(certificate.radius[certificate.certified].max(initial=0.0))
            radii = _default_grid(top, n_radii)
            shared = True
        else:
            shared = False
        r, acc = certified_accuracy_curve(y, certificate, radii=radii, sample_weight=sample_weight)
        display = cls(radii=r, accuracies=acc, name=name)
        display = display.plot(ax=ax, **kwargs)
        if shared:
            display._top = top
            display._curve = lambda grid: certified_accuracy_curve(
                y, certificate, radii=grid, sample_weight=sample_weight
            )[1]
            grid = _shared_grid(display.ax_, display, top, n_radii)
            if not np.array_equal(grid, display.radii):
                display.radii, display.accuracies = grid, display._curve(grid)
                display.line_.set_data(grid, display.accuracies)
            # up to the end of the grid (or of a longer curve drawn with given radii)
            ends = [np.max(line.get_xdata()) for line in display.ax_.get_lines()
                    if len(line.get_xdata())]
            right = max([float(grid[-1]), *ends])
            display.ax_.set_xlim(0.0, right)
        return display
