"""The certifier checks of ``certifier_checks.py`` on every estimator, method and vote.

``SmoothedClassifier`` and ``CertifiedRegion`` with each method, hard and soft
votes, around a small random forest and a logistic regression (whose hard votes
take the engine's linear route), in fast settings. The last tests feed the
checks deliberately broken certifiers: each check must catch its defect.
"""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from certifier_checks import (
    CheckData,
    _top_bound,
    certifier_id,
    check_batch_invariance,
    check_declared_fields,
    check_n_jobs_invariance,
    check_pickle_and_clone,
    check_reproducibility,
    check_row_order_invariance,
    check_validation_before_draws,
    parametrize_with_certifier_checks,
)
from conftest import make_moons_data
from smoothcert import CertifiedRegion, SmoothedClassifier
from smoothcert._engine._streams import resolve_seed

FAST = dict(n_samples=200, n_samples_selection=20, random_state=0)
SEARCH = dict(n_iter=2, n_samples_optim=16)
METHODS = ("fixed", "isotropic", "diagonal", "riemannian")
VOTES = ("hard", "soft")
BASES = {
    "forest": lambda: RandomForestClassifier(n_estimators=10, random_state=0),
    "logistic": LogisticRegression,
}

CERTIFIERS = [
    SmoothedClassifier(make(), vote=vote, **FAST) for vote in VOTES for make in BASES.values()
] + [
    CertifiedRegion(make(), method=method, vote=vote, **SEARCH, **FAST, guarantee="per-covariance")
    for method in METHODS
    for vote in VOTES
    for make in BASES.values()
]


@pytest.fixture(scope="module")
def data():
    X, y = make_moons_data(120, noise=0.25)
    # query rows: from the same law, so that some lie near the boundary
    X_query, _ = make_moons_data(10, noise=0.25, seed=1)
    return CheckData(X, y, X_query)


@parametrize_with_certifier_checks(CERTIFIERS)
def test_certifier(estimator, check, data):
    check(estimator, data)


def test_check_ids_are_readable():
    assert certifier_id(CERTIFIERS[0]) == "SmoothedClassifier-hard-forest"
    assert certifier_id(CERTIFIERS[-1]) == "CertifiedRegion-riemannian-soft-logistic"
    assert len({certifier_id(est) for est in CERTIFIERS}) == len(CERTIFIERS) == 20


@pytest.mark.parametrize("estimator", CERTIFIERS, ids=certifier_id)
def test_query_rows_are_informative(estimator, data):
    """The checks compare something: certified rows, and rows whose bound the
    draws decide (neither unanimous nor zero)."""
    cert = estimator.fit(data.X, data.y).certify(data.X_query)
    assert cert.certified.sum() >= 3
    free = (cert.p_lower > 0) & (cert.p_lower < _top_bound(estimator))
    assert free.sum() >= 2, cert.p_lower
    assert np.unique(cert.p_lower).size >= 3


# ------------------------------------------------------- broken certifiers
def _nudged(cert, rows):
    """The certificate with ``p_lower`` of ``rows`` one float below."""
    p_lower = cert.p_lower.copy()
    p_lower[rows] = np.nextafter(p_lower[rows], -1.0)
    return cert._replace(p_lower=p_lower)


class BatchDependent(SmoothedClassifier):
    def certify(self, X):
        cert = super().certify(X)
        return cert if self.batch_size == "auto" else _nudged(cert, 0)


class OrderDependent(SmoothedClassifier):
    def certify(self, X):
        return _nudged(super().certify(X), 0)  # the first row of every call


class JobsDependent(SmoothedClassifier):
    def certify(self, X):
        cert = super().certify(X)
        return _nudged(cert, 0) if self.n_jobs == 2 else cert


class DrawsBeforeChecking(SmoothedClassifier):
    def certify(self, X):
        self.predict_proba(self._check_X(np.zeros((1, self.n_features_in_))))
        return super().certify(X)


class ForgetsItsDraws(SmoothedClassifier):
    def certify(self, X):
        return super().certify(X)._replace(n_draws=None)


class SeedLostByPickle(SmoothedClassifier):
    def __setstate__(self, state):
        super().__setstate__({**state, "random_state": 12345})


class IgnoresTheSeed(SmoothedClassifier):
    def _seed(self):
        return resolve_seed(0)


class ChangesOnEveryCall(SmoothedClassifier):
    def certify(self, X):
        self.n_calls_ = getattr(self, "n_calls_", 0) + 1
        cert = super().certify(X)
        return cert if self.n_calls_ == 1 else _nudged(cert, np.arange(len(cert)))


@pytest.mark.parametrize(
    "broken, check",
    [
        (BatchDependent, check_batch_invariance),
        (OrderDependent, check_row_order_invariance),
        (JobsDependent, check_n_jobs_invariance),
        (DrawsBeforeChecking, check_validation_before_draws),
        (ForgetsItsDraws, check_declared_fields),
        (SeedLostByPickle, check_pickle_and_clone),
        (IgnoresTheSeed, check_reproducibility),
        (ChangesOnEveryCall, check_reproducibility),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_checks_catch_broken_certifiers(broken, check, data):
    estimator = broken(LogisticRegression(), **FAST)
    # the same certifier without its defect passes
    check(SmoothedClassifier(LogisticRegression(), **FAST), data)
    with pytest.raises(AssertionError):
        check(estimator, data)
