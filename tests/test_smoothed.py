"""SmoothedClassifier: scikit-learn compatibility, the linear oracle, bad input."""


import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import norm
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from smoothcert import Certificate, SmoothedClassifier
from smoothcert._certify._stats import radius_ceiling

FAST = dict(n_samples=100, n_samples_selection=10, random_state=0)


# ------------------------------------------------------- estimator checks
# The tree gets its own random_state: check_estimator seeds only the
# meta-estimator's, which seeds the noise, not the base model's training.
@parametrize_with_checks(
    [
        SmoothedClassifier(LogisticRegression(), **FAST),
        SmoothedClassifier(DecisionTreeClassifier(random_state=0), **FAST),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------- linear oracle
def _linear_problem(d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((200, d))
    y = (X @ np.arange(1.0, d + 1) + 0.3 > 0).astype(int)
    return X, y, rng


@pytest.mark.parametrize("d", [2, 5])
def test_linear_oracle(d):
    """For f(x) = [w.x + b > 0], P(f(x + e) = f(x)) = Phi(|w.x + b| / (sigma |w|))."""
    sigma, alpha, n_samples = 0.5, 0.001, 100_000
    X, y, rng = _linear_problem(d, seed=d)
    clf = SmoothedClassifier(
        LogisticRegression(), sigma=sigma, n_samples=n_samples, alpha=alpha, random_state=0
    ).fit(X, y)
    w, b = clf.estimator_.coef_[0], clf.estimator_.intercept_[0]
    u = w / np.linalg.norm(w)
    on_plane = -b * u / np.linalg.norm(w)
    # signed distances from 0 to 2.5 sigma, plus two far points, random offsets along the plane
    t = np.concatenate([np.linspace(0.0, 2.5, 28), [5.0, -6.0]]) * sigma
    t[1::2] *= -1
    tangent = rng.standard_normal((len(t), d)) @ (np.eye(d) - np.outer(u, u))
    X_test = on_plane + t[:, None] * u + tangent

    cert = clf.certify(X_test)
    dist = np.abs(X_test @ w + b) / np.linalg.norm(w)
    assert_allclose(dist, np.abs(t), atol=1e-9)
    p_exact = norm.cdf(dist / sigma)

    # soundness: never more than the exact radius, never more than the exact probability
    assert np.all(cert.radius <= dist)
    assert np.all(cert.p_lower <= p_exact)
    assert_allclose(cert.radius, sigma * cert.mahalanobis_radius)
    certified = cert.certified
    assert_array_equal(cert.prediction[certified], clf.estimator_.predict(X_test[certified]))
    # on the plane the smoothed classifier is a coin flip: it must abstain
    assert cert.abstained[0]
    # tightness at N = 100,000: within 10% of the exact radius (with an
    # absolute slack for tiny distances, where Phi^-1 amplifies the CP width)
    near = certified & (dist < 2 * sigma)
    assert np.all(dist[near] - cert.radius[near] <= 0.1 * dist[near] + 0.02 * sigma)
    mid = near & (dist >= 0.25 * sigma)
    assert np.all(cert.radius[mid] >= 0.9 * dist[mid])
    assert certified[dist >= 0.25 * sigma].sum() >= (dist >= 0.25 * sigma).sum() - 2
    # far from the plane every draw agrees: the radius is the ceiling
    far = dist > 4.5 * sigma
    assert_allclose(cert.radius[far], sigma * radius_ceiling(n_samples, alpha), rtol=1e-12)


def test_predict_abstain_on_the_decision_boundary(binary_linear):
    X, y = binary_linear
    clf = SmoothedClassifier(LogisticRegression(), sigma=0.5, n_samples=2000, random_state=0)
    clf.fit(X, y)
    w, b = clf.estimator_.coef_[0], clf.estimator_.intercept_[0]
    u = w / np.linalg.norm(w)
    on_plane = -b * u / np.linalg.norm(w)
    X_test = np.vstack([on_plane, on_plane + 5 * u, on_plane - 5 * u])
    pred, abstained = clf.predict_abstain(X_test)
    assert_array_equal(abstained, [True, False, False])
    assert_array_equal(pred[1:], [1, 0])
    clf.set_params(vote="soft")
    pred, abstained = clf.predict_abstain(X_test)
    assert_array_equal(abstained, [True, False, False])
    assert_array_equal(pred[1:], [1, 0])


# ------------------------------------------------------ scikit-learn tools
def test_grid_search_over_sigma_and_base_parameters(blobs):
    X, y = blobs
    search = GridSearchCV(
        SmoothedClassifier(SVC(), n_samples=50, random_state=0),
        {"sigma": [0.1, 0.5], "estimator__C": [0.5, 2.0]},
        cv=3,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["sigma"] in (0.1, 0.5)
    assert search.best_score_ > 0.9
    assert search.best_estimator_.estimator_.C == search.best_params_["estimator__C"]
    assert isinstance(search.best_estimator_.certify(X[:3]), Certificate)
    assert cross_val_score(SmoothedClassifier(n_samples=50, random_state=0), X, y, cv=3).min() > 0.9


def test_skops_round_trip(blobs):
    sio = pytest.importorskip("skops.io")
    X, y = blobs
    clf = SmoothedClassifier(SVC(), n_samples=100, random_state=0).fit(X, y)
    data = sio.dumps(clf)
    restored = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert_array_equal(restored.certify(X[:5]).p_lower, clf.certify(X[:5]).p_lower)


def test_pipelines(blobs):
    X, y = blobs
    X = 10 * X + 3
    outer = make_pipeline(StandardScaler(), SmoothedClassifier(SVC(), sigma=0.1, **FAST))
    assert outer.fit(X, y).score(X, y) > 0.95
    smoothed = outer[-1]
    cert = smoothed.certify(outer[:-1].transform(X[:5]))
    assert cert.certified.all()
    inner = SmoothedClassifier(make_pipeline(StandardScaler(), SVC()), sigma=1.0, **FAST)
    assert inner.fit(X, y).score(X, y) > 0.95
    assert inner.certify(X[:5]).certified.all()
    assert_array_equal(inner.classes_, [0, 1, 2])


@pytest.mark.parametrize(
    "labels", [np.array(["cat", "dog", "emu"]), np.array([3, 7, 11]), np.array([-4, 0, 9])]
)
def test_arbitrary_labels(blobs, labels):
    X, y_idx = blobs
    y = labels[y_idx]
    clf = SmoothedClassifier(LogisticRegression(), sigma=0.25, n_samples=200, random_state=0)
    clf.fit(X, y)
    assert_array_equal(clf.classes_, np.sort(labels))
    assert_array_equal(clf.predict(X), y)
    proba = clf.predict_proba(X)
    assert_array_equal(clf.classes_[proba.argmax(axis=1)], y)
    cert = clf.certify(X[:10])
    assert_array_equal(cert.prediction, y[:10])
    assert cert.prediction.dtype == y.dtype
    pred, abstained = clf.predict_abstain(X[:10])
    assert_array_equal(pred, y[:10])
    assert not abstained.any()


def test_frozen_pre_fitted_model(blobs):
    X, y_idx = blobs
    y = np.array(["a", "b", "c"])[y_idx]
    model = LogisticRegression().fit(X, y)
    coef = model.coef_.copy()
    clf = SmoothedClassifier(FrozenEstimator(model), sigma=0.2, **FAST)
    # fitting on any labelled subset keeps the pre-fitted model and its classes
    clf.fit(X[y != "c"], y[y != "c"])
    assert_array_equal(model.coef_, coef)
    assert_array_equal(clf.classes_, ["a", "b", "c"])
    assert_array_equal(clf.predict(X), y)
    assert_array_equal(clf.certify(X).prediction, y)
    with pytest.raises(ValueError, match="unknown to the pre-fitted"):
        clf.fit(X, np.where(y == "a", "z", y))
    with pytest.raises(ValueError, match="noise_augmentation"):
        clone(clf).set_params(noise_augmentation=2).fit(X, y)


def test_noise_augmentation_trains_on_noisy_copies(blobs):
    X, y = blobs
    clf = SmoothedClassifier(KNeighborsClassifier(), sigma=0.3, noise_augmentation=3, **FAST)
    clf.fit(X, y)
    seen = clf.estimator_._fit_X
    assert seen.shape == (3 * len(X), 2)
    noise = seen - np.tile(X, (3, 1))
    assert_allclose(noise.std(), 0.3, rtol=0.15)
    assert np.abs(noise).min() > 0
    assert_array_equal(clf.estimator_._y, np.tile(y, 3))
    # reproducible from random_state, different for another seed
    assert_array_equal(clone(clf).fit(X, y).estimator_._fit_X, seen)
    other = clone(clf).set_params(random_state=1).fit(X, y).estimator_._fit_X
    assert not np.allclose(other, seen)
    plain = clone(clf).set_params(noise_augmentation=0).fit(X, y)
    assert_array_equal(plain.estimator_._fit_X, X)


def test_sample_weight_is_forwarded(binary_linear):
    X, y = binary_linear
    weights = np.random.default_rng(0).uniform(0, 3, size=len(y))
    clf = SmoothedClassifier(LogisticRegression(), **FAST).fit(X, y, sample_weight=weights)
    expected = LogisticRegression().fit(X, y, sample_weight=weights)
    unweighted = LogisticRegression().fit(X, y)
    assert_allclose(clf.estimator_.coef_, expected.coef_)
    assert not np.allclose(unweighted.coef_, expected.coef_)
    # with noise augmentation the weights follow the copies
    tree = SmoothedClassifier(DecisionTreeClassifier(random_state=0), noise_augmentation=2, **FAST)
    tree.fit(X, y, sample_weight=np.where(y == 1, 0.0, 1.0))
    assert_array_equal(tree.predict(X[:5]), [0] * 5)
    with pytest.raises(TypeError, match="sample_weight"):
        SmoothedClassifier(KNeighborsClassifier(), **FAST).fit(X, y, sample_weight=weights)
    with pytest.raises(ValueError, match="sample_weight"):
        SmoothedClassifier(LogisticRegression(), **FAST).fit(X, y, sample_weight=weights[:5])


def test_soft_votes(blobs):
    X, y = blobs
    hard = SmoothedClassifier(LogisticRegression(), sigma=0.5, n_samples=300, random_state=0)
    soft = clone(hard).set_params(vote="soft")
    hard.fit(X, y)
    soft.fit(X, y)
    proba = soft.predict_proba(X)
    assert_allclose(proba.sum(axis=1), 1.0)
    # soft probabilities are means of predict_proba, not vote frequencies
    assert not np.all(np.isin(np.round(proba * 300, 9), np.arange(301)))
    assert_array_equal(soft.predict(X), y)
    cert = soft.certify(X)
    assert cert.certified.mean() > 0.9
    assert_array_equal(cert.prediction[cert.certified], y[cert.certified])
    assert np.all(cert.p_lower <= soft.predict_proba(X).max(axis=1) + 0.05)


def test_predict_matches_predict_proba_and_certificate(blobs):
    X, y = blobs
    X_test = np.random.default_rng(2).uniform(-3, 3, size=(40, 2))
    clf = SmoothedClassifier(SVC(), sigma=0.8, n_samples=250, random_state=0).fit(X, y)
    proba = clf.predict_proba(X_test)
    assert proba.shape == (40, 3)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_allclose(proba * 250, np.round(proba * 250), atol=1e-9)  # vote frequencies
    assert_array_equal(clf.predict(X_test), clf.classes_[proba.argmax(axis=1)])
    assert 0.9 < clf.score(X, y) <= 1.0
    cert = clf.certify(X_test)
    assert cert.guarantee == "fixed-noise" and len(cert) == 40
    assert_allclose(cert.covariance, np.broadcast_to(0.64 * np.eye(2), (40, 2, 2)))
    assert_allclose(cert.radius, 0.8 * cert.mahalanobis_radius)
    assert_array_equal(cert.center, X_test)
    assert_array_equal(cert.abstained, cert.p_lower <= 0.5)


def test_feature_names(blobs):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    frame = pd.DataFrame(X, columns=["u", "v"])
    clf = SmoothedClassifier(**FAST).fit(frame, y)
    assert_array_equal(clf.feature_names_in_, ["u", "v"])
    with pytest.warns(UserWarning, match="valid feature names"):
        from_array = clf.certify(X)
    assert_array_equal(clf.certify(frame).p_lower, from_array.p_lower)
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(frame.rename(columns={"u": "w"}))


# ---------------------------------------------------------------- bad input
CALLS = []


class _Spy:
    """Records every call of the base model's fit and predict (all clones)."""

    def fit(self, X, y, **kwargs):
        CALLS.append("fit")
        return super().fit(X, y, **kwargs)

    def predict(self, X):
        CALLS.append("predict")
        return super().predict(X)


class SpyLogistic(_Spy, LogisticRegression):
    pass


class SpyRidge(_Spy, RidgeClassifier):
    pass


@pytest.fixture
def no_sampling(no_sampling):
    """No Monte-Carlo draw (conftest's ``no_sampling``), and no call of the base model."""
    CALLS.clear()
    yield
    assert CALLS == [], f"the base model was called: {CALLS}"


@pytest.fixture
def fitted_spy(binary_linear):
    X, y = binary_linear
    return SmoothedClassifier(SpyLogistic(), **FAST).fit(X, y)


INFERENCE = ["certify", "predict", "predict_proba", "predict_abstain", "score"]


def _call(clf, method, X):
    if method == "score":
        return clf.score(X, np.zeros(len(X), dtype=int))
    return getattr(clf, method)(X)


@pytest.mark.parametrize("method", INFERENCE)
@pytest.mark.parametrize(
    "X, error, match",
    [
        (np.array([[0.0, np.nan]]), ValueError, "NaN"),
        (np.array([[np.inf, 0.0]]), ValueError, "infinity"),
        (np.zeros((2, 3)), ValueError, "3 features"),
        (np.zeros(2), ValueError, "Expected 2D array"),
        (np.zeros((2, 2, 1)), ValueError, "dim 3"),
        (np.zeros((0, 2)), ValueError, "0 sample"),
    ],
    ids=["nan", "inf", "n_features", "1d", "3d", "empty"],
)
def test_bad_X_at_inference(fitted_spy, no_sampling, method, X, error, match):
    with pytest.raises(error, match=match):
        _call(fitted_spy, method, X)


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([[0.0, np.nan]] * 4), "NaN"),
        (np.array([[np.inf, 0.0]] * 4), "infinity"),
        (np.zeros(4), "Expected 2D array"),
        (np.zeros((4, 2, 1)), "dim 3"),
        (np.zeros((0, 2)), "0 sample"),
    ],
)
def test_bad_X_at_fit(no_sampling, X, match):
    with pytest.raises(ValueError, match=match):
        SmoothedClassifier(SpyLogistic(), **FAST).fit(X, np.arange(len(X)) % 2)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"sigma": 0}, "'sigma' parameter"),
        ({"sigma": -1.0}, "'sigma' parameter"),
        ({"alpha": 0}, "'alpha' parameter"),
        ({"alpha": 1}, "'alpha' parameter"),
        ({"alpha": -1}, "'alpha' parameter"),
        ({"alpha": 1.5}, "'alpha' parameter"),
        ({"n_samples": 1}, "'n_samples' parameter"),
        ({"n_samples": 0}, "'n_samples' parameter"),
        ({"n_samples_selection": 0}, "'n_samples_selection' parameter"),
        ({"vote": "majority"}, "'vote' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"noise_augmentation": -1}, "'noise_augmentation' parameter"),
    ],
)
def test_bad_parameters(binary_linear, fitted_spy, no_sampling, params, match):
    X, y = binary_linear
    with pytest.raises(ValueError, match=match):
        SmoothedClassifier(SpyLogistic(), **{**FAST, **params}).fit(X, y)
    # changed after fit: checked again before any draw
    fitted_spy.set_params(**params)
    for method in INFERENCE:
        with pytest.raises(ValueError, match=match):
            _call(fitted_spy, method, X[:3])


@pytest.mark.parametrize("estimator", [StandardScaler(), object(), "svm"])
def test_base_estimator_without_fit_or_predict(binary_linear, no_sampling, estimator):
    X, y = binary_linear
    with pytest.raises(ValueError, match="'estimator' parameter.*'fit' and 'predict'"):
        SmoothedClassifier(estimator, **FAST).fit(X, y)


@pytest.mark.parametrize("method", INFERENCE)
def test_not_fitted(binary_linear, no_sampling, method):
    X, _ = binary_linear
    with pytest.raises(NotFittedError, match="not fitted yet"):
        _call(SmoothedClassifier(SpyLogistic(), **FAST), method, X[:3])


def test_soft_vote_needs_predict_proba(binary_linear, no_sampling):
    X, y = binary_linear
    with pytest.raises(ValueError, match="vote='soft' needs a base estimator with predict_proba"):
        SmoothedClassifier(SpyRidge(), vote="soft", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="predict_proba"):
        SmoothedClassifier(SVC(), vote="soft", **FAST).fit(X, y)
    # switched to soft after fitting a model without predict_proba
    clf = SmoothedClassifier(SpyRidge(), **FAST).fit(X, y)
    CALLS.clear()
    clf.set_params(vote="soft")
    for method in INFERENCE:
        with pytest.raises(ValueError, match="predict_proba"):
            _call(clf, method, X[:3])


def test_single_class(no_sampling):
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="only one class"):
        SmoothedClassifier(SpyLogistic(), **FAST).fit(X, np.full(10, "spam"))


def test_continuous_target(no_sampling):
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="Unknown label type"):
        SmoothedClassifier(SpyLogistic(), **FAST).fit(X, X[:, 0])
