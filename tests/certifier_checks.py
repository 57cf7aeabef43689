"""Checks that every certifier must pass, generated for one estimator at a time.

Like scikit-learn's ``parametrize_with_checks``: :func:`yield_certifier_checks`
yields the named checks for a certifier (an unfitted :class:`SmoothedClassifier`
or :class:`CertifiedRegion`), and :func:`parametrize_with_certifier_checks`
turns a list of certifiers into a ``pytest.mark.parametrize`` over
``(estimator, check)`` with readable ids such as
``CertifiedRegion-riemannian-soft-forest-check_batch_invariance``.

A check is called as ``check(estimator, data)``, ``data`` a :class:`CheckData`
(training rows and labels, query rows). It fits its own clone, so checks are
independent of each other and of their order. The query rows must include
rows near the decision boundaries (their votes split, so that ``p_lower``
varies from row to row and from seed to seed) and rows that are certified;
``test_certifier_checks.py`` asserts that its data does.
"""

import inspect
import pickle
from typing import NamedTuple

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from conftest import assert_same_certificates, forbid_sampling
from smoothcert import Certificate, CertificateMemory
from smoothcert._certify._stats import clopper_pearson_lower, soft_lower_bound

__all__ = ["CheckData", "certifier_id", "parametrize_with_certifier_checks",
           "yield_certifier_checks"]


class CheckData(NamedTuple):
    X: np.ndarray  # training inputs
    y: np.ndarray  # training labels
    X_query: np.ndarray  # inputs to certify (at least 8 rows)


# -------------------------------------------------------------------- helpers
_BASE_NAMES = {"RandomForestClassifier": "forest", "LogisticRegression": "logistic"}


def certifier_id(estimator):
    """``Class[-method]-vote-base``, e.g. ``CertifiedRegion-diagonal-hard-forest``."""
    parts = [type(estimator).__name__]
    if hasattr(estimator, "method"):
        parts.append(estimator.method)
    parts.append(estimator.vote)
    base = type(estimator.estimator).__name__
    parts.append(_BASE_NAMES.get(base, base))
    return "-".join(parts)


def _fitted(estimator, data, **params):
    return clone(estimator).set_params(**params).fit(data.X, data.y)


def _inference_methods(estimator):
    """The public methods that draw noise for given inputs."""
    names = ["certify", "predict", "predict_proba", "predict_abstain"]
    return [name for name in names if hasattr(estimator, name)]


def _top_bound(estimator):
    """``p_lower`` of a row whose every draw votes for its top class."""
    n, alpha = estimator.n_samples, estimator.alpha
    if estimator.vote == "hard":
        return float(clopper_pearson_lower(n, n, alpha))
    return float(soft_lower_bound(1.0, 0.0, n, alpha))


# --------------------------------------------------------------------- checks
def check_batch_invariance(estimator, data):
    """``batch_size`` changes how draws are split, never a result (bit for bit)."""
    fitted = _fitted(estimator, data, batch_size="auto")
    reference = fitted.certify(data.X_query)
    for batch_size in (7, 1000):
        fitted.set_params(batch_size=batch_size)
        assert_same_certificates(fitted.certify(data.X_query), reference)
    # fitted with another batch size (the fit does not draw for the certifier)
    other = _fitted(estimator, data, batch_size=7)
    assert_same_certificates(other.certify(data.X_query), reference)


def check_row_order_invariance(estimator, data):
    """A row's certificate depends on that row only: not on the order of the rows,
    the other rows of the call, or a copy of itself next to it."""
    fitted = _fitted(estimator, data)
    Xq = data.X_query
    reference = fitted.certify(Xq)
    perm = np.random.default_rng(0).permutation(len(Xq))
    assert not np.array_equal(perm, np.arange(len(Xq)))
    assert_same_certificates(fitted.certify(Xq[perm]), reference[perm])
    assert_same_certificates(fitted.certify(Xq[2:5]), reference[2:5])
    assert_same_certificates(fitted.certify(Xq[[6]]), reference[[6]])
    assert_same_certificates(fitted.certify(Xq[[1, 1, 0]]), reference[[1, 1, 0]])


def check_n_jobs_invariance(estimator, data):
    """Joblib workers over groups of rows give the certificates of one worker."""
    fitted = _fitted(estimator, data, n_jobs=1)
    serial = fitted.certify(data.X_query)
    fitted.set_params(n_jobs=2)
    assert_same_certificates(fitted.certify(data.X_query), serial)
    fitted.set_params(n_jobs=None)
    assert_same_certificates(fitted.certify(data.X_query), serial)


#: bad inputs: (name, make X from the query rows, exception, message)
_BAD_X = [
    ("nan", lambda X: np.where(np.arange(X.size).reshape(X.shape) == 1, np.nan, X), "NaN"),
    ("n_features", lambda X: np.hstack([X, X[:, :1]]), "3 features"),
]
#: bad parameters set after fit: (params, message)
_BAD_PARAMS = [
    ({"n_samples": 0}, "'n_samples' parameter"),
    ({"alpha": 2}, "'alpha' parameter"),
    ({"vote": "x"}, "'vote' parameter"),
    ({"batch_size": 0}, "'batch_size' parameter"),
]


def check_validation_before_draws(estimator, data):
    """Bad input and parameters changed after fit are refused, naming the problem,
    before any Monte-Carlo draw."""
    fitted = _fitted(estimator, data)
    X = data.X_query[:4]
    methods = _inference_methods(fitted)
    assert {"certify", "predict", "predict_proba"} <= set(methods)
    with forbid_sampling():
        # the guard is live: a valid call does reach the engine, and fails there
        with pytest.raises(AssertionError, match="Monte-Carlo draw"):
            fitted.certify(X)
        for method in methods:
            for name, make_bad, match in _BAD_X:
                with pytest.raises(ValueError, match=match):
                    getattr(fitted, method)(make_bad(X))
            for params, match in _BAD_PARAMS:
                previous = {key: getattr(fitted, key) for key in params}
                fitted.set_params(**params)
                try:
                    with pytest.raises((ValueError, TypeError), match=match):
                        getattr(fitted, method)(X)
                finally:
                    fitted.set_params(**previous)


#: Certificate fields with one entry per row (sliced with the rows) and shared ones.
_ROW_FIELDS = ("center", "prediction", "abstained", "covariance", "mahalanobis_radius", "p_lower",
               "n_draws", "from_memory", "memory_index", "shrunk", "index",
               "selection_covariance", "selection_mahalanobis_radius")
_SHARED_FIELDS = ("alpha", "guarantee", "search_info", "pullback_info", "target_radius",
                  "noise_features")


def _check_fields_and_slicing(cert, n):
    declared = [p for p in inspect.signature(Certificate.__init__).parameters if p != "self"]
    # every declared field is classified here: a new one must be added to this check
    assert sorted(declared) == sorted(_ROW_FIELDS + _SHARED_FIELDS), declared
    for name in declared:
        assert hasattr(cert, name), name
    assert hasattr(cert, "covariances") and hasattr(cert, "radius")
    assert len(cert) == n
    rows = slice(1, 3)
    part = cert[rows]
    assert len(part) == 2
    for name in (*_ROW_FIELDS, "radius"):
        value = getattr(cert, name)
        if value is None:
            assert getattr(part, name) is None, name
        else:
            assert np.shape(value)[0] == n, name
            assert_array_equal(getattr(part, name), value[rows], err_msg=name, strict=True)
    assert_array_equal(part.covariances.matrices(), cert.covariances.matrices()[rows])
    for name in _SHARED_FIELDS:
        assert getattr(part, name) is getattr(cert, name) or (
            getattr(part, name) == getattr(cert, name)
        ), name


def check_declared_fields(estimator, data):
    """Every field ``Certificate.__init__`` declares exists after ``certify`` and
    survives slicing (per-row fields sliced, shared ones kept); ``n_draws`` is
    ``n_samples`` for every row."""
    import pandas as pd

    fitted = _fitted(estimator, data)
    n = len(data.X_query)
    cert = fitted.certify(data.X_query)
    _check_fields_and_slicing(cert, n)
    assert_array_equal(cert.n_draws, np.full(n, fitted.n_samples))
    assert cert.n_draws.dtype.kind == "i"
    assert cert.alpha == fitted.alpha
    assert cert.index is None  # an array has no row labels
    assert cert.from_memory is None and cert.memory_index is None and cert.shrunk is None
    assert cert.target_radius is None
    # certified at a target radius: every field survives too, the draws are counted
    at_radius = fitted.certify(data.X_query, radius=0.05)
    _check_fields_and_slicing(at_radius, n)
    assert at_radius.target_radius == 0.05
    assert np.all((at_radius.n_draws >= 1) & (at_radius.n_draws <= fitted.n_samples))
    assert np.all(at_radius.radius[at_radius.certified] >= 0.05)
    # a DataFrame's row labels are kept, and sliced
    labels = np.array([f"q{i}" for i in range(n)])
    framed = fitted.certify(pd.DataFrame(data.X_query, index=labels))
    assert_array_equal(framed.index, labels)
    _check_fields_and_slicing(framed, n)
    assert_same_certificates(framed, cert)
    if "memory" in inspect.signature(fitted.certify).parameters:
        sound = fitted.certify(data.X_query, memory=CertificateMemory())
        assert sound.guarantee == "memory"
        for name in ("from_memory", "memory_index", "shrunk"):
            assert getattr(sound, name) is not None, name
        _check_fields_and_slicing(sound, n)
        assert_array_equal(sound.n_draws, np.full(n, fitted.n_samples))


def _same_params(a, b):
    pa, pb = a.get_params(deep=True), b.get_params(deep=True)
    assert pa.keys() == pb.keys()
    for key, value in pa.items():
        if hasattr(value, "get_params"):
            assert type(pb[key]) is type(value), key
            assert pb[key] is not value, f"{key} was not cloned"
        else:
            assert pb[key] == value, key


def check_pickle_and_clone(estimator, data):
    """A fitted certifier survives pickling with identical results; ``clone`` gives
    an unfitted estimator with the same parameters, which refits to the same results."""
    fitted = _fitted(estimator, data)
    reference = fitted.certify(data.X_query)
    proba = fitted.predict_proba(data.X_query[:4])
    restored = pickle.loads(pickle.dumps(fitted))
    assert type(restored) is type(fitted)
    assert_array_equal(restored.classes_, fitted.classes_)
    assert_same_certificates(restored.certify(data.X_query), reference)
    assert_array_equal(restored.predict_proba(data.X_query[:4]), proba)
    cloned = clone(fitted)
    with pytest.raises(NotFittedError):
        check_is_fitted(cloned)
    with pytest.raises(NotFittedError):
        cloned.certify(data.X_query)
    _same_params(fitted, cloned)
    assert_same_certificates(cloned.fit(data.X, data.y).certify(data.X_query), reference)


def check_reproducibility(estimator, data):
    """The same integer ``random_state`` gives the same certificates on every call;
    another seed gives other draws, hence another ``p_lower`` somewhere (unless
    every row is decided by unanimous votes, which no draw can change)."""
    fitted = _fitted(estimator, data, random_state=0)
    first = fitted.certify(data.X_query)
    assert_same_certificates(fitted.certify(data.X_query), first)
    fitted.set_params(random_state=1)
    other = fitted.certify(data.X_query)
    top = _top_bound(fitted)
    free = lambda p: (p > 0) & (p < top)  # noqa: E731 - rows whose bound the draws decide
    if np.any(free(first.p_lower) | free(other.p_lower)):
        assert not np.array_equal(first.p_lower, other.p_lower)
    fitted.set_params(random_state=0)
    assert_same_certificates(fitted.certify(data.X_query), first)


_CHECKS = (
    check_batch_invariance,
    check_row_order_invariance,
    check_n_jobs_invariance,
    check_validation_before_draws,
    check_declared_fields,
    check_pickle_and_clone,
    check_reproducibility,
)


def yield_certifier_checks(estimator):
    """Yield ``(name, check)`` for every check that applies to ``estimator``."""
    for check in _CHECKS:
        yield check.__name__, check


def parametrize_with_certifier_checks(estimators, known_failures=None):
    """``pytest.mark.parametrize("estimator, check", ...)`` over every estimator and
    each of its checks, with ids ``<certifier_id>-<check name>``.

    ``known_failures(estimator, check_name)`` may return the reason of a known
    bug: that check is then marked ``xfail(strict=True)``, so that it fails
    again once the bug is fixed, until the mark is removed.
    """
    params = []
    for est in estimators:
        for name, check in yield_certifier_checks(est):
            reason = known_failures(est, name) if known_failures is not None else None
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(est, check, id=f"{certifier_id(est)}-{name}", marks=marks))
    return pytest.mark.parametrize("estimator, check", params)
