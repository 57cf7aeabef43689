"""The :class:`Certificate`: what ``certify(X)`` returns."""

import numpy as np
from scipy.special import gammaln

from .._geometry._forms import RowCovariances

__all__ = ["Certificate", "log_unit_ball_volume"]

GUARANTEES = ("per-covariance", "memory", "fixed-noise")


def log_unit_ball_volume(n_features):
    """Log-volume of the unit l2 ball in ``n_features`` dimensions."""
    d = float(n_features)
    return 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1.0)


class Certificate:
    """Per-input certified regions of a smoothed classifier.

    For each input ``x`` with noise covariance ``Sigma`` and Mahalanobis radius
    ``r``, the prediction of the smoothed classifier ``g_Sigma`` is constant on
    the ellipsoid ``{x + d : d^T Sigma^-1 d <= r^2}``, with probability at
    least ``1 - alpha`` over the Monte-Carlo draws.

    Parameters
    ----------
    center : ndarray of shape (n, d)
        The certified inputs.
    prediction : ndarray of shape (n,)
        Predicted labels (from the estimator's ``classes_``).
    abstained : ndarray of shape (n,), bool
        True where the smoothed classifier abstains (``p_lower <= 1/2``).
    covariances : RowCovariances
        Noise covariance of each row.
    mahalanobis_radius : ndarray of shape (n,)
        Radius ``r = Phi^-1(p_lower)`` in the metric of ``Sigma^-1``, 0 when
        abstaining.
    p_lower : ndarray of shape (n,)
        Lower confidence bound of the top-class probability.
    alpha : float
        Failure probability of each certificate.
    guarantee : {"per-covariance", "fixed-noise", "memory"}
        What the certificate covers: ``"fixed-noise"`` for a covariance that
        does not depend on the input (Cohen et al.), ``"per-covariance"`` for the
        classifier smoothed with this input's own covariance (data-dependent
        smoothing without memory), ``"memory"`` for the stateful classifier
        of memory-based certification.

    Attributes
    ----------
    center, prediction, abstained, covariances, mahalanobis_radius, p_lower, alpha, guarantee
        The parameters, as arrays.
    radius : ndarray of shape (n,)
        Radius of the largest l2 ball inside the ellipsoid,
        ``r * sqrt(lambda_min(Sigma))`` (comparable across methods and with
        Cohen et al.'s radius ``sigma * Phi^-1(p_lower)``).
    covariance : ndarray of shape (n, d, d)
        Dense covariance matrices (built on access from the compact form).
    certified : ndarray of shape (n,), bool
        ``~abstained``.
    log_volume : ndarray of shape (n,)
        Log-volume of each ellipsoid (``-inf`` where abstaining).
    proxy_radius : ndarray of shape (n,)
        ANCER's proxy radius ``r * det(Sigma)^(1/(2d))``.
    n_features : int
        Input dimension.
    search_info : dict
        Set by :meth:`CertifiedRegion.certify`: acceptance rates and seconds
        per iteration of the covariance search.
    from_memory, memory_index, shrunk : ndarray of shape (n,)
        Set by :meth:`CertificateMemory.process` (memory-based certificates).
    pullback_info : dict
        Set by :func:`smoothcert.certify` for certificates pulled back through
        preprocessing.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert import Certificate
    >>> from smoothcert._geometry._forms import RowCovariances
    >>> cert = Certificate(
    ...     center=np.zeros((2, 2)), prediction=np.array([0, 1]),
    ...     abstained=np.array([False, True]),
    ...     covariances=RowCovariances.isotropic([0.25, 0.25], 2),
    ...     mahalanobis_radius=np.array([2.0, 0.0]), p_lower=np.array([0.98, 0.4]),
    ...     alpha=0.001)
    >>> cert.radius
    array([1., 0.])
    >>> cert.contains_ball(0.5)
    array([ True, False])
    """

    def __init__(
        self,
        *,
        center,
        prediction,
        abstained,
        covariances,
        mahalanobis_radius,
        p_lower,
        alpha,
        guarantee="per-covariance",
    ):
        if guarantee not in GUARANTEES:
            raise ValueError(f"guarantee must be one of {GUARANTEES}, got {guarantee!r}.")
        if isinstance(covariances, np.ndarray):
            try:
                covariances = RowCovariances.from_matrices(covariances)
            except ValueError as exc:
                raise ValueError(f"Invalid covariances: {exc}") from exc
        if not isinstance(covariances, RowCovariances):
            raise TypeError(
                "covariances must be a RowCovariances or an (n, d, d) array of SPD "
                f"matrices, got {type(covariances).__name__}."
            )
        alpha = float(alpha)
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}.")
        self.center = np.asarray(center, dtype=np.float64)
        if self.center.ndim != 2:
            raise ValueError(f"center must be a 2-D array (n, d), got shape {self.center.shape}.")
        self.prediction = np.asarray(prediction)
        self.abstained = np.asarray(abstained, dtype=bool)
        self.covariances = covariances
        self.mahalanobis_radius = np.asarray(mahalanobis_radius, dtype=np.float64)
        self.p_lower = np.asarray(p_lower, dtype=np.float64)
        self.alpha = alpha
        self.guarantee = guarantee
        n = self.center.shape[0]
        for name in ("prediction", "abstained", "mahalanobis_radius", "p_lower"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {getattr(self, name).shape}.")
        if len(covariances) != n:
            raise ValueError(f"covariances has {len(covariances)} rows, expected {n}.")
        if covariances.n_features != self.center.shape[1]:
            raise ValueError(
                f"covariances are {covariances.n_features}-dimensional but the centers "
                f"have {self.center.shape[1]} features."
            )
        if np.any((self.p_lower < 0) | (self.p_lower > 1)):
            raise ValueError("p_lower must lie in [0, 1] (NaN allowed where unknown).")
        if np.any(self.mahalanobis_radius < 0):
            raise ValueError("mahalanobis_radius must be non-negative.")
        self.radius = self.mahalanobis_radius * np.sqrt(covariances.min_eigenvalue())

    # ------------------------------------------------------------------ shape
    def __len__(self):
        return self.center.shape[0]

    @property
    def n_features(self):
        """Input dimension ``d``."""
        return self.center.shape[1]

    def __getitem__(self, rows):
        if isinstance(rows, (int, np.integer)):
            rows = [rows]
        return Certificate(
            center=self.center[rows],
            prediction=self.prediction[rows],
            abstained=self.abstained[rows],
            covariances=self.covariances.take(rows),
            mahalanobis_radius=self.mahalanobis_radius[rows],
            p_lower=self.p_lower[rows],
            alpha=self.alpha,
            guarantee=self.guarantee,
        )

    def __repr__(self):
        n = len(self)
        certified = int((~self.abstained).sum())
        return (
            f"Certificate(n={n}, d={self.n_features}, certified={certified}, "
            f"guarantee={self.guarantee!r}, alpha={self.alpha:g})"
        )

    # --------------------------------------------------------------- geometry
    @property
    def covariance(self):
        """Noise covariance of each input, ndarray of shape (n, d, d)."""
        return self.covariances.matrices()

    @property
    def certified(self):
        """Boolean mask of the inputs that did not abstain."""
        return ~self.abstained

    def contains_ball(self, radius):
        """Whether the ball ``B2(x, radius)`` lies inside each certified region.

        Exactly ``radius <= r * sqrt(lambda_min(Sigma))`` and not abstained.

        Parameters
        ----------
        radius : float or array-like of shape (n,)
            Non-negative l2 radius.

        Returns
        -------
        inside : ndarray of shape (n,), bool
        """
        radius = np.asarray(radius, dtype=np.float64)
        if np.any(~np.isfinite(radius)) or np.any(radius < 0):
            raise ValueError("radius must be finite and non-negative.")
        if radius.ndim > 1 or (radius.ndim == 1 and radius.shape[0] != len(self)):
            raise ValueError(
                f"radius must be a scalar or have shape ({len(self)},), got {radius.shape}."
            )
        return self.certified & (radius <= self.radius)

    def contains_points(self, points):
        """Whether ``points[i]`` lies inside the certified region of input ``i``.

        Parameters
        ----------
        points : ndarray of shape (n, d) or (n, m, d)

        Returns
        -------
        inside : ndarray of shape (n,) or (n, m), bool
        """
        points = np.asarray(points, dtype=np.float64)
        if points.ndim not in (2, 3) or points.shape[0] != len(self) or points.shape[-1] != self.n_features:
            raise ValueError(
                f"points must have shape ({len(self)}, {self.n_features}) or "
                f"({len(self)}, m, {self.n_features}), got {points.shape}."
            )
        single = points.ndim == 2
        if single:
            points = points[:, None, :]
        delta = points - self.center[:, None, :]
        white = self.covariances.whiten(np.arange(len(self)), delta)
        dist2 = np.square(white).sum(axis=2)
        inside = self.certified[:, None] & (dist2 <= np.square(self.mahalanobis_radius)[:, None])
        return inside[:, 0] if single else inside

    @property
    def log_volume(self):
        """Log-volume of each certified ellipsoid (``-inf`` when abstaining).

        ``d log r + 1/2 log det Sigma + log V_d``.
        """
        d = self.n_features
        with np.errstate(divide="ignore"):
            log_r = np.log(self.mahalanobis_radius)
        out = d * log_r + 0.5 * self.covariances.logdet() + log_unit_ball_volume(d)
        return np.where(self.certified, out, -np.inf)

    @property
    def proxy_radius(self):
        """ANCER's proxy radius ``r * det(Sigma)^(1/(2d))`` (0 when abstaining)."""
        d = self.n_features
        return self.mahalanobis_radius * np.exp(self.covariances.logdet() / (2.0 * d))

    def _columns(self):
        """The per-input columns of :meth:`to_frame`, as a dict of arrays."""
        return {
            "prediction": self.prediction,
            "abstained": self.abstained,
            "radius": self.radius,
            "mahalanobis_radius": self.mahalanobis_radius,
            "p_lower": self.p_lower,
            "log_volume": self.log_volume,
            "proxy_radius": self.proxy_radius,
            "min_sigma": np.sqrt(self.covariances.min_eigenvalue()),
            "max_sigma": np.sqrt(self.covariances.max_eigenvalue()),
        }

    def to_frame(self):
        """A :class:`pandas.DataFrame` with one row per input.

        Columns: ``prediction``, ``abstained``, ``radius``,
        ``mahalanobis_radius``, ``p_lower``, ``log_volume``, ``proxy_radius``,
        ``min_sigma``, ``max_sigma`` (square roots of the extreme eigenvalues).

        Returns
        -------
        frame : pandas.DataFrame
            One row per input.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is optional
            raise ImportError("Certificate.to_frame requires pandas.") from exc
        return pd.DataFrame(self._columns())
