"""Find the input columns that a base pipeline encodes as categories, and warn about noise on them."""

import warnings

import numpy as np

from ..exceptions import EncodedNoiseWarning

__all__ = ["encoded_columns", "warn_encoded_noise"]


def _encoder_types():
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    types = [OneHotEncoder, OrdinalEncoder]
    try:
        from sklearn.preprocessing import TargetEncoder
    except ImportError:  # pragma: no cover - scikit-learn < 1.3
        pass
    else:
        types.append(TargetEncoder)
    return tuple(types)


def _encodes(transformer, encoders):
    """Whether a (fitted) transformer is, or contains, an encoder of categories."""
    from sklearn.pipeline import Pipeline

    if isinstance(transformer, encoders):
        return True
    if isinstance(transformer, Pipeline):
        return any(_encodes(step, encoders) for _, step in transformer.steps
                   if step not in (None, "passthrough"))
    return False


def _column_transformers(estimator):
    """The fitted ColumnTransformers that see the raw input of ``estimator``.

    Those in the leading steps of a Pipeline (nested pipelines included) up
    to the first step that is not a pipeline or a ColumnTransformer.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    if isinstance(estimator, ColumnTransformer):
        return [estimator]
    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            if step is None or (isinstance(step, str) and step == "passthrough"):
                continue
            return _column_transformers(step)
    return []


def encoded_columns(estimator):
    """Indices of the input columns that ``estimator`` passes to a category encoder.

    Parameters
    ----------
    estimator : fitted estimator
        A base model; only pipelines starting with a ColumnTransformer (or a
        bare ColumnTransformer) encode columns.

    Returns
    -------
    columns : dict
        ``{input column index: name of the transformer that encodes it}``.
    """
    encoders = _encoder_types()
    found = {}
    for ct in _column_transformers(estimator):
        indices = getattr(ct, "_transformer_to_input_indices", None)
        if indices is None:  # pragma: no cover - unfitted or very old scikit-learn
            continue
        for name, transformer, _ in ct.transformers_:
            if isinstance(transformer, str):
                continue
            if _encodes(transformer, encoders):
                for column in np.asarray(indices.get(name, []), dtype=np.int64).tolist():
                    found.setdefault(column, f"{name} ({type(transformer).__name__})")
    return found


def warn_encoded_noise(estimator, noise_columns, n_features, feature_names):
    """Warn when noise reaches columns that ``estimator`` encodes as categories."""
    encoded = encoded_columns(estimator)
    if not encoded:
        return
    noisy = set(range(n_features)) if noise_columns is None else set(noise_columns.tolist())
    hit = sorted(c for c in encoded if c in noisy)
    if not hit:
        return
    names = [str(feature_names[c]) if feature_names is not None else str(c) for c in hit]
    steps = sorted({encoded[c] for c in hit})
    keep = sorted(noisy - set(hit))
    if feature_names is not None:
        suggestion = [str(feature_names[c]) for c in keep]
    else:
        suggestion = keep
    warnings.warn(
        f"Gaussian noise reaches the input columns {names}, which the base model "
        f"encodes as categories ({', '.join(steps)}): a noisy category code is no "
        "category (an all-zero one-hot row, or an 'unknown category' error), so "
        "the smoothed classifier and its certificates are about values that cannot "
        "occur. Give noise only to the numeric columns with noise_features, "
        + (f"e.g. noise_features={suggestion}." if suggestion else "which must keep at least one column."),
        EncodedNoiseWarning,
        stacklevel=3,
    )
