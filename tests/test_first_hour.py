"""What a new user trips over: refused base models, a scorer that says why it is 0, ..."""

import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_moons
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from smoothcert import CertifiedRegion, SmoothedClassifier, make_certified_scorer
from smoothcert.exceptions import CostWarning, UnreachableRadiusWarning


@pytest.fixture(scope="module")
def moons():
    return make_moons(80, noise=0.1, random_state=0)


# ------------------------------------------------------- non-classifier bases
@pytest.mark.parametrize(
    "base, kind",
    [(Ridge(), "regressor"), (LinearRegression(), "regressor"), (KMeans(2, n_init=1), "clusterer")],
)
@pytest.mark.parametrize("cls", [SmoothedClassifier, CertifiedRegion])
def test_non_classifiers_are_refused_in_fit(moons, cls, base, kind, no_sampling_engine):
    X, y = moons
    with pytest.raises(TypeError, match=f"{type(base).__name__} is a {kind}"):
        cls(base).fit(X, y)
    with pytest.raises(TypeError, match="must be a classifier"):
        cls(FrozenEstimator(base.fit(X, y))).fit(X, y)


def test_classifiers_in_wrappers_are_accepted(moons):
    X, y = moons
    for base in (make_pipeline(StandardScaler(), LogisticRegression()),
                 GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=2),
                 FrozenEstimator(LogisticRegression().fit(X, y))):
        SmoothedClassifier(base, n_samples=50).fit(X, y)


# ---------------------------------------------------- the scorer's silent zero
def test_scorer_warns_once_when_no_input_reaches_the_radius(moons):
    X, y = moons
    X = X * [1.0, 1e-3]  # one feature with a tiny scale
    pipe = make_pipeline(StandardScaler(), SmoothedClassifier(n_samples=200, random_state=0))
    scorer = make_certified_scorer(0.25)
    search = GridSearchCV(pipe, {"smoothedclassifier__sigma": [0.25, 0.5]}, scoring=scorer, cv=2)
    with pytest.warns(UnreachableRadiusWarning, match=r"largest l2 radius reached is (0\.00|[0-9.]+e-0[4-9])") as rec:
        search.fit(X, y)
    assert sum(issubclass(w.category, UnreachableRadiusWarning) for w in rec) == 1
    assert "raw feature units" in str(rec[0].message)
    assert np.all(search.cv_results_["mean_test_score"] == 0)


def test_scorer_is_quiet_when_the_radius_is_reachable(moons):
    X, y = moons
    clf = SmoothedClassifier(LogisticRegression(), n_samples=500, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreachableRadiusWarning)
        assert make_certified_scorer(0.05)(clf, X, y) > 0


def test_region_score_warns_too(moons):
    X, y = moons
    region = CertifiedRegion(LogisticRegression(), method="isotropic", n_iter=1, n_samples_optim=16,
                             n_samples=100, radius=50.0, random_state=0).fit(X, y)
    with pytest.warns(UnreachableRadiusWarning, match="CertifiedRegion.score: no input reaches"):
        assert region.score(X[:10], y[:10]) == 0.0
