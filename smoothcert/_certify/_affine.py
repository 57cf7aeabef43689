"""Exact affine maps of fitted preprocessing steps (``x -> A x + a``).

Only steps whose ``transform`` is exactly affine are accepted:
``StandardScaler``, ``MinMaxScaler`` and ``MaxAbsScaler`` (without
``clip``), ``PCA`` (whitened or not), ``"passthrough"`` / ``None``,
pipelines of these, and ``ColumnTransformer`` whose parts are all of these
or ``"drop"`` (columns selected by name, index, mask or slice; the
remainder included). Anything else (``FunctionTransformer``,
``PolynomialFeatures``, unknown transformers) is refused with an error naming
the step. Used by the pull-back of certificates to raw input space and by the
adapters' exact route for linear classifiers behind affine preprocessing.
"""

import numpy as np
from sklearn.compose import ColumnTransformer
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
        "PCA, 'passthrough', 'drop', and ColumnTransformer of these) is supported. "
        "Two ways out: (1) smooth after that step and read the certificate in the space "
        "the preprocessing outputs, pipeline[-1].certify(pipeline[:-1].transform(X)); "
        "or (2) smooth the whole pipeline in raw input space with noise only on the "
        "columns that the step does not read, e.g. "
        "SmoothedClassifier(pipeline, noise_features=[numeric columns])."
    )


def _column_transformer_affine(name, ct, d):
    """The affine map of a fitted ColumnTransformer whose parts are all affine."""
    check_is_fitted(ct)
    if ct.n_features_in_ != d:
        raise ValueError(f"{step_name(name, ct)} expects {ct.n_features_in_} features, got {d}.")
    indices = getattr(ct, "_transformer_to_input_indices", None)
    if indices is None:  # pragma: no cover - private attribute of scikit-learn >= 1.0
        _refuse(name, ct, "its column selection cannot be read")
    # the parts as given: fitted "passthrough" parts become identity FunctionTransformers
    given = {part: transformer for part, transformer, _ in ct.transformers}
    given["remainder"] = ct.remainder
    blocks, offsets = [], []
    for part, transformer, _ in ct.transformers_:
        columns = np.asarray(indices.get(part, []), dtype=np.intp)
        if isinstance(given.get(part), str):
            transformer = given[part]
        if columns.size == 0 or (isinstance(transformer, str) and transformer == "drop"):
            continue
        inner = step_affine(f"{name}__{part}", transformer, columns.size)
        block = np.zeros((inner.n_features_out, d))
        block[:, columns] = inner.matrix()
        blocks.append(block)
        offsets.append(inner.offset)
    if not blocks:
        return Affine(np.zeros((0, d)), np.zeros(0), False)
    A, a = np.vstack(blocks), np.concatenate(offsets)
    off_diagonal = A - np.diag(np.diag(A)) if A.shape[0] == d else None
    if off_diagonal is not None and not off_diagonal.any() and np.all(np.diag(A) != 0):
        # every column kept in place, only scaled: stay diagonal (compact covariances)
        return Affine(np.diag(A).copy(), a, True)
    return Affine(A, a, False)


def step_affine(name, step, d):
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return Affine.identity(d)
    if isinstance(step, ColumnTransformer):
        return _column_transformer_affine(name, step, d)
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
