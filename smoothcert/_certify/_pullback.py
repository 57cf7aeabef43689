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

Noise on some features. When the smoothing step had ``noise_features`` ``S``
(columns of its input ``y``), the certified set is ``{y + P_S^T e : e^T
Sigma^-1 e <= r^2}``: the other columns of ``y`` stay fixed. A raw
perturbation ``d`` keeps them fixed for sure when it moves only raw columns
that no other column of ``y`` reads; those raw columns ``T`` (the columns of
``A`` that are non-zero in some row of ``S`` and zero in every other row) carry
the raw certificate ``{x + P_T^T d : d^T (A_ST^T Sigma^-1 A_ST) d <= r^2}``,
with ``noise_features = T``: a subset of the raw certified set (the whole of it
for scalers and column selections), hence sound.

The affine map of the preprocessing (:mod:`._affine`) is read from the steps'
fitted attributes and checked against their own ``transform`` on the
certified inputs.
"""

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_array

from .._geometry._forms import RowCovariances
from .._geometry._linalg import spd_power, symmetrize
from ._affine import Affine, step_affine, step_name
from ._certificate import row_index

__all__ = ["certify", "non_numeric_columns", "pull_back"]


def non_numeric_columns(X):
    """Positions and labels of the columns of ``X`` that hold text (not numbers).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        A DataFrame or an array; the columns that fail to convert to float64
        because of a string that is no number are reported (not those with
        missing values only).

    Returns
    -------
    positions : list of int
        Positions of those columns.
    labels : list
        Their names for a DataFrame, their positions otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._certify._pullback import non_numeric_columns
    >>> non_numeric_columns(np.array([[1.0, "a"], [2.0, "b"]], dtype=object))
    ([1], [1])
    """
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        columns = [X.iloc[:, j] for j in range(X.shape[1])]
        names = list(X.columns)
    else:
        values = np.asarray(X, dtype=object)
        if values.ndim != 2:
            return [], []
        columns = [values[:, j] for j in range(values.shape[1])]
        names = list(range(values.shape[1]))
    positions = [j for j, column in enumerate(columns) if _holds_text(column)]
    return positions, [names[j] for j in positions]


def _holds_text(column):
    """Whether a column fails to convert to float64 because of text that is no number."""
    try:
        np.asarray(column, dtype=np.float64)
        return False
    except (TypeError, ValueError):
        pass
    for value in np.asarray(column, dtype=object).ravel():
        if isinstance(value, (str, bytes)):
            try:
                float(value)
            except ValueError:
                return True
    return False  # missing values (None) or other objects: not text


def _numeric_raw_inputs(X, aff):
    """The raw inputs as numbers, with the map restricted to the numeric columns if needed.

    Text columns that the preprocessing drops never reach the smoothing step:
    the certificate then lives in the raw space of the numeric columns.
    Returns ``(X_raw, aff, kept)``, ``kept`` the labels of the numeric columns
    (None when every column is numeric).
    """
    try:
        return check_array(X, dtype=np.float64), aff, None
    except (TypeError, ValueError) as exc:
        positions, labels = non_numeric_columns(X)
        if not positions:
            raise
        error = exc
    A = aff.matrix()
    read = [label for j, label in zip(positions, labels) if np.any(A[:, j] != 0)]
    if read:  # pragma: no cover - such a pipeline cannot be fitted
        raise ValueError(
            f"The columns {read} of X are not numbers but reach the smoothing step."
        ) from error
    kept = np.setdiff1d(np.arange(A.shape[1]), positions)
    if kept.size == 0:
        raise ValueError(
            "X has no numeric column: there is nothing to certify in raw space."
        ) from error
    if hasattr(X, "iloc"):
        numeric = X.iloc[:, kept]
        names = list(X.columns[kept])
    else:
        numeric = np.asarray(X, dtype=object)[:, kept]
        names = kept.tolist()
    X_raw = check_array(numeric, dtype=np.float64)
    return X_raw, Affine(A[:, kept], aff.offset, False), names


def _pull_back_covariances(covariances, aff, non_injective):
    """Raw-space covariances and whether the map was injective."""
    d = aff.n_features_in
    if aff.diagonal:
        # Square and invertible (scales are never 0): stay compact.
        return covariances.scaled(1.0 / aff.linear), True
    A = aff.linear
    k = A.shape[0]
    u, s, vt = np.linalg.svd(A)
    tol = s.max(initial=0.0) * max(A.shape) * np.finfo(np.float64).eps
    rank = int((s > tol).sum())
    if k == d and rank == d:
        return covariances.congruence(np.linalg.inv(A)), True
    if rank < d and non_injective == "raise":
        raise ValueError(
            f"The preprocessing maps {d} raw features onto {k} (rank {rank}): "
            "the certified set in raw space is an unbounded cylinder, which no "
            "covariance represents. Use non_injective='ellipsoid' for the largest "
            "exactly-inscribed ellipsoid, or keep all components."
        )
    # M = A^T Sigma^-1 A, plus lambda_max(M) on the null space of A.
    precision = symmetrize(np.swapaxes(A, -1, -2) @ covariances.precision() @ A)
    lam_max = np.linalg.eigvalsh(precision)[:, -1]
    null = vt[rank:].T  # (d, d - rank), orthonormal
    if null.shape[1]:
        precision = precision + lam_max[:, None, None] * (null @ null.T)[None]
    full = spd_power(symmetrize(precision), -1)
    return RowCovariances.from_matrices(symmetrize(full)), rank == d


def _subspace_map(aff, features):
    """The map from the raw columns that move only the noisy columns ``features`` to them.

    Returns ``(Affine, raw_columns)``: ``A_ST`` (diagonal when ``aff`` is) and
    the raw columns ``T`` (see the module's notes).
    """
    if features is None:
        return aff, None
    if aff.diagonal:
        return Affine(aff.linear[features], aff.offset[features], True), np.asarray(features)
    A = aff.linear
    others = np.setdiff1d(np.arange(A.shape[0]), features)
    moves = A[features] != 0
    raw = np.flatnonzero(moves.any(axis=0) & ~(A[others] != 0).any(axis=0))
    if raw.size == 0:
        raise ValueError(
            f"No raw input column moves only the noisy transformed columns "
            f"{np.asarray(features).tolist()} (noise_features of the last step): every raw "
            "column that reaches them also changes a column without noise, so the "
            "certificate has no raw-space counterpart. Read it in transformed space, "
            "pipeline[-1].certify(pipeline[:-1].transform(X)), or choose noise_features "
            "that a raw column feeds alone."
        )
    return Affine(A[np.ix_(features, raw)], aff.offset[features], False), raw


class _RawMinEigenvalue:
    """Smallest eigenvalue of each covariance once pulled back to raw space (picklable)."""

    def __init__(self, aff, non_injective, features=None):
        self.aff, self.raw = _subspace_map(aff, features)
        self.non_injective = non_injective

    def __call__(self, covariances):
        return _pull_back_covariances(covariances, self.aff, self.non_injective)[0].min_eigenvalue()


def pull_back(certificate, aff, X_raw, *, non_injective="ellipsoid", steps=()):
    """Express a transformed-space certificate in raw input space.

    Parameters
    ----------
    certificate : Certificate
        Certificate of the transformed inputs ``A x + a``.
    aff : Affine
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
        cylinder for a non-injective ``A``). A certificate with
        ``noise_features`` comes back with the raw columns that carry them.
        A selection region (``guarantee="deployed"``) is pulled back like the
        class ellipsoid.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert import Certificate
    >>> from smoothcert._certify._affine import Affine
    >>> from smoothcert._certify._pullback import pull_back
    >>> cert = Certificate(
    ...     center=np.zeros((1, 2)), prediction=np.array([0]), abstained=np.array([False]),
    ...     covariance=[1.0],
    ...     mahalanobis_radius=np.array([1.0]), p_lower=np.array([0.9]), alpha=0.001)
    >>> raw = pull_back(cert, Affine(np.array([2.0, 0.5]), np.zeros(2), True), np.zeros((1, 2)))
    >>> raw.radius  # the scaler halves the first feature's noise in raw units
    array([0.5])
    """
    sub, raw = _subspace_map(aff, certificate.noise_features)
    covariances, injective = _pull_back_covariances(certificate.covariances, sub, non_injective)
    selection = certificate.selection_covariances
    if selection is not None:
        # the selection region is an ellipsoid too: the same map pulls it back
        selection = _pull_back_covariances(selection, sub, non_injective)[0]
    return certificate._replace(
        center=X_raw,
        covariance=covariances,
        selection_covariance=selection,
        noise_features=raw,
        pullback_info={
            "steps": list(steps),
            "injective": bool(injective),
            "n_features_transformed": aff.n_features_out,
        },
    )


def _n_raw_features(pipeline, X):
    """Number of raw input columns, read without converting ``X`` to numbers."""
    n = getattr(pipeline, "n_features_in_", None)
    if n is not None:
        return int(n)
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2:
        return int(shape[1])
    return check_array(X, dtype=np.float64).shape[1]


def certify(estimator, X, *, radius=None, non_injective="ellipsoid"):
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
    (whitened or not), ``"passthrough"``, pipelines of these, and
    :class:`~sklearn.compose.ColumnTransformer` whose parts are all of these
    or ``"drop"`` (columns chosen by name or index, remainder included). With
    a non-injective map (``PCA(n_components < n_features)``, dropped
    columns) the raw certified set is an unbounded cylinder; see
    ``non_injective``. A non-affine step (``OneHotEncoder``,
    ``QuantileTransformer``, ``PolynomialFeatures``, ...) is refused with an
    error that names it; read the certificate in transformed space then, or
    smooth the whole pipeline with ``noise_features`` on the columns that
    step does not read.

    When the last step has ``noise_features``, the raw certificate covers the
    raw columns that feed only those features (``noise_features`` of the
    returned certificate), the other raw columns fixed.

    Wrapping the whole pipeline instead, ``SmoothedClassifier(make_pipeline(...))``,
    adds the noise in raw space; such an estimator is certified directly.

    Parameters
    ----------
    estimator : fitted estimator
        A smoothing estimator, or a Pipeline whose final step is one.
    X : array-like of shape (n_samples, n_features)
        Raw inputs.
    radius : float, default=None
        Certify every input sequentially at this l2 radius, *measured in the
        space of* ``X`` (raw units for a pipeline): each input stops as soon as
        its raw-space region contains ``B2(x, radius)`` or the radius is out of
        reach (see ``SmoothedClassifier.certify``).
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
        return estimator.certify(X) if radius is None else estimator.certify(X, radius=radius)
    final_name, final = estimator.steps[-1]
    if not hasattr(final, "certify"):
        raise TypeError(
            f"The last step of the pipeline, {step_name(final_name, final)}, cannot "
            "certify: expected a SmoothedClassifier or a CertifiedRegion."
        )
    d = _n_raw_features(estimator, X)
    aff = Affine.identity(d)
    names = []
    for name, step in estimator.steps[:-1]:
        aff = aff.then(step_affine(name, step, aff.n_features_out))
        names.append(name)
    # after the steps were read, so that a non-affine step (an encoder of string
    # columns) is named before the strings fail to convert; text columns that
    # the preprocessing drops are left out of the raw space
    X_raw, aff, kept = _numeric_raw_inputs(X, aff)
    if X_raw.shape[1] != aff.n_features_in:
        raise ValueError(f"X has {X_raw.shape[1]} features, but the pipeline expects {d}.")
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
    if radius is None:
        cert = final.certify(Xt)
    elif hasattr(final, "_certify"):
        # the target is a raw-space radius: each row's smallest eigenvalue is
        # that of its pulled-back covariance
        columns = final._noise_columns() if hasattr(final, "_noise_columns") else None
        cert = final._certify(
            Xt, radius=radius, min_eigenvalue=_RawMinEigenvalue(aff, non_injective, columns)
        )
    else:
        raise TypeError(
            f"{type(final).__name__} cannot certify at a raw-space radius through a pipeline."
        )
    if cert.index is None and row_index(X) is not None:
        cert = cert._replace(index=row_index(X))
    cert = pull_back(cert, aff, X_raw, non_injective=non_injective, steps=names)
    if kept is not None:
        cert = cert._replace(pullback_info={**cert.pullback_info, "raw_columns": kept})
    return cert
