"""Certified accuracy, its curve, the summary and the certified scorer."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import make_blobs_data
from smoothcert import (
    Certificate,
    CertifiedRegion,
    SmoothedClassifier,
    certificate_summary,
    certified_accuracy,
    certified_accuracy_curve,
    make_certified_scorer,
)
from smoothcert._geometry._forms import RowCovariances
from smoothcert._certify._stats import radius_ceiling


def _hand_built():
    """Six inputs; abstentions, wrong labels and exact-radius ties.

    Certified l2 radii (r * sqrt(lambda_min)) are chosen exactly representable.
    """
    prediction = np.array([0, 1, 1, 0, 2, 2])
    abstained = np.array([False, False, True, False, False, False])
    # isotropic variances 0.25 -> sqrt 0.5; diagonal rows in the full matrix case
    variances = np.array([[0.25, 1.0], [1.0, 4.0], [1.0, 1.0], [4.0, 4.0], [0.25, 0.25], [1.0, 9.0]])
    r = np.array([2.0, 0.5, 0.0, 0.25, 1.0, 1.5])
    cert = Certificate(
        center=np.zeros((6, 2)),
        prediction=prediction,
        abstained=abstained,
        covariance=RowCovariances.create("diagonal", variances, 2),
        mahalanobis_radius=r,
        p_lower=np.where(abstained, 0.4, 0.9),
        alpha=0.001,
    )
    radius = np.array([1.0, 0.5, 0.0, 0.5, 0.5, 1.5])
    assert_allclose(cert.radius, radius, rtol=0, atol=0)
    y = np.array([0, 1, 1, 1, 2, 2])  # row 3 is wrong, row 2 abstains
    return cert, y, radius


def _direct(cert, y, radius, R, w=None):
    hits = np.array(
        [
            (not cert.abstained[i]) and cert.prediction[i] == y[i] and R <= radius[i]
            for i in range(len(y))
        ]
    )
    return np.average(hits, weights=w)


@pytest.mark.parametrize("R", [0.0, 0.25, 0.5, 0.75, 1.0, 1.2, 1.5, 2.0])
def test_certified_accuracy_matches_direct_computation(R):
    cert, y, radius = _hand_built()
    assert certified_accuracy(y, cert, R) == pytest.approx(_direct(cert, y, radius, R))
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert certified_accuracy(y, cert, R, sample_weight=w) == pytest.approx(
        _direct(cert, y, radius, R, w)
    )


def test_ties_at_the_boundary_count_as_inside():
    cert, y, _ = _hand_built()
    # rows 0, 1, 4, 5 are correct and certified; radii 1.0, 0.5, 0.5, 1.5
    assert certified_accuracy(y, cert, 0.5) == pytest.approx(4 / 6)
    assert certified_accuracy(y, cert, np.nextafter(0.5, 1.0)) == pytest.approx(2 / 6)
    assert certified_accuracy(y, cert, 1.5) == pytest.approx(1 / 6)
    assert certified_accuracy(y, cert, np.nextafter(1.5, 2.0)) == 0.0


def test_abstentions_count_as_failures_even_with_the_right_label():
    cert, y, _ = _hand_built()
    assert cert.abstained[2] and cert.prediction[2] == y[2]
    assert certified_accuracy(y, cert, 0.0) == pytest.approx(4 / 6)


def test_curve_matches_pointwise_and_is_non_increasing():
    cert, y, radius = _hand_built()
    radii, acc = certified_accuracy_curve(y, cert)
    assert radii[0] == 0.0 and radii[-1] == pytest.approx(1.5) and len(radii) == 100
    assert np.all(np.diff(acc) <= 0)
    for R, a in zip(radii, acc):
        assert a == pytest.approx(_direct(cert, y, radius, R))
    given = [1.5, 0.0, 0.5, 0.5, 3.0]
    radii, acc = certified_accuracy_curve(y, cert, radii=given)
    assert_allclose(radii, given)
    assert_allclose(acc, [_direct(cert, y, radius, R) for R in given])
    radii, acc = certified_accuracy_curve(y, cert, radii=7)
    assert len(radii) == 7


def test_curve_on_random_certificates_is_non_increasing():
    rng = np.random.default_rng(0)
    n = 200
    cert = Certificate(
        center=rng.standard_normal((n, 3)),
        prediction=rng.integers(0, 3, n),
        abstained=rng.random(n) < 0.2,
        covariance=RowCovariances.isotropic(rng.uniform(0.1, 1.0, n), 3),
        mahalanobis_radius=rng.uniform(0, 3, n),
        p_lower=np.full(n, 0.9),
        alpha=0.001,
    )
    y = rng.integers(0, 3, n)
    radii, acc = certified_accuracy_curve(y, cert, sample_weight=rng.uniform(0, 1, n))
    assert np.all(np.diff(acc) <= 1e-15)
    assert acc[-1] >= 0 and acc[0] <= 1


def test_string_labels():
    cert, y, radius = _hand_built()
    names = np.array(["a", "b", "c"])
    cert_s = Certificate(
        center=cert.center,
        prediction=names[cert.prediction],
        abstained=cert.abstained,
        covariance=cert.covariances,
        mahalanobis_radius=cert.mahalanobis_radius,
        p_lower=cert.p_lower,
        alpha=cert.alpha,
    )
    assert certified_accuracy(list(names[y]), cert_s, 0.5) == certified_accuracy(y, cert, 0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(radius=-0.1), "radius"),
        (dict(radius=float("nan")), "radius"),
        (dict(radius=float("inf")), "radius"),
        (dict(radius="a"), "radius"),
    ],
)
def test_certified_accuracy_rejects_bad_radius(kwargs, match):
    cert, y, _ = _hand_built()
    with pytest.raises(ValueError, match=match):
        certified_accuracy(y, cert, **kwargs)


def test_certified_accuracy_rejects_bad_inputs():
    cert, y, _ = _hand_built()
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        certified_accuracy(y[:-1], cert, 0.1)
    with pytest.raises(ValueError, match="certificate"):
        certified_accuracy(y, {"radius": 1.0}, 0.1)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        certified_accuracy(y, cert, 0.1, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="[Nn]egative"):
        certified_accuracy(y, cert, 0.1, sample_weight=-np.ones(6))
    with pytest.raises(ValueError, match="radii"):
        certified_accuracy_curve(y, cert, radii=[-1.0, 0.5])
    with pytest.raises(ValueError, match="radii"):
        certified_accuracy_curve(y, cert, radii=[[0.0, 0.5]])


def test_summary():
    cert, y, radius = _hand_built()
    s = certificate_summary(cert, y_true=y)
    assert s["n_inputs"] == 6 and s["n_certified"] == 5
    assert s["abstention_rate"] == pytest.approx(1 / 6)
    assert s["mean_radius"] == pytest.approx(radius.mean())
    lv = cert.log_volume[cert.certified]
    assert s["mean_log_volume"] == pytest.approx(lv.mean())
    assert s["median_log_volume"] == pytest.approx(np.median(lv))
    assert s["mean_proxy_radius"] == pytest.approx(np.where(cert.certified, cert.proxy_radius, 0).mean())
    assert s["certified_accuracy"] == pytest.approx(4 / 6)
    assert np.isnan(certificate_summary(cert)["certified_accuracy"])
    # all abstained: no NaN warnings, NaN volumes
    none = cert[[2]]
    s = certificate_summary(none)
    assert s["n_certified"] == 0 and np.isnan(s["median_log_volume"])


# ---------------------------------------------------------------- the scorer
# make_blobs_data: centres on a circle of radius 2, boundaries about 1.7 away
# from each centre.
N_SCORER = 1000
R_SCORER = 0.5
SIGMAS = [0.05, 0.5, 10.0]


def test_problem_design_of_the_sigma_search():
    # A tiny sigma cannot reach the radius at all: its radius ceiling is below R.
    assert SIGMAS[0] * radius_ceiling(N_SCORER, 0.001) < R_SCORER
    # The middle one can, with room to spare.
    assert SIGMAS[1] * radius_ceiling(N_SCORER, 0.001) > 2 * R_SCORER


def _check_search(search, key="mean_test_score"):
    scores = dict(zip([p["sigma"] if "sigma" in p else p["smoothedclassifier__sigma"]
                       for p in search.cv_results_["params"]], search.cv_results_[key]))
    assert scores[0.5] > 0.8
    # too small: nothing certified at R; too large: three-way votes, abstain
    assert scores[0.05] == 0.0
    assert scores[10.0] < 0.2
    return scores


def test_grid_search_selects_sigma():
    X, y = make_blobs_data()
    search = GridSearchCV(
        SmoothedClassifier(LogisticRegression(), n_samples=N_SCORER, random_state=0),
        {"sigma": SIGMAS},
        scoring=make_certified_scorer(R_SCORER),
        cv=3,
    ).fit(X, y)
    assert search.best_params_ == {"sigma": 0.5}
    _check_search(search)


def test_grid_search_with_dict_of_scorers_and_refit():
    X, y = make_blobs_data()
    search = GridSearchCV(
        SmoothedClassifier(LogisticRegression(), n_samples=N_SCORER, random_state=0),
        {"sigma": SIGMAS},
        scoring={"certified": make_certified_scorer(R_SCORER), "accuracy": "accuracy"},
        refit="certified",
        cv=3,
    ).fit(X, y)
    assert search.best_params_ == {"sigma": 0.5}
    _check_search(search, "mean_test_certified")
    assert "mean_test_accuracy" in search.cv_results_


def test_grid_search_over_a_pipeline_uses_raw_space_radii():
    X, y = make_blobs_data()
    X = X * np.array([3.0, 1.0])  # anisotropic raw scales
    pipe = make_pipeline(
        StandardScaler(), SmoothedClassifier(LogisticRegression(), n_samples=N_SCORER, random_state=0)
    )
    search = GridSearchCV(
        pipe,
        {"smoothedclassifier__sigma": [0.02, 0.3, 10.0]},
        scoring=make_certified_scorer(R_SCORER),
        cv=3,
    ).fit(X, y)
    assert search.best_params_ == {"smoothedclassifier__sigma": 0.3}


def test_scorer_equals_certified_accuracy_and_region_score():
    X, y = make_blobs_data(10)
    region = CertifiedRegion(
        LogisticRegression(), method="isotropic", n_iter=2, n_samples=500,
        n_samples_optim=32, radius=0.3, random_state=0,
        guarantee="per-covariance",
    ).fit(X, y)
    scorer = make_certified_scorer(0.3)
    value = scorer(region, X, y)
    assert value == pytest.approx(certified_accuracy(y, region.certify(X), 0.3))
    assert value == pytest.approx(region.score(X, y))
    w = np.linspace(0.5, 1.5, len(y))
    assert scorer(region, X, y, sample_weight=w) == pytest.approx(
        certified_accuracy(y, region.certify(X), 0.3, sample_weight=w)
    )
    assert "radius=0.3" in repr(scorer)
    scores = cross_val_score(region, X, y, scoring=scorer, cv=2)
    assert scores.shape == (2,)


def test_scorer_rejects_bad_estimators_and_radius():
    X, y = make_blobs_data(5)
    with pytest.raises(TypeError, match="cannot certify"):
        make_certified_scorer(0.1)(LogisticRegression().fit(X, y), X, y)
    with pytest.raises(ValueError, match="radius"):
        make_certified_scorer(-1.0)


def test_label_types_must_match():
    cert, y, _ = _hand_built()
    names = np.array(["a", "b", "c"])
    cert_s = Certificate(
        center=cert.center, prediction=names[cert.prediction], abstained=cert.abstained,
        covariance=cert.covariances, mahalanobis_radius=cert.mahalanobis_radius,
        p_lower=cert.p_lower, alpha=cert.alpha,
    )
    with pytest.raises(ValueError, match="same type"):
        certified_accuracy(y, cert_s, 0.1)
    with pytest.raises(ValueError, match="same type"):
        certified_accuracy_curve(y, cert_s)
    # float labels equal to integer predictions are fine
    assert certified_accuracy(y.astype(float), cert, 0.5) == pytest.approx(4 / 6)
