"""Models of ``smoothcert certify``: safe loading, and the estimator that certifies.

Models are read with skops, which builds only trusted types: skops' defaults,
the estimators defined in smoothcert, its forms of covariances (the family of a
deployed CertifiedRegion) and a few plain scikit-learn data holders
(:data:`EXTRA_TRUSTED_TYPES`); any other type is refused unless the user
passes ``--trust``. Pickle/joblib files, which execute arbitrary code when
loaded, need ``--unsafe-pickle``.
"""

import importlib
import zipfile
from pathlib import Path

import numpy as np

from ._columns import parse_noise_features
from ._errors import CLIError

#: Classes of scikit-learn that skops does not trust by default but that are
#: plain data holders built without running code (the optimizers an
#: MLPClassifier keeps after fit).
EXTRA_TRUSTED_TYPES = frozenset(
    {
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    }
)


def is_smoothcert_estimator(type_name):
    """Whether ``type_name`` names an estimator class defined in smoothcert.

    Parameters
    ----------
    type_name : str
        A dotted ``module.Class`` name, as listed by skops.

    Returns
    -------
    trusted : bool
        ``True`` only for a scikit-learn estimator class *defined* in a
        ``smoothcert`` module (not a name such a module imports).

    Examples
    --------
    >>> is_smoothcert_estimator("smoothcert._estimators._smoothed.SmoothedClassifier")
    True
    >>> is_smoothcert_estimator("smoothcert._estimators._base.LogisticRegression")
    False
    """
    from sklearn.base import BaseEstimator

    return _smoothcert_subclass(type_name, BaseEstimator)


def is_smoothcert_covariances(type_name):
    """Whether ``type_name`` names a form of per-row covariances defined in smoothcert.

    These plain data holders (arrays of variances, scales or matrices) are kept
    by a :class:`~smoothcert.CertifiedRegion` fitted with
    ``guarantee="deployed"`` (its covariance family), and trusted like
    smoothcert's estimators.

    Examples
    --------
    >>> is_smoothcert_covariances("smoothcert._geometry._forms._full.FullCovariances")
    True
    >>> is_smoothcert_covariances("smoothcert._geometry._forms._base.np")
    False
    """
    from .._geometry._forms import RowCovariances

    return _smoothcert_subclass(type_name, RowCovariances)


def _smoothcert_subclass(type_name, base):
    """Whether ``type_name`` names a subclass of ``base`` *defined* in a smoothcert module."""
    if not type_name.startswith("smoothcert."):
        return False
    module_name, _, class_name = type_name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    obj = getattr(module, class_name, None)
    return (
        isinstance(obj, type)
        and obj.__module__ == module_name
        and obj.__qualname__ == class_name
        and issubclass(obj, base)
    )


def load_model(path, *, trust=False, unsafe_pickle=False):
    """Load a fitted model from a skops file (or, explicitly, a pickle/joblib file).

    Parameters
    ----------
    path : str or Path
        The model file.
    trust : bool, default=False
        Also build the types of the skops file that are not trusted by
        default (skops' defaults, smoothcert's estimators and forms of
        covariances, and :data:`EXTRA_TRUSTED_TYPES` are).
    unsafe_pickle : bool, default=False
        Load with joblib (pickle), which executes arbitrary code.

    Returns
    -------
    model : object

    Raises
    ------
    CLIError
        Missing or invalid file, a pickle without ``unsafe_pickle``, or
        untrusted types without ``trust`` (listing them).
    """
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"model file not found: {path}")
    if unsafe_pickle:
        import joblib

        try:
            return joblib.load(path)
        except Exception as exc:  # any unpickling failure
            raise CLIError(f"cannot load {path} with joblib/pickle: {exc}") from None
    if not zipfile.is_zipfile(path):
        raise CLIError(
            f"{path} is not a skops file. Save models with skops.io.dump; to load a "
            "pickle/joblib file you fully trust, pass --unsafe-pickle (unpickling "
            "executes arbitrary code)."
        )
    try:
        import skops.io as sio
    except ImportError:
        raise CLIError("reading skops files requires skops: pip install skops") from None
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a corrupt or foreign zip archive
        raise CLIError(f"{path} is not a valid skops file: {exc}") from None
    unknown = [
        t for t in untrusted
        if t not in EXTRA_TRUSTED_TYPES
        and not is_smoothcert_estimator(t)
        and not is_smoothcert_covariances(t)
    ]
    if unknown and not trust:
        raise CLIError(
            f"{path} contains types that are not trusted by default: {', '.join(unknown)}. "
            "Inspect them (skops.io.get_untrusted_types) and pass --trust to load them."
        )
    try:
        return sio.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise CLIError(f"cannot load {path}: {exc}") from None


def feature_info(model):
    """The number and names of the features ``model`` was fitted on.

    Parameters
    ----------
    model : object
        A fitted estimator or Pipeline.

    Returns
    -------
    n_features : int or None
        ``n_features_in_``, ``None`` when the model does not record it.
    feature_names : ndarray of str or None
        ``feature_names_in_``, set when it was fitted on a DataFrame.
    """
    return getattr(model, "n_features_in_", None), getattr(model, "feature_names_in_", None)


def guarantee_of(smoother):
    """The name of ``smoother``'s guarantee (``"deployed"``, ``"per-covariance"``), or None.

    ``None`` for an estimator without a ``guarantee`` parameter (a
    SmoothedClassifier); the parameter may be a string or a guarantee object.

    Examples
    --------
    >>> from smoothcert import CertifiedRegion, SmoothedClassifier
    >>> from smoothcert.guarantees import PerCovarianceGuarantee
    >>> guarantee_of(CertifiedRegion(guarantee=PerCovarianceGuarantee()))
    'per-covariance'
    >>> guarantee_of(SmoothedClassifier()) is None
    True
    """
    from .._estimators._guarantees import guarantee_name

    guarantee = getattr(smoother, "guarantee", None)
    return None if guarantee is None else guarantee_name(guarantee)


def _keeps_its_family(smoother, method):
    """Whether ``smoother`` is a CertifiedRegion of ``method`` with a fitted deployed family."""
    return (
        getattr(smoother, "method", None) == method
        and guarantee_of(smoother) == "deployed"
        and hasattr(smoother, "_family")
    )


def _configure(smoother, method, params, X_train=None):
    """Apply ``--method``, the numeric options and ``--train-data`` to a fitted smoothing estimator.

    With a data-dependent ``method`` and training inputs ``X_train`` (in the
    space the smoothing estimator reads), the deployed classifier's family of
    covariances is fitted on them (``guarantee="deployed"``); without them the
    command certifies each input with its own searched covariance
    (``guarantee="per-covariance"``), unless the model already is a
    CertifiedRegion of that method with its deployed family.
    """
    from .._estimators._region import CertifiedRegion
    from .._estimators._smoothed import SmoothedClassifier

    fit_family = False
    if method is not None:
        data_dependent = method != "fixed"
        guarantee = "per-covariance"
        if data_dependent and X_train is not None:
            guarantee, fit_family = "deployed", True
        elif data_dependent and _keeps_its_family(smoother, method):
            guarantee = "deployed"
        if isinstance(smoother, SmoothedClassifier):
            if data_dependent:
                # Same base model, settings and fitted state; nothing is trained.
                smoother = smoother._convert(CertifiedRegion, method=method, guarantee=guarantee)
        elif isinstance(smoother, CertifiedRegion):
            smoother.set_params(method=method)
            if guarantee_of(smoother) != guarantee:
                # a guarantee object of the same name keeps its own parameters
                smoother.set_params(guarantee=guarantee)
        elif "method" in smoother.get_params(deep=False):
            smoother.set_params(method=method)
        else:
            raise CLIError(f"--method cannot be set on a {type(smoother).__name__}.")
    available = smoother.get_params(deep=False)
    for key, value in params.items():
        if value is None:
            continue
        if key not in available:
            raise CLIError(
                f"--{key.replace('_', '-')} does not apply to a {type(smoother).__name__}"
                + (" (use --method isotropic, diagonal or riemannian)" if key == "n_iter" else "")
                + "."
            )
        smoother.set_params(**{key: value})
    if params.get("noise_features") is not None and not fit_family and _keeps_its_family(
        smoother, getattr(smoother, "method", None)
    ):
        # the family was fitted for the model's noise columns
        if X_train is None:
            raise CLIError(
                "--noise-features changes the columns of the deployed classifier's "
                "covariance family, fitted for the model's own: pass --train-data to fit "
                "it again on these columns."
            )
        fit_family = True
    if fit_family:
        if X_train.shape[1] != smoother.n_features_in_:
            raise CLIError(
                f"the training data have {X_train.shape[1]} columns but the smoothing step "
                f"reads {smoother.n_features_in_}."
            )
        # the base model is not trained again: only the covariance family and its
        # selector are fitted, on the training inputs (no labels needed)
        smoother._fit_family(np.asarray(X_train, dtype=np.float64))
    return smoother


def _noise_columns(smoother, text, column_names):
    """``--noise-features`` as column indices of the smoothing estimator's input."""
    names = getattr(smoother, "feature_names_in_", None)
    if names is None:
        names = column_names
    return parse_noise_features(text, smoother.n_features_in_, names)


def build_certifier(model, X, method=None, params=None, *, noise_features=None,
                    column_names=None, X_train=None):
    """A fitted estimator that :func:`smoothcert.certify` accepts, for ``model``.

    Parameters
    ----------
    model : object
        A fitted smoothing estimator, a Pipeline ending in one, or a plain
        fitted classifier (smoothed as is, wrapped in ``FrozenEstimator``).
    X : ndarray of shape (n_rows, n_features)
        The data to certify (sets the input shape of a wrapped classifier).
    method : {"fixed", "isotropic", "diagonal", "riemannian"}, default=None
        Noise; ``None`` keeps the model's own (fixed for a plain classifier).
    params : dict, default=None
        Settings to override (``None`` values are skipped), for example
        ``{"sigma": 0.5, "n_samples": 1000}``.
    noise_features : str, default=None
        ``--noise-features``: comma-separated names or indices of the columns
        that receive noise (see :func:`~smoothcert.cli._columns.parse_noise_features`),
        columns of the smoothing step's input (for a pipeline, of its last step).
    column_names : sequence of str, default=None
        Names of the columns of ``X`` when the model records none (the data
        file's header).
    X_train : ndarray of shape (n_train, n_features), default=None
        ``--train-data``: raw training inputs. With a data-dependent
        ``method``, the deployed classifier's covariance family is fitted on
        them (after the preprocessing of a pipeline).

    Returns
    -------
    estimator : estimator
        The smoothing estimator (or the Pipeline ending in it).

    Raises
    ------
    CLIError
        A model that is not a fitted classifier, or options that do not
        apply to it.
    """
    from sklearn.base import is_classifier
    from sklearn.exceptions import NotFittedError
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    from .._estimators._smoothed import SmoothedClassifier

    params = dict(params or {})
    if isinstance(model, Pipeline) and hasattr(model.steps[-1][1], "certify"):
        name, last = model.steps[-1]
        if noise_features is not None:
            # columns of the last step's input: the pipeline's raw names do not apply
            params["noise_features"] = _noise_columns(last, noise_features, None)
        if X_train is not None:
            X_train = np.asarray(model[:-1].transform(X_train), dtype=np.float64)
        model.steps[-1] = (name, _configure(last, method, params, X_train))
        return model
    if hasattr(model, "certify"):
        if noise_features is not None:
            params["noise_features"] = _noise_columns(model, noise_features, column_names)
        return _configure(model, method, params, X_train)
    if not (is_classifier(model) or (hasattr(model, "predict") and hasattr(model, "classes_"))):
        raise CLIError(
            f"the model ({type(model).__name__}) is neither a smoothing estimator nor a "
            "classifier."
        )
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise CLIError(f"the model ({type(model).__name__}) is not fitted.") from None
    # A frozen base is not trained again: fit(X) takes the classes from it and
    # records the input shape.
    smoother = SmoothedClassifier(FrozenEstimator(model)).fit(X)
    if noise_features is not None:
        params["noise_features"] = _noise_columns(smoother, noise_features, column_names)
    return _configure(smoother, method or "fixed", params, X_train)
