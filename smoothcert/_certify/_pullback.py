"""Certificates through affine preprocessing, expressed in raw input space.

A :class:`~sklearn.pipeline.Pipeline` ``make_pipeline(StandardScaler(),
SmoothedClassifier(...))`` adds its noise *after* the scaler: the certificate
of the final step is an ellipsoid ``{y + e : e^T Sigma^-1 e <= r^2}`` around
the transformed input ``y = A x + a``. Its preimage in raw space is::

    {x + d : d^T (A^T Sigma^-1 A) d <= r^2}

* ``A`` invertible: an ellipsoid with covariance ``A^-1 Sigma A^-T`` and the
  same Mahalanobis radius ``r``; its inscribed ball has radius
  ``r * sqrt(lambda_min(A^-1 Sigma A^-T)) = r / sqrt(lambda_max(A^T Sigma^-1 A))``.
* ``A`` not injective (``PCA(n_components < d)``): the preimage is an unbounded
  cylinder along the null space of ``A``, which no covariance represents. By
  default (``non_injective="ellipsoid"``) the returned region is the ellipsoid
  ``d^T M' d <= r^2`` with ``M' = M + lambda_max(M) P``, ``M = A^T Sigma^-1 A``
  and ``P`` the orthogonal projector on the null space of ``A``. Because
  ``M' >= M`` it lies inside the cylinder (the certificate stays sound), and
  because ``lambda_max(M') = lambda_max(M)`` its inscribed ball is exactly the
  largest ball inside the cylinder, ``r / sqrt(lambda_max(M))``: ball
  inclusion and certified accuracy are exact, only the volume is that of a
  subset (the cylinder's is infinite). ``non_injective="raise"`` refuses.

Only steps whose ``transform`` is exactly affine are accepted:
``StandardScaler``, ``MinMaxScaler`` and ``MaxAbsScaler`` (without
``clip``), ``PCA`` (whitened or not), ``"passthrough"`` / ``None``, and
pipelines of these. Anything else (``FunctionTransformer``,
``PolynomialFeatures``, unknown transformers) is refused with an error naming
the step. The affine map read from the fitted attributes is checked against
the steps' own ``transform`` on the certified inputs.
"""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted

from ._certificate import Certificate
from .._geometry._forms import RowCovariances

__all__ = ["certify", "affine_map", "pull_back"]

#: Supported affine steps (their ``transform`` must not be overridden).
SUPPORTED_STEPS = (StandardScaler, MinMaxScaler, MaxAbsScaler, PCA)


class _Affine:
    """``y = A x + a`` with ``A`` diagonal (a vector) or dense (a matrix)."""

    def __init__(self, linear, offset, diagonal):
        self.linear = np.asarray(linear, dtype=np.float64)
        self.offset = np.asarray(offset, dtype=np.float64)
        self.diagonal = diagonal

    @classmethod
    def identity(cls, d):
        return cls(np.ones(d), np.zeros(d), True)

    @property
    def n_features_in(self):
        return self.linear.shape[0] if self.diagonal else self.linear.shape[1]

    @property
    def n_features_out(self):
        return self.linear.shape[0]

    def matrix(self):
        return np.diag(self.linear) if self.diagonal else self.linear

    def apply(self, X):
        if self.diagonal:
            return X * self.linear + self.offset
        return X @ self.linear.T + self.offset

    def then(self, other):
        """The composition ``other(self(x))``."""
        if self.diagonal and other.diagonal:
            return _Affine(other.linear * self.linear, other.linear * self.offset + other.offset, True)
        A2 = other.matrix()
        return _Affine(A2 @ self.matrix(), A2 @ self.offset + other.offset, False)


def _step_name(name, step):
    return f"step {name!r} ({type(step).__name__})"


def _refuse(name, step, why):
    raise ValueError(
        f"Cannot pull the certificate back through {_step_name(name, step)}: {why}. "
        "Only affine preprocessing (StandardScaler, MinMaxScaler, MaxAbsScaler without clip, "
        "PCA, 'passthrough') is supported. Wrap the whole pipeline instead, e.g. "
        "SmoothedClassifier(make_pipeline(...)), to add the noise in raw input space."
    )


def _step_affine(name, step, d):
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return _Affine.identity(d)
    if isinstance(step, Pipeline):
        out = _Affine.identity(d)
        for sub_name, sub in step.steps:
            nxt = _step_affine(f"{name}__{sub_name}", sub, out.n_features_out)
            out = out.then(nxt)
        return out
    base = next((cls for cls in SUPPORTED_STEPS if isinstance(step, cls)), None)
    if base is None:
        _refuse(name, step, "it is not a supported affine transformer")
    if type(step).transform is not base.transform:
        _refuse(name, step, f"it overrides {base.__name__}.transform")
    check_is_fitted(step)
    if step.n_features_in_ != d:
        raise ValueError(
            f"{_step_name(name, step)} expects {step.n_features_in_} features, got {d}."
        )
    if isinstance(step, StandardScaler):
        scale = step.scale_ if step.with_std else np.ones(d)
        mean = step.mean_ if step.with_mean else np.zeros(d)
        return _Affine(1.0 / scale, -mean / scale, True)
    if isinstance(step, MinMaxScaler):
        if step.clip:
            _refuse(name, step, "clip=True makes it non-affine")
        return _Affine(step.scale_, step.min_, True)
    if isinstance(step, MaxAbsScaler):
        if getattr(step, "clip", False):
            _refuse(name, step, "clip=True makes it non-affine")
        return _Affine(1.0 / step.scale_, np.zeros(d), True)
    # PCA: y = (x - mean) @ components.T, divided by sqrt(explained_variance) if whiten.
    components = np.asarray(step.components_, dtype=np.float64)
    mean = np.asarray(step.mean_, dtype=np.float64)
    if step.whiten:
        scale = np.sqrt(np.asarray(step.explained_variance_, dtype=np.float64))
        scale[scale < np.finfo(scale.dtype).eps] = np.finfo(scale.dtype).eps
        components = components / scale[:, None]
    return _Affine(components, -components @ mean, False)


def affine_map(transformer, n_features):
    """The exact affine map ``x -> A x + a`` of a fitted affine transformer.

    Parameters
    ----------
    transformer : transformer, Pipeline, "passthrough" or None
        A fitted StandardScaler, MinMaxScaler, MaxAbsScaler (without clip),
        PCA, "passthrough", or a Pipeline of these.
    n_features : int
        Dimension of the raw inputs.

    Returns
    -------
    A : ndarray of shape (n_features_out, n_features)
        The linear part.
    a : ndarray of shape (n_features_out,)
        The offset.

    Raises
    ------
    ValueError
        If a step is not (exactly) affine, naming the step.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from smoothcert._certify._pullback import affine_map
    >>> scaler = StandardScaler().fit([[0.0, 1.0], [2.0, 5.0]])
    >>> A, a = affine_map(scaler, 2)
    >>> A
    array([[1. , 0. ],
           [0. , 0.5]])
    >>> a
    array([-1. , -1.5])
    """
    aff = _step_affine("transformer", transformer, int(n_features))
    return aff.matrix(), aff.offset


def _inverse_rows(covariances):
    """``Sigma^-1`` of each row as dense ``(n, k, k)`` matrices."""
    n, k = len(covariances), covariances.n_features
    if covariances.kind == "isotropic":
        return np.eye(k)[None] / covariances.values[:, None, None]
    if covariances.kind == "diagonal":
        out = np.zeros((n, k, k))
        idx = np.arange(k)
        out[:, idx, idx] = 1.0 / covariances.values
        return out
    w, v = np.linalg.eigh(covariances.matrices())
    return np.einsum("nij,nj,nkj->nik", v, 1.0 / w, v)


def _symmetric(m):
    return 0.5 * (m + np.swapaxes(m, -1, -2))


def _pull_back_covariances(covariances, aff, non_injective):
    """Raw-space covariances and whether the map was injective."""
    d = aff.n_features_in
    if aff.diagonal:
        # Square and invertible (scales are never 0): stay compact.
        inv = 1.0 / aff.linear
        if covariances.kind == "isotropic" and np.all(inv == inv[0]):
            return RowCovariances.isotropic(covariances.values * inv[0] ** 2, d), True
        if covariances.kind in ("isotropic", "diagonal"):
            var = covariances.values
            var = var[:, None] if covariances.kind == "isotropic" else var
            return RowCovariances("diagonal", var * inv**2, d), True
        full = covariances.matrices() * inv[None, :, None] * inv[None, None, :]
        return RowCovariances.from_matrices(_symmetric(full)), True
    A = aff.linear
    k = A.shape[0]
    u, s, vt = np.linalg.svd(A)
    tol = s.max(initial=0.0) * max(A.shape) * np.finfo(np.float64).eps
    rank = int((s > tol).sum())
    if k == d and rank == d:
        B = np.linalg.inv(A)
        if covariances.kind == "isotropic":
            base = B @ B.T
            full = covariances.values[:, None, None] * base[None]
        elif covariances.kind == "diagonal":
            full = np.einsum("ij,nj,kj->nik", B, covariances.values, B)
        else:
            full = np.einsum("ij,njl,kl->nik", B, covariances.matrices(), B)
        return RowCovariances.from_matrices(_symmetric(full)), True
    if rank < d and non_injective == "raise":
        raise ValueError(
            f"The preprocessing maps {d} raw features onto {k} (rank {rank}): "
            "the certified set in raw space is an unbounded cylinder, which no "
            "covariance represents. Use non_injective='ellipsoid' for the largest "
            "exactly-inscribed ellipsoid, or keep all components."
        )
    # M = A^T Sigma^-1 A, plus lambda_max(M) on the null space of A.
    precision = np.einsum("ji,njk,kl->nil", A, _inverse_rows(covariances), A)
    precision = _symmetric(precision)
    lam_max = np.linalg.eigvalsh(precision)[:, -1]
    null = vt[rank:].T  # (d, d - rank), orthonormal
    if null.shape[1]:
        precision = precision + lam_max[:, None, None] * (null @ null.T)[None]
    w, v = np.linalg.eigh(_symmetric(precision))
    full = np.einsum("nij,nj,nkj->nik", v, 1.0 / w, v)
    return RowCovariances.from_matrices(_symmetric(full)), rank == d


def pull_back(certificate, aff, X_raw, *, non_injective="ellipsoid", steps=()):
    """Express a transformed-space certificate in raw input space.

    Parameters
    ----------
    certificate : Certificate
        Certificate of the transformed inputs ``A x + a``.
    aff : _Affine
        The affine map ``x -> A x + a``.
    X_raw : ndarray of shape (n_samples, n_features)
        The raw inputs (the new centres).
    non_injective : {"ellipsoid", "raise"}, default="ellipsoid"
        What to do when ``A`` is not injective (see :func:`certify`).
    steps : sequence of str, default=()
        Names of the preprocessing steps, recorded in ``pullback_info``.

    Returns
    -------
    certificate : Certificate
        Same predictions, abstentions, ``p_lower`` and Mahalanobis radii;
        covariance ``A^-1 Sigma A^-T`` (or the inscribed ellipsoid of the
        cylinder for a non-injective ``A``).

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert import Certificate
    >>> from smoothcert._certify._pullback import _Affine, pull_back
    >>> cert = Certificate(
    ...     center=np.zeros((1, 2)), prediction=np.array([0]), abstained=np.array([False]),
    ...     covariance=[1.0],
    ...     mahalanobis_radius=np.array([1.0]), p_lower=np.array([0.9]), alpha=0.001)
    >>> raw = pull_back(cert, _Affine(np.array([2.0, 0.5]), np.zeros(2), True), np.zeros((1, 2)))
    >>> raw.radius  # the scaler halves the first feature's noise in raw units
    array([0.5])
    """
    covariances, injective = _pull_back_covariances(certificate.covariances, aff, non_injective)
    return certificate._replace(
        center=X_raw,
        covariance=covariances,
        pullback_info={
            "steps": list(steps),
            "injective": bool(injective),
            "n_features_transformed": aff.n_features_out,
        },
    )


def certify(estimator, X, *, non_injective="ellipsoid"):
    """Certify ``X`` with a smoothing estimator or a pipeline ending in one.

    For a :class:`SmoothedClassifier`, a :class:`CertifiedRegion` (or any
    fitted estimator with a ``certify`` method) this is ``estimator.certify(X)``.
    For a :class:`~sklearn.pipeline.Pipeline` whose last step is one of them,
    ``X`` is transformed by the preceding steps, certified in transformed
    space, and the certificate is pulled back to the raw input space exactly:
    for ``y = A x + a`` with ``A`` invertible, the raw covariance is
    ``A^-1 Sigma A^-T`` with the same Mahalanobis radius, so the inscribed
    radius is ``r / sqrt(lambda_max(A^T Sigma^-1 A))``.

    Only affine preprocessing is accepted: ``StandardScaler``,
    ``MinMaxScaler`` and ``MaxAbsScaler`` (without ``clip``), ``PCA``
    (whitened or not), ``"passthrough"`` and pipelines of these. With a
    non-injective map (``PCA(n_components < n_features)``) the raw certified
    set is an unbounded cylinder; see ``non_injective``.

    Wrapping the whole pipeline instead, ``SmoothedClassifier(make_pipeline(...))``,
    adds the noise in raw space; such an estimator is certified directly.

    Parameters
    ----------
    estimator : fitted estimator
        A smoothing estimator, or a Pipeline whose final step is one.
    X : array-like of shape (n_samples, n_features)
        Raw inputs.
    non_injective : {"ellipsoid", "raise"}, default="ellipsoid"
        For a preprocessing that reduces the dimension: ``"ellipsoid"``
        returns the ellipsoid ``d^T M' d <= r^2``, ``M' = A^T Sigma^-1 A +
        lambda_max(A^T Sigma^-1 A) P_null``, inside the certified cylinder and
        with exactly the cylinder's inscribed ball (so ``radius`` and the
        certified accuracy are exact; ``log_volume`` is that of this subset);
        ``"raise"`` refuses with a ValueError.

    Returns
    -------
    certificate : Certificate
        Centred on the raw inputs. For a pipeline, ``pullback_info`` records
        the steps, whether the map was injective, and the transformed
        dimension.

    Raises
    ------
    ValueError
        If a preprocessing step is not affine (naming the step), or the final
        step cannot certify.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from smoothcert import SmoothedClassifier, certify
    >>> X, y = make_moons(100, noise=0.1, random_state=0)
    >>> pipe = make_pipeline(StandardScaler(),
    ...                      SmoothedClassifier(n_samples=500, random_state=0)).fit(X, y)
    >>> cert = certify(pipe, X[:4])
    >>> cert.covariance.shape
    (4, 2, 2)
    """
    if non_injective not in ("ellipsoid", "raise"):
        raise ValueError(
            f"non_injective must be 'ellipsoid' or 'raise', got {non_injective!r}."
        )
    if not isinstance(estimator, Pipeline):
        if not hasattr(estimator, "certify"):
            raise TypeError(
                f"{type(estimator).__name__} cannot certify: expected a SmoothedClassifier, "
                "a CertifiedRegion, or a Pipeline whose last step is one of them."
            )
        return estimator.certify(X)
    final_name, final = estimator.steps[-1]
    if not hasattr(final, "certify"):
        raise TypeError(
            f"The last step of the pipeline, {_step_name(final_name, final)}, cannot "
            "certify: expected a SmoothedClassifier or a CertifiedRegion."
        )
    X_raw = check_array(X, dtype=np.float64)
    d = X_raw.shape[1]
    aff = _Affine.identity(d)
    names = []
    for name, step in estimator.steps[:-1]:
        aff = aff.then(_step_affine(name, step, aff.n_features_out))
        names.append(name)
    if names:
        Xt = estimator[:-1].transform(X)
        Xt_arr = np.asarray(Xt, dtype=np.float64)
        expected = aff.apply(X_raw)
        scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
        if Xt_arr.shape != expected.shape or not np.allclose(
            Xt_arr, expected, rtol=1e-7, atol=1e-9 * scale
        ):
            raise ValueError(
                "The pipeline's preprocessing does not behave as the affine map read "
                "from its fitted attributes; cannot pull the certificate back."
            )
    else:
        Xt = X
    cert = final.certify(Xt)
    return pull_back(cert, aff, X_raw, non_injective=non_injective, steps=names)
