"""The guarantee objects of CertifiedRegion (``smoothcert.guarantees``).

A string builds the default object and gives bit-identical results; the
deployed guarantee's parameters are nested parameters of the estimator
(``guarantee__n_prototypes``) for ``get_params`` / ``set_params`` / ``clone`` /
grid searches, and a bad value is refused, naming it, before any draw.
"""

import inspect

import numpy as np
import pytest
from conftest import assert_same_certificates, forbid_sampling
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import make_moons
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier

import smoothcert._estimators._region as region_module
from smoothcert import CertifiedRegion
from smoothcert.guarantees import DeployedGuarantee, Guarantee, PerCovarianceGuarantee
from smoothcert.search import DiagonalSearch

SMALL = dict(method="isotropic", n_iter=2, n_samples_optim=16, n_samples=200,
             n_samples_selection=20, random_state=0)
GUARANTEE_PARAMS = ("n_prototypes", "selector", "selection_sigma", "n_family_inputs",
                    "n_selector_inputs")


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(n_samples=160, noise=0.2, random_state=0)
    return X, y


def region(**params):
    return CertifiedRegion(DecisionTreeClassifier(max_depth=4, random_state=0), **{**SMALL, **params})


# ------------------------------------------------------------- the interface
def test_names_are_the_certificate_strings():
    assert DeployedGuarantee.name == "deployed"
    assert PerCovarianceGuarantee.name == "per-covariance"
    assert isinstance(DeployedGuarantee(), Guarantee)
    assert isinstance(PerCovarianceGuarantee(), Guarantee)
    assert PerCovarianceGuarantee().get_params() == {}
    assert DeployedGuarantee().get_params() == dict(
        n_prototypes=2, selector=None, selection_sigma=None, n_family_inputs=128,
        n_selector_inputs=1024)


def test_the_parameters_left_certified_region():
    params = inspect.signature(CertifiedRegion).parameters
    assert not set(GUARANTEE_PARAMS) & set(params)
    assert not set(GUARANTEE_PARAMS) & set(CertifiedRegion._parameter_constraints)
    assert len(params) == 20
    assert CertifiedRegion().guarantee == "deployed"


def test_selection_scale_defaults_to_a_multiple_of_sigma():
    assert DeployedGuarantee().selection_scale(0.2) == pytest.approx(0.5)
    assert DeployedGuarantee(selection_sigma=0.7).selection_scale(0.2) == 0.7


# ------------------------------------------- strings and objects: bit-identical
@pytest.mark.parametrize("name, cls", [("deployed", DeployedGuarantee),
                                       ("per-covariance", PerCovarianceGuarantee)])
def test_string_and_default_object_are_bit_identical(moons, name, cls):
    X, y = moons
    by_name = region(guarantee=name).fit(X, y)
    by_object = region(guarantee=cls()).fit(X, y)
    a, b = by_name.certify(X[:8]), by_object.certify(X[:8])
    assert a.guarantee == b.guarantee == name
    assert_same_certificates(a, b)
    assert_array_equal(by_name.predict_proba(X[:8]), by_object.predict_proba(X[:8]))
    at_a, at_b = by_name.certify(X[:8], radius=0.1), by_object.certify(X[:8], radius=0.1)
    assert_same_certificates(at_a, at_b)
    if name == "deployed":
        assert_array_equal(by_name.covariance_family_, by_object.covariance_family_)
        assert_array_equal(a.selection_radius, b.selection_radius)


def test_the_deployed_parameters_are_read(moons, monkeypatch):
    X, y = moons
    asked = []
    subset = region_module.training_subset

    def spy(X, n_rows):
        asked.append(n_rows)
        return subset(X, n_rows)

    monkeypatch.setattr(region_module, "training_subset", spy)
    guarantee = DeployedGuarantee(n_prototypes=1, n_family_inputs=7, n_selector_inputs=45)
    one = region(guarantee=guarantee).fit(X, y)
    assert sorted(asked) == [7, 45]
    assert len(one.covariance_family_) == 1 and one.selector_ is None
    two = region(guarantee=DeployedGuarantee(selector=LogisticRegression(), selection_sigma=0.4,
                                             n_family_inputs=16, n_selector_inputs=100)).fit(X, y)
    assert isinstance(two.selector_, LogisticRegression)
    cert = two.certify(X[:4])
    assert_allclose(cert.selection_covariance, np.broadcast_to(0.16 * np.eye(2), (4, 2, 2)),
                    rtol=1e-12)


# --------------------------------------------- nested parameters, clone, grids
def test_get_params_set_params_and_clone():
    est = CertifiedRegion(guarantee=DeployedGuarantee(n_prototypes=3))
    deep = est.get_params(deep=True)
    assert {f"guarantee__{p}" for p in GUARANTEE_PARAMS} <= set(deep)
    assert deep["guarantee__n_prototypes"] == 3
    assert "guarantee__n_prototypes" not in est.get_params(deep=False)
    est.set_params(guarantee__n_prototypes=4, guarantee__selection_sigma=0.5)
    assert est.guarantee.n_prototypes == 4 and est.guarantee.selection_sigma == 0.5
    copy = clone(est)
    assert copy.guarantee is not est.guarantee
    assert copy.guarantee.get_params() == est.guarantee.get_params()
    # a guarantee object and its nested parameter in one call
    est.set_params(guarantee=DeployedGuarantee(), guarantee__n_family_inputs=9)
    assert est.guarantee.n_family_inputs == 9


def test_nested_parameter_of_a_string_guarantee_says_what_to_do():
    with pytest.raises(ValueError, match="guarantee__n_prototypes.*DeployedGuarantee"):
        CertifiedRegion().set_params(guarantee__n_prototypes=3)
    with pytest.raises(ValueError, match="guarantee__n_prototypes"):
        CertifiedRegion(guarantee=DeployedGuarantee()).set_params(
            guarantee="deployed", guarantee__n_prototypes=3)


def test_grid_search_tunes_the_guarantee(moons):
    X, y = moons
    search = GridSearchCV(
        region(guarantee=DeployedGuarantee(n_family_inputs=8, n_selector_inputs=60)),
        {"guarantee__n_prototypes": [1, 2]}, cv=2,
    ).fit(X, y)
    assert [p["guarantee__n_prototypes"] for p in search.cv_results_["params"]] == [1, 2]
    best = search.best_estimator_
    assert best.guarantee.n_prototypes == search.best_params_["guarantee__n_prototypes"]
    assert len(best.covariance_family_) <= best.guarantee.n_prototypes
    assert best.certify(X[:3]).guarantee == "deployed"


# -------------------------------------------------------------- bad values
@pytest.mark.parametrize("params, error, name", [
    (dict(n_prototypes=0), ValueError, "n_prototypes"),
    (dict(n_prototypes=2.5), TypeError, "n_prototypes"),
    (dict(n_family_inputs=0), ValueError, "n_family_inputs"),
    (dict(n_selector_inputs=-3), ValueError, "n_selector_inputs"),
    (dict(selection_sigma=0.0), ValueError, "selection_sigma"),
    (dict(selection_sigma=np.inf), ValueError, "selection_sigma"),
    (dict(selection_sigma="big"), TypeError, "selection_sigma"),
    (dict(selector="forest"), TypeError, "selector"),
])
def test_bad_values_are_refused_before_any_draw(moons, params, error, name):
    X, y = moons
    with forbid_sampling():
        with pytest.raises(error, match=name):
            region(guarantee=DeployedGuarantee(**params)).fit(X, y)


def test_bad_values_set_after_fit_are_refused_before_any_draw(moons):
    X, y = moons
    est = region(guarantee=DeployedGuarantee(n_family_inputs=8, n_selector_inputs=60)).fit(X, y)
    est.set_params(guarantee__selection_sigma=-1.0)
    with forbid_sampling(), pytest.raises(ValueError, match="selection_sigma"):
        est.certify(X[:2])


@pytest.mark.parametrize("guarantee, error", [("sound", ValueError),
                                              (DiagonalSearch(), TypeError)])
def test_a_guarantee_of_the_wrong_kind_is_refused(moons, guarantee, error):
    X, y = moons
    with forbid_sampling(), pytest.raises(error, match="guarantee"):
        region(guarantee=guarantee).fit(X, y)
