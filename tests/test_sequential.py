"""Sequential certification through the estimators: validity where it is hardest, power,
determinism, bad input.

Validity is checked on linear models, whose smoothed probability is known exactly
(``p = Phi(|w.x + b| / sqrt(w^T Sigma w))``), with query points placed at a distance
just below the target radius from the boundary: certifying such a point at the
target radius is an over-claim, and it must happen for at most ``alpha`` of them.
Uncorrected repeated looks fail the same test.
"""

from unittest import mock

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy.stats import norm
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_moons
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

import smoothcert._certify._sequential as sequential_module
from smoothcert import CertifiedRegion, SmoothedClassifier, make_certified_scorer

W = np.array([0.6, -0.8])  # unit normal of the boundary w.x + b = 0
B = 0.1


class OneHotLinear(ClassifierMixin, BaseEstimator):
    """The linear rule ``w.x + b > 0`` with one-hot ``predict_proba``.

    Its soft votes equal its hard votes, so the exact smoothed probability of
    both is ``Phi(|w.x + b| / sqrt(w^T Sigma w))``.
    """

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        return (np.asarray(X) @ W + B > 0).astype(int)

    def predict_proba(self, X):
        return np.eye(2)[self.predict(X)]


def _linear_logistic():
    model = LogisticRegression()
    model.classes_ = np.array([0, 1])
    model.coef_ = 50.0 * W[None]
    model.intercept_ = np.array([50.0 * B])
    model.n_features_in_ = 2
    return model


def _points_at(distance, n, seed=0):
    """``n`` distinct points on the positive side, at ``distance`` from the boundary."""
    along = np.random.default_rng(seed).uniform(-50, 50, n)
    tangent = np.array([W[1], -W[0]])
    return (distance - B) * W + along[:, None] * tangent


def _true_p(X, covariance):
    margin = np.abs(X @ W + B)
    spread = np.sqrt(np.einsum("i,nij,j->n", W, covariance, W))
    return norm.cdf(margin / spread)


def _fit(estimator):
    X = np.array([[0.0, 0.0], [1.0, 1.0]])
    return estimator.fit(X, np.array([0, 1]))


def _overclaims(estimator, X, radius):
    cert = estimator.certify(X, radius=radius)
    true_p = _true_p(X, cert.covariance)
    target = norm.cdf(radius / np.sqrt(cert.covariances.min_eigenvalue()))
    wrong = cert.certified & (true_p < target)
    return wrong.mean(), cert


def _bound(alpha, n):
    return alpha + 3.0 * np.sqrt(alpha * (1 - alpha) / n)


SIGMA, RADIUS, ALPHA = 0.5, 0.5, 0.1


@pytest.mark.slow
@pytest.mark.parametrize("vote", ["hard", "soft"])
def test_certify_at_radius_over_claims_at_most_alpha_just_below_the_radius(vote):
    # true p = Phi(0.97), target Phi(1.0): every certification is an over-claim
    n = 6000 if vote == "hard" else 2000
    base = _linear_logistic() if vote == "hard" else OneHotLinear().fit(np.zeros((2, 2)), [0, 1])
    clf = _fit(SmoothedClassifier(FrozenEstimator(base), sigma=SIGMA, n_samples=2000,
                                  n_samples_selection=10, alpha=ALPHA, vote=vote,
                                  random_state=0))
    X = _points_at(0.97 * RADIUS, n, seed=1)
    rate, cert = _overclaims(clf, X, RADIUS)
    assert rate <= _bound(ALPHA, n), rate
    assert cert.n_draws.max() <= 2000


@pytest.mark.slow
def test_uncorrected_looks_over_claim_several_times_more():
    # the same test with alpha spent again at every look (no correction)
    n = 6000
    clf = _fit(SmoothedClassifier(FrozenEstimator(_linear_logistic()), sigma=SIGMA, n_samples=2000,
                                  n_samples_selection=10, alpha=ALPHA, random_state=0))
    X = _points_at(0.97 * RADIUS, n, seed=1)
    corrected, _ = _overclaims(clf, X, RADIUS)
    original = sequential_module.spend_alpha
    try:
        sequential_module.spend_alpha = lambda alpha, looks, schedule="uniform": np.full(
            len(looks), alpha
        )
        naive, _ = _overclaims(clf, X, RADIUS)
    finally:
        sequential_module.spend_alpha = original
    assert naive > 1.5 * ALPHA and naive > 4 * corrected, (naive, corrected)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["isotropic", "diagonal", "riemannian"])
def test_certified_region_at_radius_is_valid_for_every_covariance_form(method):
    n = 1500
    region = _fit(CertifiedRegion(FrozenEstimator(_linear_logistic()), method=method, sigma=SIGMA,
                                  n_iter=3, n_samples_optim=32, n_samples=2000,
                                  n_samples_selection=10, alpha=ALPHA, random_state=0, guarantee="per-covariance"))
    X = _points_at(0.97 * RADIUS, n, seed=2)
    rate, cert = _overclaims(region, X, RADIUS)
    assert rate <= _bound(ALPHA, n), rate
    if method != "isotropic":
        assert cert.covariances.kind in ("diagonal", "full")


@pytest.mark.slow
@pytest.mark.parametrize("vote", ["hard", "soft"])
def test_sequential_radii_over_claim_at_most_alpha(vote):
    # sampling="sequential": the reported radius exceeds the true one (p_lower
    # above the true p) for at most alpha of the inputs, at any distance
    n = 3000 if vote == "hard" else 1500
    base = _linear_logistic() if vote == "hard" else OneHotLinear().fit(np.zeros((2, 2)), [0, 1])
    clf = _fit(SmoothedClassifier(FrozenEstimator(base), sigma=SIGMA, n_samples=4000,
                                  n_samples_selection=10, alpha=ALPHA, vote=vote,
                                  sampling="sequential", radius_tol=0.05, random_state=0))
    X = _points_at(0.0, n, seed=3) + np.random.default_rng(4).uniform(0.05, 1.0, n)[:, None] * W
    cert = clf.certify(X)
    true_p = _true_p(X, cert.covariance)
    assert (cert.p_lower > true_p).mean() <= _bound(ALPHA, n)
    assert cert.n_draws.mean() < 4000  # it stopped early on average


@pytest.mark.slow
def test_sequential_predict_is_wrong_at_most_alpha_near_the_boundary():
    n = 4000
    clf = _fit(SmoothedClassifier(FrozenEstimator(_linear_logistic()), sigma=SIGMA, n_samples=4000,
                                  alpha=ALPHA, sampling="sequential", random_state=0))
    # on the positive side, true p = Phi(0.02): the class is nearly a coin flip
    X = _points_at(0.01, n, seed=5)
    pred, abstained = clf.predict_abstain(X)
    wrong = ~abstained & (pred != 1)
    assert wrong.mean() <= _bound(ALPHA, n)
    far = _points_at(2.0, 50, seed=6)
    pred_far, abst_far = clf.predict_abstain(far)
    assert not abst_far.any() and np.all(pred_far == 1)
    assert_array_equal(clf.predict(far), pred_far)


# --------------------------------------------------------------------- power
class CountingForest(RandomForestClassifier):
    """A forest that counts the rows it is asked to predict (class-level counter)."""

    rows = 0

    def predict_proba(self, X):  # predict goes through predict_proba
        CountingForest.rows += len(X)
        return super().predict_proba(X)


@pytest.fixture(scope="module")
def forest_data():
    X, y = make_moons(300, noise=0.15, random_state=0)
    return X, y


def _calls(fn):
    """Rows predicted by ``fn()``'s draws (the cost warning's timing of the model aside)."""
    import smoothcert._engine._progress as progress

    CountingForest.rows = 0
    with mock.patch.object(progress, "prediction_seconds", lambda predict, X: 1e-9):
        out = fn()
    return out, CountingForest.rows


@pytest.mark.parametrize("factor", [0.5, 1.0])
def test_far_fewer_calls_at_a_target_radius(forest_data, factor):
    X, y = forest_data
    sigma, n_fixed = 0.25, 20_000
    clf = SmoothedClassifier(CountingForest(30, random_state=0), sigma=sigma, n_samples=n_fixed,
                             random_state=0).fit(X, y)
    X_test = X[:40]
    fixed, calls_fixed = _calls(lambda: clf.certify(X_test))
    seq, calls_seq = _calls(lambda: clf.certify(X_test, radius=factor * sigma))
    assert calls_fixed == 40 * (n_fixed + 100)
    # at the budget of this test (20,000 draws; the benchmark uses 100,000)
    assert calls_seq * (50 if factor == 0.5 else 20) <= calls_fixed, calls_fixed / calls_seq
    # at most about one input in 40 lost at R
    lost = (fixed.contains_ball(factor * sigma) & ~seq.contains_ball(factor * sigma)).sum()
    assert lost <= 2
    assert_array_equal(seq.n_draws.sum() + 40 * 100, calls_seq)


def test_grid_search_with_the_certified_scorer_is_cheap(forest_data):
    X, y = forest_data
    est = SmoothedClassifier(CountingForest(20, random_state=0), n_samples=20_000, random_state=0)
    search = GridSearchCV(est, {"sigma": [0.12, 0.25, 0.5]}, scoring=make_certified_scorer(0.25),
                          cv=2)
    _, calls = _calls(lambda: search.fit(X, y))
    # each candidate scores both test folds: every input once per candidate
    fixed_calls = 3 * len(X) * (20_000 + 100)
    assert calls * 20 <= fixed_calls, fixed_calls / calls
    assert search.best_params_["sigma"] in (0.12, 0.25, 0.5)


def test_sequential_sampling_saves_calls_at_a_small_radius_loss(forest_data):
    X, y = forest_data
    kw = dict(sigma=0.25, n_samples=20_000, random_state=0)
    fixed = SmoothedClassifier(CountingForest(30, random_state=0), **kw).fit(X, y)
    seq = SmoothedClassifier(CountingForest(30, random_state=0), sampling="sequential",
                             radius_tol=0.05, **kw).fit(X, y)
    c_fixed, n_fixed = _calls(lambda: fixed.certify(X[:60]))
    c_seq, n_seq = _calls(lambda: seq.certify(X[:60]))
    assert n_seq * 2 <= n_fixed
    both = c_fixed.certified & c_seq.certified
    loss = 1 - c_seq.radius[both].mean() / c_fixed.radius[both].mean()
    assert loss <= 0.08, loss


# --------------------------------------------------------------- determinism
@pytest.mark.parametrize("cls", [SmoothedClassifier, CertifiedRegion])
@pytest.mark.parametrize("vote", ["hard", "soft"])
def test_sequential_results_do_not_depend_on_batching_order_or_jobs(forest_data, cls, vote):
    X, y = forest_data
    extra = (dict(method="diagonal", n_iter=2, n_samples_optim=16, guarantee="per-covariance")
             if cls is CertifiedRegion else {})
    est = cls(RandomForestClassifier(10, random_state=0), sigma=0.25, n_samples=3000, vote=vote,
              random_state=0, **extra).fit(X, y)
    X_test = X[:25]
    ref = est.certify(X_test, radius=0.2)
    perm = np.random.default_rng(0).permutation(25)
    for params in ({"batch_size": 37}, {"batch_size": 100_000}, {"n_jobs": 2}):
        other = est.set_params(**params).certify(X_test, radius=0.2)
        for field in ("p_lower", "n_draws", "abstained", "radius"):
            assert_array_equal(getattr(other, field), getattr(ref, field), err_msg=f"{params} {field}")
    est.set_params(batch_size="auto", n_jobs=None)
    shuffled = est.certify(X_test[perm], radius=0.2)
    assert_array_equal(shuffled.n_draws, ref.n_draws[perm])
    assert_array_equal(shuffled.p_lower, ref.p_lower[perm])
    est.set_params(sampling="sequential")
    a = est.certify(X_test)
    b = est.set_params(batch_size=51).certify(X_test)
    assert_array_equal(a.p_lower, b.p_lower)
    assert_array_equal(a.n_draws, b.n_draws)
    top_a, abst_a = est.predict_abstain(X_test)
    top_b, abst_b = est.set_params(batch_size="auto").predict_abstain(X_test[perm])
    assert_array_equal(top_b, top_a[perm])
    assert_array_equal(abst_b, abst_a[perm])


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "radius, error, match",
    [
        (-0.1, ValueError, "radius must be a finite number >= 0"),
        (np.nan, ValueError, "radius must be a finite number"),
        (np.inf, ValueError, "radius must be a finite number"),
        ("0.5", TypeError, "radius must be a real number"),
        (True, TypeError, "radius must be a real number"),
        ([0.5], TypeError, "radius must be a real number"),
    ],
)
@pytest.mark.parametrize("cls", [SmoothedClassifier, CertifiedRegion])
def test_bad_radius_is_refused_before_any_draw(forest_data, cls, radius, error, match,
                                               no_sampling_engine):
    X, y = forest_data
    extra = {"guarantee": "per-covariance"} if cls is CertifiedRegion else {}
    est = cls(LogisticRegression(), n_samples=100, **extra).fit(X, y)
    with pytest.raises(error, match=match):
        est.certify(X[:3], radius=radius)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"radius_tol": 0.0}, "radius_tol"),
        ({"radius_tol": 1.0}, "radius_tol"),
        ({"radius_tol": 1.5}, "radius_tol"),
        ({"sampling": "adaptive"}, "sampling"),
        ({"sampling": "sequential", "n_samples": 2**31}, "n_samples"),
    ],
)
@pytest.mark.parametrize("cls", [SmoothedClassifier, CertifiedRegion])
def test_bad_sequential_parameters_are_refused_before_any_draw(forest_data, cls, params, match,
                                                               no_sampling_engine):
    X, y = forest_data
    extra = {"guarantee": "per-covariance"} if cls is CertifiedRegion else {}
    est = cls(LogisticRegression(), n_samples=100, **extra).fit(X, y)
    est.set_params(**params)
    with pytest.raises(ValueError, match=match):
        est.certify(X[:3])
    with pytest.raises(ValueError, match=match):
        est.predict_abstain(X[:3])
