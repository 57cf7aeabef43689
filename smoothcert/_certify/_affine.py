"""Exact affine maps of fitted preprocessing steps (``x -> A x + a``).

Only steps whose ``transform`` is exactly affine are accepted:
``StandardScaler``, ``MinMaxScaler`` and ``MaxAbsScaler`` (without
``clip``), ``PCA`` (whitened or not), ``"passthrough"`` / ``None``, and
pipelines of these. Anything else (``FunctionTransformer``,
``PolynomialFeatures``, unknown transformers) is refused with an error naming
the step. Used by the pull-back of certificates to raw input space and by the
adapters' exact route for linear classifiers behind affine preprocessing.
"""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

__all__ = ["Affine", "affine_map", "step_affine", "step_name"]

#: Supported affine steps (their ``transform`` must not be overridden).
SUPPORTED_STEPS = (StandardScaler, MinMaxScaler, MaxAbsScaler, PCA)


class Affine:
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
            return Affine(other.linear * self.linear, other.linear * self.offset + other.offset, True)
        A2 = other.matrix()
        return Affine(A2 @ self.matrix(), A2 @ self.offset + other.offset, False)


def step_name(name, step):
    return f"step {name!r} ({type(step).__name__})"


def _refuse(name, step, why):
    raise ValueError(
        f"Cannot pull the certificate back through {step_name(name, step)}: {why}. "
        "Only affine preprocessing (StandardScaler, MinMaxScaler, MaxAbsScaler without clip, "
        "PCA, 'passthrough') is supported. Wrap the whole pipeline instead, e.g. "
        "SmoothedClassifier(make_pipeline(...)), to add the noise in raw input space."
    )


def step_affine(name, step, d):
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return Affine.identity(d)
    if isinstance(step, Pipeline):
        out = Affine.identity(d)
        for sub_name, sub in step.steps:
            nxt = step_affine(f"{name}__{sub_name}", sub, out.n_features_out)
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
            f"{step_name(name, step)} expects {step.n_features_in_} features, got {d}."
        )
    if isinstance(step, StandardScaler):
        scale = step.scale_ if step.with_std else np.ones(d)
        mean = step.mean_ if step.with_mean else np.zeros(d)
        return Affine(1.0 / scale, -mean / scale, True)
    if isinstance(step, MinMaxScaler):
        if step.clip:
            _refuse(name, step, "clip=True makes it non-affine")
        return Affine(step.scale_, step.min_, True)
    if isinstance(step, MaxAbsScaler):
        if getattr(step, "clip", False):
            _refuse(name, step, "clip=True makes it non-affine")
        return Affine(1.0 / step.scale_, np.zeros(d), True)
    # PCA: y = (x - mean) @ components.T, divided by sqrt(explained_variance) if whiten.
    components = np.asarray(step.components_, dtype=np.float64)
    mean = np.asarray(step.mean_, dtype=np.float64)
    if step.whiten:
        scale = np.sqrt(np.asarray(step.explained_variance_, dtype=np.float64))
        scale[scale < np.finfo(scale.dtype).eps] = np.finfo(scale.dtype).eps
        components = components / scale[:, None]
    return Affine(components, -components @ mean, False)


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
    >>> from smoothcert._certify._affine import affine_map
    >>> scaler = StandardScaler().fit([[0.0, 1.0], [2.0, 5.0]])
    >>> A, a = affine_map(scaler, 2)
    >>> A
    array([[1. , 0. ],
           [0. , 0.5]])
    >>> a
    array([-1. , -1.5])
    """
    aff = step_affine("transformer", transformer, int(n_features))
    return aff.matrix(), aff.offset
