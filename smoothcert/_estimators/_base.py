"""What the smoothing estimators share: parameters, fitting and input checks."""

import functools
import warnings
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone, is_classifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted, has_fit_parameter, validate_data

from ._adapters import _unwrap_frozen, is_torch_net, make_adapter
from .._certify._certificate import Certificate, row_index
from .._certify._pullback import non_numeric_columns
from .._certify._procedures import certify_rows, predict_rows, smoothed_frequencies
from .._certify._stats import clopper_pearson_lower, soft_lower_bound, target_probability
from .._engine import _progress
from .._engine._progress import Progress, warn_if_costly
from ..exceptions import NoCertificateWarning
from .._geometry._forms import RowCovariances
from .._certify._certificate import embed_matrices
from ._encoded import warn_encoded_noise
from .._search._searches import merge_search_info
from ._parallel import run_in_chunks
from .._engine._loop import resolve_batch_size
from .._engine._streams import resolve_seed

__all__ = ["BaseSmoothing"]

_AUGMENTATION_STAGE = 0xA06
#: Noise scales must keep their squares (variances) normal float64 numbers.
_MIN_SIGMA = 1e-100
_MAX_SIGMA = 1e100


#: Sequential sampling counts draws in 32-bit-safe integers.
_MAX_SEQUENTIAL = 2**31


def _check_radius(radius):
    """``radius`` of ``certify(X, radius=...)`` as a float (or None), checked."""
    if radius is None:
        return None
    if isinstance(radius, (bool, np.bool_)) or not isinstance(radius, Real):
        raise TypeError(
            f"radius must be a real number >= 0 or None, got {type(radius).__name__} {radius!r}."
        )
    radius = float(radius)
    if not np.isfinite(radius) or radius < 0:
        raise ValueError(f"radius must be a finite number >= 0, got {radius!r}.")
    return radius


def _resolve_noise_features(noise_features, n_features, feature_names):
    """Sorted indices of the columns that ``noise_features`` selects (None: all).

    Accepts integer indices (negative ones count from the end), column names
    (for an estimator fitted on a DataFrame) or a boolean mask of length
    ``n_features``. Selecting every column gives None, the default.
    """
    if noise_features is None:
        return None
    values = np.asarray(noise_features)
    if values.ndim != 1:
        raise ValueError(
            "noise_features must be a 1-D list of column indices, column names or a "
            f"boolean mask, got an array of shape {values.shape}."
        )
    if values.size == 0:
        raise ValueError("noise_features must select at least one column, got an empty list.")
    if values.dtype == bool:
        if values.shape[0] != n_features:
            raise ValueError(
                f"noise_features as a boolean mask must have one entry per feature "
                f"({n_features}), got {values.shape[0]}."
            )
        if not values.any():
            raise ValueError("noise_features must select at least one column; the mask is all False.")
        indices = np.flatnonzero(values)
    elif values.dtype.kind in "iu":
        indices = values.astype(np.int64)
        bad = indices[(indices < -n_features) | (indices >= n_features)]
        if bad.size:
            raise ValueError(
                f"noise_features has column indices {bad.tolist()} out of range for "
                f"{n_features} features."
            )
        indices = np.where(indices < 0, indices + n_features, indices)
    elif values.dtype.kind in "UO" and all(isinstance(v, str) for v in values.tolist()):
        if feature_names is None:
            raise ValueError(
                f"noise_features holds column names ({values.tolist()[:5]}) but the "
                "estimator was not fitted on a DataFrame with string column names; "
                "pass column indices or a boolean mask."
            )
        position = {name: i for i, name in enumerate(np.asarray(feature_names).tolist())}
        unknown = [v for v in values.tolist() if v not in position]
        if unknown:
            raise ValueError(
                f"noise_features names columns {unknown} that are not among the "
                f"features seen in fit (feature_names_in_)."
            )
        indices = np.array([position[v] for v in values.tolist()], dtype=np.int64)
    else:
        raise TypeError(
            "noise_features must hold column indices (int), column names (str) or "
            f"booleans, got values of type {values.dtype}."
        )
    if np.unique(indices).size != indices.size:
        raise ValueError(f"noise_features selects some columns twice: {values.tolist()}.")
    indices = np.sort(indices)
    if indices.size == n_features:
        return None
    return indices


def _refuse_missing(X):
    """Refuse NaN or infinite inputs with smoothcert's message, before the base model sees them."""
    try:
        values = np.asarray(X)
    except (TypeError, ValueError):
        return
    if values.dtype.kind in "OUS" and values.ndim == 2:
        _refuse_text(X)
    if values.dtype.kind not in "fiub" or values.ndim != 2 or np.all(np.isfinite(values)):
        return  # not real numbers (validate_data names the problem), or all finite
    row, column = np.argwhere(~np.isfinite(values))[0]
    kind = "NaN (a missing value)" if np.isnan(values[row, column]) else "infinity"
    count = int((~np.isfinite(values)).sum())
    raise ValueError(
        f"X contains {kind} at row {row}, column {column} ({count} non-finite values in "
        "all): randomized smoothing adds noise to every feature of every input and needs "
        "finite numbers. Impute or drop missing values (and replace infinite ones) before "
        "smoothing."
    )


def _refuse_text(X):
    """Refuse columns that are not numbers with smoothcert's message, naming them."""
    positions, labels = non_numeric_columns(X)
    if not positions:
        return
    raise ValueError(
        f"X has columns that are not numbers: {labels[:10]}"
        f"{' ...' if len(labels) > 10 else ''} (positions {positions[:10]}). A smoothing "
        "estimator draws noise in the space of X and reads every column as a number, "
        "even when its base model drops or encodes some columns. Ways out: (1) pass X "
        "without these columns when the base model does not use them; (2) encode them as "
        "numbers (category codes) and leave them out of the noise with noise_features="
        "[the numeric columns]; (3) smooth after the preprocessing, "
        "make_pipeline(column_transformer, SmoothedClassifier(...)), and certify with "
        "smoothcert.certify(pipeline, X), which accepts text columns that the "
        "ColumnTransformer drops."
    )


def _check_classifier(estimator):
    """Refuse base models that do not predict classes (regressors, clusterers, ...)."""
    if is_classifier(estimator):
        return
    inner = _unwrap_frozen(estimator)
    kind = get_tags(estimator).estimator_type
    what = f"a {kind}" if kind else "not a classifier"
    raise TypeError(
        f"estimator must be a classifier, but {type(inner).__name__} is {what}: its "
        "predictions would be taken for class labels and the certificates would be "
        "meaningless. Pass a scikit-learn classifier (is_classifier(estimator) must be "
        "True; a custom one can inherit sklearn.base.ClassifierMixin) or a skorch "
        "NeuralNetClassifier."
    )


class BaseSmoothing(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Base class of the randomized-smoothing meta-estimators (not public)."""

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "n_samples": [Interval(Integral, 2, None, closed="left")],
        "n_samples_selection": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "vote": [StrOptions({"hard", "soft"})],
        "noise_augmentation": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "sampling": [StrOptions({"fixed", "sequential"})],
        "radius_tol": [Interval(Real, 0, 1, closed="neither")],
        "noise_features": ["array-like", None],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    # ------------------------------------------------------------------ fitting
    def _base_estimator(self):
        return LogisticRegression() if self.estimator is None else self.estimator

    def fit(self, X, y=None, sample_weight=None, **fit_params):
        """Fit the base classifier (on Gaussian-noised copies if asked).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs, finite.
        y : array-like of shape (n_samples,), default=None
            Class labels (any hashable labels: strings, non-contiguous ints).
            Required, except for a pre-fitted base model wrapped in
            :class:`~sklearn.frozen.FrozenEstimator`: that model is not
            trained again, its ``classes_`` are used, and ``X`` only sets
            the number (and names) of the features.
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the base estimator's ``fit``; it must accept it.
        **fit_params : dict
            Other parameters passed to the base estimator's ``fit``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        self._validate_extra_params()
        self._warn_if_nothing_can_be_certified()
        _refuse_missing(X)
        base = self._base_estimator()
        _check_classifier(base)
        frozen = isinstance(base, FrozenEstimator)
        if frozen and y is None:
            inner = _unwrap_frozen(base)
            check_is_fitted(inner)
            validate_data(self, X, dtype=np.float64, ensure_min_samples=1)
            self._noise_columns()
            self.classes_ = np.asarray(inner.classes_)
            if self.noise_augmentation:
                raise ValueError(
                    "noise_augmentation must be 0 with a pre-fitted (FrozenEstimator) "
                    "estimator, which is not trained again."
                )
            self._check_soft_vote(base)
            self.estimator_ = clone(base)
            self._fitted_on_indices = False
            warn_encoded_noise(self.estimator_, self._noise_columns(), self.n_features_in_,
                               getattr(self, "feature_names_in_", None))
            return self
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=1)
        self._noise_columns()
        check_classification_targets(y)
        if frozen:
            inner = _unwrap_frozen(base)
            check_is_fitted(inner)
            self.classes_ = np.asarray(inner.classes_)
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            if unknown.size:
                raise ValueError(
                    f"y contains labels {unknown.tolist()} unknown to the pre-fitted estimator."
                )
            if self.noise_augmentation:
                raise ValueError(
                    "noise_augmentation must be 0 with a pre-fitted (FrozenEstimator) "
                    "estimator, which is not trained again."
                )
            y_fit = y
        else:
            encoder = LabelEncoder().fit(y)
            self.classes_ = encoder.classes_
            y_fit = encoder.transform(y)
        if len(self.classes_) < 2 and not frozen:
            raise ValueError(
                f"y contains only one class ({self.classes_.tolist()[0]!r}); "
                "at least 2 classes are needed."
            )
        if sample_weight is not None:
            if not has_fit_parameter(_unwrap_frozen(base), "sample_weight"):
                raise TypeError(
                    f"sample_weight was given but {type(base).__name__}.fit "
                    "does not accept sample_weight."
                )
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != (X.shape[0],):
                raise ValueError(
                    f"sample_weight must have shape ({X.shape[0]},), got {sample_weight.shape}."
                )
            fit_params["sample_weight"] = sample_weight
        X_fit, y_fit, fit_params = self._augment(X, y_fit, fit_params)
        torch_net = is_torch_net(_unwrap_frozen(base))
        if torch_net:
            X_fit = X_fit.astype(np.float32)
            if not frozen:
                y_fit = y_fit.astype(np.int64)
        elif getattr(self, "feature_names_in_", None) is not None:
            # keep the column names: the base model may select columns by name
            import pandas as pd

            X_fit = pd.DataFrame(X_fit, columns=self.feature_names_in_, copy=False)
        self._check_soft_vote(base)
        self.estimator_ = clone(base).fit(X_fit, y_fit, **fit_params)
        self._fitted_on_indices = not frozen
        self._check_soft_vote(self.estimator_)
        warn_encoded_noise(self.estimator_, self._noise_columns(), self.n_features_in_,
                           getattr(self, "feature_names_in_", None))
        return self

    def _noise_columns(self):
        """Sorted indices of the columns that receive noise, or None for all of them.

        Resolved from ``noise_features`` against the features seen in
        :meth:`fit`, with an error naming the parameter when it does not fit them.
        """
        return _resolve_noise_features(
            self.noise_features, self.n_features_in_, getattr(self, "feature_names_in_", None)
        )

    def _n_noise_features(self):
        """Dimension of the noise: the number of columns that receive it."""
        columns = self._noise_columns()
        return self.n_features_in_ if columns is None else columns.size

    def _embedded_matrices(self, covariances):
        """Dense ``(n, d, d)`` covariances, zero outside the noisy columns."""
        columns = self._noise_columns()
        if columns is None:
            return covariances.matrices()
        return embed_matrices(covariances.matrices(), columns, self.n_features_in_)

    def _check_soft_vote(self, estimator):
        if self.vote == "soft" and not hasattr(estimator, "predict_proba"):
            raise ValueError(
                "vote='soft' needs a base estimator with predict_proba; "
                f"{type(estimator).__name__} has none. Use vote='hard'."
            )

    def _validate_extra_params(self):
        """Checks beyond ``_parameter_constraints`` (subclasses extend them)."""
        self._check_sigma_range(float(self.sigma), float(self.sigma))

    def _warn_if_nothing_can_be_certified(self):
        """Warn when ``alpha`` and ``n_samples`` leave every input abstaining."""
        n, alpha = int(self.n_samples), float(self.alpha)
        if self.vote == "hard":
            # all n draws for the top class: the Clopper-Pearson bound is alpha^(1/n)
            best = clopper_pearson_lower(n, n, alpha)
            needed = int(np.floor(np.log2(1.0 / alpha))) + 1
            advice = f"use n_samples >= {needed} with alpha={alpha:g}"
        else:
            best = soft_lower_bound(1.0, 0.0, n, alpha)
            advice = "raise n_samples (soft votes need more draws than hard ones)"
        if best <= 0.5:
            warnings.warn(
                f"With alpha={alpha:g} and n_samples={n}, no input can be certified: even "
                f"when every draw votes for the top class, the lower confidence bound of "
                f"its probability is {float(best):.3g} <= 1/2, so every input abstains; "
                f"{advice}.",
                NoCertificateWarning,
                stacklevel=3,
            )

    def _check_sigma_range(self, smallest, largest):
        """Refuse noise scales whose variance is not a normal float64."""
        if not (_MIN_SIGMA <= smallest and largest <= _MAX_SIGMA):
            raise ValueError(
                f"sigma={self.sigma!r} gives noise scales in [{smallest:g}, {largest:g}], "
                f"outside the supported range [{_MIN_SIGMA:g}, {_MAX_SIGMA:g}] "
                "(their squares must be finite, non-zero float64 variances)."
            )

    def _augment(self, X, y, fit_params):
        k = self.noise_augmentation
        if not k:
            return X, y, fit_params
        seed = resolve_seed(self.random_state)
        rng = np.random.default_rng(np.random.SeedSequence([*seed, _AUGMENTATION_STAGE]))
        columns = self._noise_columns()
        mask = np.ones(X.shape[1]) if columns is None else np.isin(np.arange(X.shape[1]), columns)
        X_aug = np.concatenate(
            [X + self.sigma * rng.standard_normal(X.shape) * mask for _ in range(k)]
        )
        y_aug = np.concatenate([y] * k)
        fit_params = dict(fit_params)
        if "sample_weight" in fit_params:
            fit_params["sample_weight"] = np.tile(fit_params["sample_weight"], k)
        return X_aug, y_aug, fit_params

    # ---------------------------------------------------------------- inference
    def _check_X(self, X):
        check_is_fitted(self)
        # Parameters may have been changed with set_params after fit: check them
        # again before any draw is made.
        self._validate_params()
        self._validate_extra_params()
        self._warn_if_nothing_can_be_certified()
        self._check_soft_vote(self.estimator_)
        self._noise_columns()
        _refuse_missing(X)
        return validate_data(self, X, reset=False, dtype=np.float64)

    def _adapter(self):
        adapter = make_adapter(self.estimator_, self.classes_, self._fitted_on_indices)
        adapter.noise_features = self._noise_columns()
        return adapter

    def _batch_size(self, n_features):
        return resolve_batch_size(self.batch_size, n_features)

    def _seed(self):
        return resolve_seed(self.random_state)

    def _noise(self, X, adapter, seed, progress):
        """``(covariances, guarantee, search_info)`` of the rows of ``X`` (subclasses)."""
        raise NotImplementedError

    def _search_cost(self):
        """Base-model predictions per input spent choosing the covariance (subclasses)."""
        return 0

    def _search_passes(self):
        """Engine passes (iterations) of the covariance search, one after the other (subclasses)."""
        return 0

    def _check_sequential(self, radius):
        """Sequential sampling keeps exact integer counts: refuse a budget beyond them."""
        if (radius is not None or self.sampling == "sequential") and self.n_samples >= _MAX_SEQUENTIAL:
            raise ValueError(
                f"n_samples={self.n_samples} is too large for sequential sampling "
                f"(certify(X, radius=...) or sampling='sequential'): at most "
                f"{_MAX_SEQUENTIAL - 1} draws per input."
            )

    def _run(self, X, work, per_row, what, serial=False, search=True):
        """Run ``work`` over the rows of ``X`` with the cost warning, a progress bar and ``n_jobs``.

        ``per_row`` is the number of base-model predictions per input at most;
        ``search`` says whether the call runs the covariance search (whose
        iterations add their own time to the projection of the cost warning).
        Returns the list of the chunks' results.
        """
        total = X.shape[0] * per_row
        n_workers = 1
        if not serial and self.n_jobs not in (None, 1):
            n_workers = min(effective_n_jobs(self.n_jobs), X.shape[0])
        overhead = (self._search_passes() if search else 0) * _progress.SECONDS_PER_PASS
        if total > _progress.MEASURE_ABOVE_PREDICTIONS or overhead > _progress.COST_WARNING_SECONDS:
            # the projected time at this model's measured speed (no noise drawn)
            adapter = self._adapter()
            predict = adapter.scores if self.vote == "soft" else adapter.labels
            warn_if_costly(
                total,
                _progress.prediction_seconds(predict, X),
                f"{type(self).__name__}.{what} on {X.shape[0]} inputs",
                "Lower n_samples (or n_iter / n_samples_optim for the covariance search); "
                "to ask whether inputs are certified at a radius R, certify(X, radius=R) "
                "stops most inputs after a few hundred draws.",
                n_workers=n_workers,
                overhead_seconds=overhead,
                stacklevel=4,
            )
        with Progress(total, f"smoothcert {what}", bool(self.verbose)) as progress:
            return run_in_chunks(work, X, None if serial else self.n_jobs, progress)

    def _certify(self, X, *, radius=None, min_eigenvalue=None, memory=None, covariances=None):
        """CERTIFY every row of ``X``, at a target radius or not, and wrap the result.

        ``min_eigenvalue`` maps the covariances to the smallest eigenvalue of
        each row *in the space where* ``radius`` *is measured* (the raw space of
        a pipeline); by default their own.
        """
        radius = _check_radius(radius)
        index = row_index(X)
        X = self._check_X(X)
        self._check_sequential(radius)
        if covariances is not None:
            covariances = covariances(X)
        work = functools.partial(
            self._certify_chunk, seed=self._seed(), radius=radius, min_eigenvalue=min_eigenvalue,
            covariances=covariances, memory=memory is not None,
        )
        search = self._search_cost() if covariances is None else 0
        per_row = search + self.n_samples_selection + self.n_samples
        parts = self._run(
            X, work, per_row, "certify", serial=covariances is not None, search=covariances is None
        )
        covariances = RowCovariances.concatenate([part[0] for part in parts])
        top, p_lower, abstained, r, n_draws = (
            np.concatenate([part[k] for part in parts]) for k in range(1, 6)
        )
        # optional per-row fields of a subclass (the selection region of
        # guarantee="deployed"): forms or arrays, concatenated over the chunks
        extra = {}
        for name in parts[0][8] if len(parts[0]) > 8 else ():
            values = [part[8][name] for part in parts]
            extra[name] = (
                RowCovariances.concatenate(values)
                if isinstance(values[0], RowCovariances) else np.concatenate(values)
            )
        cert = Certificate(
            center=X,
            prediction=self.classes_[top],
            abstained=abstained,
            covariance=covariances,
            mahalanobis_radius=r,
            p_lower=p_lower,
            alpha=self.alpha,
            guarantee=parts[0][6],
            n_draws=n_draws,
            search_info=merge_search_info([part[7] for part in parts]),
            target_radius=radius,
            index=index,
            noise_features=self._noise_columns(),
            **extra,
        )
        return cert if memory is None else memory.process(cert)

    def _certify_chunk(self, X, progress, *, seed, radius, min_eigenvalue, covariances=None,
                       memory=False):
        adapter = self._adapter()
        if covariances is None:
            covariances, guarantee, info = self._noise(X, adapter, seed, progress)
        else:
            guarantee, info = "per-covariance", None
        target_p = None
        if radius is not None:
            lam = covariances.min_eigenvalue() if min_eigenvalue is None else min_eigenvalue(covariances)
            target_p = target_probability(radius, lam)
        rows = certify_rows(
            adapter,
            X,
            covariances,
            n_samples=self.n_samples,
            n_samples_selection=self.n_samples_selection,
            alpha=self.alpha,
            vote=self.vote,
            seed=seed,
            batch_size=self._batch_size(X.shape[1]),
            progress=progress,
            target_p=target_p,
            radius_tol=self.radius_tol if radius is None and self.sampling == "sequential" else None,
        )
        return (covariances, *rows, guarantee, info)

    def predict_proba(self, X):
        """Monte-Carlo estimate of the smoothed class probabilities.

        Hard votes: frequency of each class among ``n_samples`` noisy
        predictions. Soft votes: mean of the base ``predict_proba``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1.
        """
        X = self._check_X(X)
        work = self._sampling_work(smoothed_frequencies)
        parts = self._run(X, work, self._search_cost() + self.n_samples, "predict_proba")
        return np.concatenate(parts)

    def _sampling_work(self, procedure, **options):
        """The work of a Monte-Carlo call over chunks: the noise, then ``procedure``.

        ``procedure`` is :func:`smoothed_frequencies` or :func:`predict_rows`,
        called with this estimator's ``n_samples``, ``vote`` and batch size,
        the call's seed and ``options``.
        """
        return functools.partial(
            self._sampling_chunk, procedure=procedure, seed=self._seed(), **options
        )

    def _sampling_chunk(self, X, progress, *, procedure, seed, **options):
        adapter = self._adapter()
        covariances, _, _ = self._noise(X, adapter, seed, progress)
        return procedure(
            adapter, X, covariances, n_samples=self.n_samples, vote=self.vote, seed=seed,
            batch_size=self._batch_size(X.shape[1]), progress=progress, **options,
        )

    def predict_abstain(self, X):
        """PREDICT with abstention (Cohen et al., 2019).

        The top class is returned only where it is significantly more frequent
        than the runner-up: two-sided binomial test at level ``alpha`` for hard
        votes, a Hoeffding test for soft votes. Elsewhere the classifier
        abstains. With probability at least ``1 - alpha`` a returned class is
        the prediction of the smoothed classifier. With
        ``sampling="sequential"`` the test is made at doubling numbers of
        draws, with ``alpha`` spent over the looks, and each input stops as
        soon as it is decided (at most ``n_samples`` draws).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs to classify.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Top class of each input (also where abstaining).
        abstained : ndarray of shape (n_samples,), bool
            True where the test does not reject a tie.
        """
        top, abstained, _ = self._predict_rows(X)
        return self.classes_[top], abstained

    def _predict_rows(self, X):
        X = self._check_X(X)
        self._check_sequential(None)
        work = self._sampling_work(predict_rows, alpha=self.alpha, sampling=self.sampling)
        parts = self._run(X, work, self._search_cost() + self.n_samples, "predict")
        return tuple(np.concatenate([part[k] for part in parts]) for k in range(3))

    def predict_base(self, X):
        """Predictions of the base classifier alone, without noise.

        The decision regions that the smoothed classifier averages: cheap
        (one base-model call per input), useful to plot or to compare with
        the smoothed prediction.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs, classified without noise.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        X = self._check_X(X)
        return self.classes_[self._adapter().labels(X)]

    def _convert(self, cls, **params):
        """A fitted ``cls`` estimator sharing this one's fitted base model (no training).

        Parameters shared by both classes are copied, ``params`` set on top;
        the fitted state (base model, classes, feature names) is shared.
        """
        shared = cls().get_params(deep=False)
        mine = self.get_params(deep=False)
        new = cls(**{k: mine[k] for k in shared if k in mine})
        new.set_params(**params)
        for key, value in vars(self).items():
            if key not in mine:
                setattr(new, key, value)
        new._validate_params()
        new._validate_extra_params()
        return new

    def predict(self, X):
        """Predicted class of the smoothed classifier.

        With ``sampling="fixed"`` the argmax of :meth:`predict_proba`
        (``n_samples`` draws per input); with ``sampling="sequential"`` the top
        class of the sequential PREDICT of :meth:`predict_abstain`, which
        stops drawing for an input as soon as its top class is decided.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        if self.sampling == "sequential":
            return self.classes_[self._predict_rows(X)[0]]
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # -------------------------------------------------------------------- tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.classifier_tags.multi_class = True
        return tags
