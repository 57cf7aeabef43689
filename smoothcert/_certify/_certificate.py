"""The :class:`Certificate`: what ``certify(X)`` returns."""

import numpy as np
from scipy.special import gammaln

from .._geometry._forms import RowCovariances

__all__ = [
    "Certificate",
    "as_covariances",
    "describe_guarantee",
    "embed_matrices",
    "log_unit_ball_volume",
    "row_index",
]

GUARANTEES = ("per-covariance", "memory", "fixed-noise", "deployed")

#: What each value of ``Certificate.guarantee`` covers, in words (for summaries).
GUARANTEE_DESCRIPTIONS = {
    "fixed-noise": (
        "holds for the classifier smoothed with one covariance shared by all inputs "
        "(Cohen et al.), the one predict uses"
    ),
    "per-covariance": (
        "holds for the classifier smoothed with each input's own covariance; it does "
        "not cover the deployed classifier, whose noise changes with the input"
    ),
    "memory": "holds for the stateful classifier of memory-based certification",
    "deployed": "holds for the estimator's own predict",
}


def describe_guarantee(guarantee):
    """What a value of ``Certificate.guarantee`` covers, in words.

    Parameters
    ----------
    guarantee : str
        A value of :attr:`Certificate.guarantee`.

    Returns
    -------
    description : str
        One phrase; an unknown value is returned quoted, with no claim made.

    Examples
    --------
    >>> from smoothcert._certify._certificate import describe_guarantee
    >>> describe_guarantee("memory")
    'holds for the stateful classifier of memory-based certification'
    """
    return GUARANTEE_DESCRIPTIONS.get(guarantee, f"guarantee {guarantee!r}")


def log_unit_ball_volume(n_features):
    """Log-volume of the unit l2 ball in ``n_features`` dimensions."""
    d = float(n_features)
    return 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1.0)


#: Optional per-row fields: name -> dtype. Each is None or an array of shape (n,).
_ROW_FIELDS = {
    "n_draws": np.int64,
    "from_memory": bool,
    "memory_index": np.int64,
    "shrunk": bool,
}
#: Optional fields shared by all rows (kept as they are by slicing).
_SHARED_FIELDS = ("search_info", "pullback_info", "target_radius", "noise_features")


def embed_matrices(matrices, columns, n_features):
    """``(n, k, k)`` matrices of the coordinates ``columns`` as ``(n, d, d)``, zero elsewhere."""
    out = np.zeros((matrices.shape[0], n_features, n_features))
    out[:, columns[:, None], columns[None, :]] = matrices
    return out


def _check_noise_features(noise_features, n_features):
    """``noise_features`` of a certificate as sorted, distinct column indices (or None)."""
    if noise_features is None:
        return None
    values = np.asarray(noise_features)
    if values.ndim != 1 or values.size == 0 or values.dtype.kind not in "iu":
        raise ValueError(
            "noise_features must be a non-empty 1-D array of column indices, "
            f"got {noise_features!r}."
        )
    values = values.astype(np.int64)
    if np.any(np.diff(values) <= 0) or values[0] < 0 or values[-1] >= n_features:
        raise ValueError(
            f"noise_features must be increasing column indices in [0, {n_features}), "
            f"got {values.tolist()}."
        )
    if values.size == n_features:
        return None
    values.flags.writeable = False
    return values


def row_index(X):
    """The row labels of a pandas input (its ``index``), else None."""
    index = getattr(X, "index", None)
    if index is None or not hasattr(X, "iloc"):
        return None
    return np.asarray(index)


def as_covariances(covariance, n_features=None):
    """Per-row covariances from a form object or a public array.

    Parameters
    ----------
    covariance : RowCovariances or array-like
        ``(n,)`` variances (``sigma_i^2 I``), ``(n, d)`` variances of a diagonal
        covariance, or ``(n, d, d)`` SPD matrices.
    n_features : int, default=None
        Dimension ``d``, needed for ``(n,)`` variances.

    Returns
    -------
    covariances : RowCovariances
    """
    if isinstance(covariance, RowCovariances):
        return covariance
    values = np.asarray(covariance, dtype=np.float64)
    try:
        if values.ndim == 1:
            if n_features is None:
                raise ValueError("the dimension is unknown for (n,) variances")
            return RowCovariances.isotropic(values, n_features)
        if values.ndim == 2:
            return RowCovariances.create("diagonal", values, values.shape[1])
        if values.ndim == 3:
            return RowCovariances.from_matrices(values)
    except ValueError as exc:
        raise ValueError(f"Invalid covariance: {exc}") from None
    raise ValueError(
        "covariance must have shape (n,) (isotropic variances), (n, d) (diagonal "
        f"variances) or (n, d, d) (SPD matrices), got shape {values.shape}."
    )


class Certificate:
    """Per-input certified regions of a smoothed classifier.

    For each input ``x`` with noise covariance ``Sigma`` and Mahalanobis radius
    ``r``, the prediction of the smoothed classifier ``g_Sigma`` is constant on
    the ellipsoid ``{x + d : d^T Sigma^-1 d <= r^2}``, with probability at
    least ``1 - alpha`` over the Monte-Carlo draws.

    Every field is declared here; the optional ones are ``None`` unless the
    procedure that made the certificate fills them, and all of them survive
    slicing (``cert[rows]``) and the pull-back through a pipeline.

    Parameters
    ----------
    center : array-like of shape (n, d)
        The certified inputs.
    prediction : array-like of shape (n,)
        Predicted labels (from the estimator's ``classes_``).
    abstained : array-like of shape (n,), bool
        True where the smoothed classifier abstains (``p_lower <= 1/2``).
    covariance : array-like of shape (n,), (n, d) or (n, d, d)
        Noise covariance of each row: variances ``sigma_i^2`` of an isotropic
        covariance ``sigma_i^2 I`` (n,), variances of a diagonal covariance
        (n, d), or SPD matrices (n, d, d). The compact form is kept (see
        ``covariances``).
    mahalanobis_radius : array-like of shape (n,)
        Radius ``r = Phi^-1(p_lower)`` in the metric of ``Sigma^-1``, 0 when
        abstaining.
    p_lower : array-like of shape (n,)
        Lower confidence bound of the top-class probability (NaN where
        unknown).
    alpha : float
        Failure probability of each certificate, in (0, 1).
    guarantee : {"per-covariance", "fixed-noise", "memory", "deployed"}, default="per-covariance"
        What the certificate covers: ``"fixed-noise"`` for a covariance that
        does not depend on the input (Cohen et al.), ``"per-covariance"`` for the
        classifier smoothed with this input's own covariance (data-dependent
        smoothing without memory), ``"memory"`` for the stateful classifier
        of memory-based certification, ``"deployed"`` for the stateless
        classifier of :class:`CertifiedRegion` that selects its covariance
        with a smoothed selector (the region is then the intersection of the
        class ellipsoid with the selection region).
    n_draws : array-like of shape (n,), default=None
        Estimation draws behind each row's ``p_lower`` (``n_samples`` for
        Cohen's CERTIFY).
    search_info : dict, default=None
        Set by :meth:`CertifiedRegion.certify`: the stages of the covariance
        search (``stages``), their seconds per iteration and its base-model
        predictions per input.
    from_memory : array-like of shape (n,), bool, default=None
        Memory-based certificates: the row was answered from a stored region.
    memory_index : array-like of shape (n,), int, default=None
        Memory-based certificates: the stored region that answered the row,
        or the index under which the row was stored; -1 for abstentions.
    shrunk : array-like of shape (n,), bool, default=None
        Memory-based certificates: the fresh radius was reduced to keep the
        stored regions of different classes disjoint.
    pullback_info : dict, default=None
        Set by :func:`smoothcert.certify` for certificates pulled back through
        preprocessing: the steps, whether the map was injective and the
        transformed dimension; when the preprocessing drops text columns of
        a DataFrame, ``raw_columns`` names the numeric columns that the
        certificate's coordinates are (the text columns stay fixed).
    target_radius : float, default=None
        Set by ``certify(X, radius=R)``: the l2 radius ``R`` each row was
        certified at, sequentially. A row is certified (not abstained) exactly
        when its region contains ``B2(x, R)``; the others stopped as soon as
        ``R`` was out of reach and abstain.
    index : array-like of shape (n,), default=None
        Labels of the rows (the index of a :class:`pandas.DataFrame` input),
        used by :meth:`to_frame`.
    noise_features : array-like of int, default=None
        The columns that received noise (increasing indices into the columns
        of ``center``), set when the estimator had ``noise_features``; None
        means every column. The certificate then covers perturbations of these
        ``k`` columns with the other columns held at their values: the region
        is the ``k``-dimensional ellipsoid ``{x + P^T e : e^T Sigma^-1 e <=
        r^2}``, ``P`` the selection of these columns, and ``covariances`` are
        ``k``-dimensional (``covariance`` embeds them as ``(n, d, d)``
        matrices that are zero outside these columns). ``radius``,
        :meth:`contains_ball`, ``log_volume`` and ``proxy_radius`` are those of
        that ellipsoid, in the subspace of these columns.
    selection_covariance : array-like of shape (n,), (n, d) or (n, d, d), default=None
        ``guarantee="deployed"``: noise covariance of the smoothed covariance
        selector (``sigma_h^2 I`` in the estimator's input space), in the same
        forms as ``covariance``. With ``selection_mahalanobis_radius`` it
        declares the *selection region*
        ``{x + d : d^T S^-1 d <= r_h^2}``, on which the selected covariance is
        certified constant. The certified region is the intersection of the
        class ellipsoid with it.
    selection_mahalanobis_radius : array-like of shape (n,), default=None
        ``r_h = Phi^-1(p_h)`` of the selector's certificate (0 when abstaining);
        set exactly when ``selection_covariance`` is.

    Attributes
    ----------
    center, prediction, abstained, mahalanobis_radius, p_lower, alpha, guarantee
        The parameters, as arrays.
    n_draws, search_info, from_memory, memory_index, shrunk, pullback_info, target_radius, index, noise_features
        The optional parameters (``None`` when not set).
    selection_covariances : RowCovariances or None
        The compact form of ``selection_covariance``.
    selection_radius : ndarray of shape (n,) or None
        Radius of the largest l2 ball inside the selection region,
        ``r_h * sqrt(lambda_min(S))`` (``None`` without a selection region).
    covariances : RowCovariances
        The compact per-row form of the covariances (isotropic, diagonal or
        full), of dimension ``len(noise_features)`` when that is set.
    covariance : ndarray of shape (n, d, d)
        Dense covariance matrices (built on access from the compact form),
        zero outside the columns ``noise_features``.
    radius : ndarray of shape (n,)
        Radius of the largest l2 ball inside the certified region,
        ``r * sqrt(lambda_min(Sigma))`` (comparable across methods and with
        Cohen et al.'s radius ``sigma * Phi^-1(p_lower)``); with a selection
        region, the smaller of that and ``selection_radius`` (both sets are
        centred on the input).
    certified : ndarray of shape (n,), bool
        ``~abstained``.
    log_volume : ndarray of shape (n,)
        Log-volume of each ellipsoid (``-inf`` where abstaining); with a
        selection region, a lower bound on the volume of the intersection
        (see :attr:`log_volume`).
    proxy_radius : ndarray of shape (n,)
        ANCER's proxy radius ``r * det(Sigma)^(1/(2d))``.
    n_features : int
        Input dimension.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert import Certificate
    >>> cert = Certificate(
    ...     center=np.zeros((2, 2)), prediction=np.array([0, 1]),
    ...     abstained=np.array([False, True]), covariance=np.array([0.25, 0.25]),
    ...     mahalanobis_radius=np.array([2.0, 0.0]), p_lower=np.array([0.98, 0.4]),
    ...     alpha=0.001)
    >>> cert.radius
    array([1., 0.])
    >>> cert.contains_ball(0.5)
    array([ True, False])
    >>> cert[:1].covariance
    array([[[0.25, 0.  ],
            [0.  , 0.25]]])
    """

    def __init__(
        self,
        *,
        center,
        prediction,
        abstained,
        covariance,
        mahalanobis_radius,
        p_lower,
        alpha,
        guarantee="per-covariance",
        n_draws=None,
        search_info=None,
        from_memory=None,
        memory_index=None,
        shrunk=None,
        pullback_info=None,
        target_radius=None,
        index=None,
        noise_features=None,
        selection_covariance=None,
        selection_mahalanobis_radius=None,
    ):
        if guarantee not in GUARANTEES:
            raise ValueError(f"guarantee must be one of {GUARANTEES}, got {guarantee!r}.")
        alpha = float(alpha)
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}.")
        self.center = np.asarray(center, dtype=np.float64)
        if self.center.ndim != 2:
            raise ValueError(f"center must be a 2-D array (n, d), got shape {self.center.shape}.")
        n, d = self.center.shape
        self.noise_features = _check_noise_features(noise_features, d)
        k = d if self.noise_features is None else self.noise_features.size
        covariances = as_covariances(covariance, k)
        self.prediction = np.asarray(prediction)
        self.abstained = np.asarray(abstained, dtype=bool)
        self.covariances = covariances
        self.mahalanobis_radius = np.asarray(mahalanobis_radius, dtype=np.float64)
        self.p_lower = np.asarray(p_lower, dtype=np.float64)
        self.alpha = alpha
        self.guarantee = guarantee
        for name in ("prediction", "abstained", "mahalanobis_radius", "p_lower"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {getattr(self, name).shape}.")
        if len(covariances) != n:
            raise ValueError(f"covariance has {len(covariances)} rows, expected {n}.")
        if covariances.n_features != k:
            raise ValueError(
                f"covariance is {covariances.n_features}-dimensional but the centers "
                f"have {d} features"
                + ("." if k == d else f", of which {k} receive noise (noise_features).")
            )
        if np.any((self.p_lower < 0) | (self.p_lower > 1)):
            raise ValueError("p_lower must lie in [0, 1] (NaN allowed where unknown).")
        if np.any(self.mahalanobis_radius < 0):
            raise ValueError("mahalanobis_radius must be non-negative.")
        row_values = dict(
            n_draws=n_draws, from_memory=from_memory, memory_index=memory_index, shrunk=shrunk
        )
        for name, value in row_values.items():
            if value is not None:
                value = np.asarray(value, dtype=_ROW_FIELDS[name])
                if value.shape != (n,):
                    raise ValueError(f"{name} must have shape ({n},), got {value.shape}.")
            setattr(self, name, value)
        for name, value in (("search_info", search_info), ("pullback_info", pullback_info)):
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict or None, got {type(value).__name__}.")
            setattr(self, name, value)
        if target_radius is not None:
            target_radius = float(target_radius)
            if not (np.isfinite(target_radius) and target_radius >= 0):
                raise ValueError(f"target_radius must be finite and >= 0, got {target_radius!r}.")
        self.target_radius = target_radius
        if index is not None:
            index = np.asarray(index)
            if index.shape != (n,):
                raise ValueError(f"index must have shape ({n},), got {index.shape}.")
        self.index = index
        if (selection_covariance is None) != (selection_mahalanobis_radius is None):
            raise ValueError(
                "selection_covariance and selection_mahalanobis_radius must be given together."
            )
        self.selection_covariances = None
        self.selection_mahalanobis_radius = None
        self.selection_radius = None
        self.radius = self.mahalanobis_radius * np.sqrt(covariances.min_eigenvalue())
        if selection_covariance is not None:
            selection = as_covariances(selection_covariance, covariances.n_features)
            r_h = np.asarray(selection_mahalanobis_radius, dtype=np.float64)
            if len(selection) != n or selection.n_features != covariances.n_features:
                raise ValueError(
                    f"selection_covariance must have {n} rows of dimension {d}, got "
                    f"{len(selection)} of dimension {selection.n_features} (the covariances have {covariances.n_features})."
                )
            if r_h.shape != (n,) or np.any(~(r_h >= 0)):
                raise ValueError(
                    f"selection_mahalanobis_radius must have shape ({n},) and be >= 0."
                )
            self.selection_covariances = selection
            self.selection_mahalanobis_radius = r_h
            self.selection_radius = r_h * np.sqrt(selection.min_eigenvalue())
            self.radius = np.minimum(self.radius, self.selection_radius)

    def _fields(self):
        """Every constructor argument of this certificate, as a dict."""
        out = {
            name: getattr(self, name)
            for name in ("center", "prediction", "abstained", "mahalanobis_radius", "p_lower")
        }
        out.update(covariance=self.covariances, alpha=self.alpha, guarantee=self.guarantee)
        for name in (*_ROW_FIELDS, *_SHARED_FIELDS, "index", "selection_mahalanobis_radius"):
            out[name] = getattr(self, name)
        out["selection_covariance"] = self.selection_covariances
        return out

    def __setstate__(self, state):
        # certificates pickled before noise_features existed: every column
        state.setdefault("noise_features", None)
        self.__dict__.update(state)

    def _replace(self, **changes):
        """A new certificate with some fields changed and every other one kept."""
        return Certificate(**{**self._fields(), **changes})

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
        fields = self._fields()
        for name in ("center", "prediction", "abstained", "mahalanobis_radius", "p_lower",
                     *_ROW_FIELDS, "index", "selection_mahalanobis_radius"):
            if fields[name] is not None:
                fields[name] = fields[name][rows]
        fields["covariance"] = self.covariances.take(rows)
        if self.selection_covariances is not None:
            fields["selection_covariance"] = self.selection_covariances.take(rows)
        return Certificate(**fields)

    def __repr__(self):
        n = len(self)
        certified = int((~self.abstained).sum())
        noisy = "" if self.noise_features is None else f", noise_features={self.noise_features.tolist()}"
        return (
            f"Certificate(n={n}, d={self.n_features}, certified={certified}, "
            f"guarantee={self.guarantee!r}, alpha={self.alpha:g}{noisy})"
        )

    # --------------------------------------------------------------- geometry
    @property
    def covariance(self):
        """Noise covariance of each input, ndarray of shape (n, d, d).

        Zero outside the columns ``noise_features`` when that is set.
        """
        if self.noise_features is None:
            return self.covariances.matrices()
        return embed_matrices(self.covariances.matrices(), self.noise_features, self.n_features)

    @property
    def selection_covariance(self):
        """Covariance of the selector's noise per input, (n, d, d), or None."""
        if self.selection_covariances is None:
            return None
        return self.selection_covariances.matrices()

    @property
    def certified(self):
        """Boolean mask of the inputs that did not abstain."""
        return ~self.abstained

    def contains_ball(self, radius):
        """Whether the ball ``B2(x, radius)`` lies inside each certified region.

        Exactly ``radius <= r * sqrt(lambda_min(Sigma))`` (and
        ``radius <= selection_radius`` with a selection region) and not
        abstained. With ``noise_features`` set, the ball is that of the
        perturbations of those columns (the other columns fixed).

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

        With a selection region, inside both the class ellipsoid and it.

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
        fixed = np.ones((len(self), points.shape[1]), dtype=bool)
        if self.noise_features is not None:
            # a point that moves a column without noise is outside the region
            others = np.setdiff1d(np.arange(self.n_features), self.noise_features)
            fixed = np.all(delta[:, :, others] == 0, axis=2)
            delta = delta[:, :, self.noise_features]
        white = self.covariances.whiten(np.arange(len(self)), delta)
        dist2 = np.square(white).sum(axis=2)
        inside = (self.certified[:, None] & fixed
                  & (dist2 <= np.square(self.mahalanobis_radius)[:, None]))
        if self.selection_covariances is not None:
            white = self.selection_covariances.whiten(np.arange(len(self)), delta)
            dist2 = np.square(white).sum(axis=2)
            inside &= dist2 <= np.square(self.selection_mahalanobis_radius)[:, None]
        return inside[:, 0] if single else inside

    def _inner_scale(self):
        """Largest ``t <= 1`` with ``t`` times the class ellipsoid inside the selection region.

        ``t = min(1, r_h / (r sqrt(lambda_max(S^-1/2 Sigma S^-1/2))))``; 1
        without a selection region.
        """
        if self.selection_covariances is None:
            return np.ones(len(self))
        selection = self.selection_covariances
        if selection.kind == "isotropic":
            ratio = self.covariances.max_eigenvalue() / selection.values
        else:
            from scipy.linalg import eigh

            sigma, s = self.covariances.matrices(), selection.matrices()
            ratio = np.array([eigh(a, b, eigvals_only=True)[-1] for a, b in zip(sigma, s)])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = self.selection_mahalanobis_radius / (self.mahalanobis_radius * np.sqrt(ratio))
        return np.where(np.isfinite(t), np.minimum(t, 1.0), 1.0)

    @property
    def log_volume(self):
        """Log-volume of each certified region (``-inf`` when abstaining).

        ``d log r + 1/2 log det Sigma + log V_d``, with ``d`` the number of
        noisy columns (the volume within their subspace when ``noise_features``
        is set).
        With a selection region the intersection has no closed-form volume;
        the value is then the log-volume of the larger of two sets inside it:
        the class ellipsoid scaled about ``x`` until it fits in the selection
        region, and the ball of radius :attr:`radius`. It is a lower bound
        (never an over-claim).
        """
        d = self.covariances.n_features
        with np.errstate(divide="ignore"):
            log_r = np.log(self.mahalanobis_radius * self._inner_scale())
            out = d * log_r + 0.5 * self.covariances.logdet() + log_unit_ball_volume(d)
            if self.selection_covariances is not None:
                ball = d * np.log(self.radius) + log_unit_ball_volume(d)
                out = np.maximum(out, ball)
        return np.where(self.certified, out, -np.inf)

    @property
    def proxy_radius(self):
        """ANCER's proxy radius ``r * det(Sigma)^(1/(2d))`` (0 when abstaining).

        With a selection region, that of the scaled ellipsoid of :attr:`log_volume`.
        """
        d = self.covariances.n_features
        r = self.mahalanobis_radius * self._inner_scale()
        return r * np.exp(self.covariances.logdet() / (2.0 * d))

    def _columns(self):
        """The per-input columns of :meth:`to_frame`, as a dict of arrays."""
        columns = {
            "prediction": self.prediction,
            "abstained": self.abstained,
            "radius": self.radius,
            "mahalanobis_radius": self.mahalanobis_radius,
            "p_lower": self.p_lower,
            "log_volume": self.log_volume,
            "proxy_radius": self.proxy_radius,
            "min_sigma": np.sqrt(self.covariances.min_eigenvalue()),
            "max_sigma": np.sqrt(self.covariances.max_eigenvalue()),
            "guarantee": np.full(len(self), self.guarantee, dtype=object),
        }
        for name in _ROW_FIELDS:
            if getattr(self, name) is not None:
                columns[name] = getattr(self, name)
        if self.selection_radius is not None:
            columns["selection_radius"] = self.selection_radius
        if self.noise_features is not None:
            columns["noise_features"] = np.full(
                len(self), ",".join(str(i) for i in self.noise_features.tolist()), dtype=object
            )
        return columns

    def to_frame(self):
        """A :class:`pandas.DataFrame` with one row per input.

        Columns: ``prediction``, ``abstained``, ``radius``,
        ``mahalanobis_radius``, ``p_lower``, ``log_volume``, ``proxy_radius``,
        ``min_sigma``, ``max_sigma`` (square roots of the extreme eigenvalues),
        ``guarantee`` (the same on every row: which classifier the radii hold
        for, see the ``guarantee`` parameter), then the optional per-row fields
        that are set (``n_draws``, ``from_memory``, ``memory_index``,
        ``shrunk``, ``selection_radius``), then, when only some columns received noise,
        ``noise_features``: the indices of those columns, comma-separated (the
        radii are those of perturbations of these columns, the others fixed;
        also in ``frame.attrs["noise_features"]``).

        Returns
        -------
        frame : pandas.DataFrame
            One row per input, indexed like the certified input when it was a
            DataFrame (``index``), else by position, so that the results can be
            joined back to the data.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is optional
            raise ImportError("Certificate.to_frame requires pandas.") from exc
        frame = pd.DataFrame(self._columns(), index=self.index)
        if self.noise_features is not None:
            frame.attrs["noise_features"] = self.noise_features.tolist()
        return frame
