"""``CertifiedRegion(guarantee="deployed")``: certificates that hold for its own predict.

The probe: for each certified input, directions in which the base model's own
class changes soonest, and points at 0.9 and 0.98 of the certified l2 radius
along them. The deployed classifier (``predict_abstain`` of the same fitted
estimator with another ``random_state``, so with draws independent of the
certificate's) must not return another class there, beyond the Monte-Carlo
failure rates. The per-covariance certificates (``guarantee="per-covariance"``)
are contradicted at many such points; the test records their rate beside.
"""

import copy
import pickle

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from smoothcert import Certificate, CertifiedRegion, certify
from smoothcert._certify._selection import (
    best_interval,
    selected_member,
    selection_undecided,
    threshold_certificates,
)
from smoothcert._engine._streams import STAGE_SELECTOR, derived_seed, generators
from smoothcert.guarantees import DeployedGuarantee


def curved(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, size=(n, 2))
    y = (X[:, 1] > 0.8 * np.sin(1.5 * X[:, 0])).astype(int)
    return X, y


FAST = dict(sigma=0.25, n_iter=10, n_samples_optim=64, n_samples=2000, alpha=0.01,
            random_state=0)


def deployed(**params):
    """The deployed guarantee of these tests: a small family, fitted on few inputs."""
    return DeployedGuarantee(**{"n_family_inputs": 32, "n_selector_inputs": 400, **params})


def probe_rate(est, X_test, n_directions=32, n_kept=4, seed=0):
    """(points with another non-abstained class, probe points) of a fitted estimator."""
    cert = est.certify(X_test)
    rng = np.random.default_rng(seed)
    steps = np.linspace(0.0, 3.0, 61)[1:]
    points, owner = [], []
    for i in np.flatnonzero(cert.certified & (cert.radius > 0)):
        x, rho = cert.center[i], cert.radius[i]
        u = rng.standard_normal((n_directions, 2))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        line = (x + rho * steps[None, :, None] * u[:, None, :]).reshape(-1, 2)
        changed = (est.predict_base(line) != est.predict_base(x[None])[0]).reshape(n_directions, -1)
        first = np.where(changed.any(axis=1), changed.argmax(axis=1), steps.size)
        for j in np.argsort(first, kind="stable")[:n_kept]:
            for f in (0.9, 0.98):
                points.append(x + f * rho * u[j])
                owner.append(i)
    assert len(points) > 40  # the probe must have something to probe
    deployed = copy.deepcopy(est).set_params(random_state=12345)
    label, abstained = deployed.predict_abstain(np.asarray(points))
    wrong = (~abstained) & (label != cert.prediction[np.asarray(owner)])
    return int(wrong.sum()), len(points)


@pytest.fixture(scope="module")
def curved_data():
    X, y = curved(1500, 0)
    X_test, _ = curved(25, 1)
    return X, y, X_test


@pytest.mark.parametrize("method", ["isotropic", "riemannian"])
def test_probe_forest_deployed_sound_per_covariance_not(curved_data, method):
    X, y, X_test = curved_data
    forest = RandomForestClassifier(30, random_state=0)
    region = CertifiedRegion(forest, method=method, guarantee=deployed(), **FAST).fit(X, y)
    wrong, total = probe_rate(region, X_test)
    assert wrong <= 0.01 * total, (wrong, total)
    per_cov = CertifiedRegion(forest, method=method, guarantee="per-covariance", **FAST).fit(X, y)
    wrong_pc, total_pc = probe_rate(per_cov, X_test)
    # documented rate of the per-covariance certificates (measured: riemannian
    # 21 / 200 here; the isotropic search moves little in 10 iterations)
    print(f"{method}: deployed {wrong}/{total}, per-covariance {wrong_pc}/{total_pc}")
    if method == "riemannian":
        assert wrong_pc > 0.05 * total_pc


@pytest.mark.torch
@pytest.mark.parametrize("method", ["isotropic", "riemannian"])
def test_probe_skorch_deployed_sound(curved_data, method):
    from nets import tanh_net

    X, y, X_test = curved_data
    net = tanh_net(module__hidden=32, max_epochs=40)
    region = CertifiedRegion(net, method=method, guarantee=deployed(), **FAST).fit(
        X.astype(np.float32), y)
    assert region.selector_ is not None
    wrong, total = probe_rate(region, X_test)
    assert wrong <= 0.01 * total, (wrong, total)


# ------------------------------------------------------------ the pieces
def test_median_member_and_undecided():
    counts = np.array([[10, 0, 90], [50, 0, 50], [30, 40, 30], [0, 100, 0]])
    assert selected_member(counts).tolist() == [2, 0, 1, 1]
    undecided = selection_undecided(counts, selected_member(counts), 0.01)
    assert undecided.tolist() == [False, True, False, False]


def test_quantile_member_favours_the_smallest_members():
    counts = np.array([[10, 0, 90], [25, 0, 75], [15, 10, 75], [0, 100, 0]])
    # the smallest k with P(h <= k) >= 0.2
    assert selected_member(counts, 0.2).tolist() == [2, 0, 1, 1]
    assert selected_member(counts, 0.5).tolist() == [2, 2, 2, 1]


def test_quantile_undecided_uses_both_bounds():
    total = 10_000
    # P(h <= 0) clearly above 0.2; clearly below; at 0.2 exactly
    counts = np.array([[3000, 7000], [1000, 9000], [2000, 8000]])
    member = selected_member(counts, 0.2)
    assert member.tolist() == [0, 1, 0]
    undecided = selection_undecided(counts, member, 0.001, 0.2)
    assert undecided.tolist() == [False, False, True]
    assert counts.sum(axis=1).tolist() == [total] * 3


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.8])
def test_threshold_radius_is_exact_for_a_smoothed_half_space(tau):
    """``P(h <= 0)`` of a smoothed half-space is ``Phi(-u.x / s)``: its tau level set is a
    hyperplane, at exactly the distance the threshold radius gives (in units of s)."""
    from scipy.stats import norm

    from smoothcert._certify._stats import threshold_radius

    s, u = 0.3, np.array([0.6, 0.8])
    p0 = lambda x: norm.cdf(-(x @ u) / s)  # noqa: E731  P(member <= 0) at x
    x = np.array([-0.5, -0.2])
    p = p0(x)
    r = s * threshold_radius(p, tau)  # l2 radius on which P(h <= 0) >= tau
    assert r == pytest.approx(s * (norm.ppf(p) - norm.ppf(tau)))
    # the worst direction is +u: just inside keeps the side, just outside loses it
    assert p0(x + (r - 1e-6) * u) >= tau
    assert p0(x + (r + 1e-6) * u) < tau


def test_threshold_certificates_sides_and_radii():
    sel = np.array([[90, 10], [10, 90], [50, 50]])
    est = np.array([[1000, 0], [0, 1000], [400, 600]])
    at_most, r = threshold_certificates(sel, est, 0.01)
    assert at_most[:, 0].tolist() == [True, False, True]
    assert r[0, 0] > 2 and r[1, 0] > 2
    assert r[2, 0] == 0.0  # side "<= 0" chosen, only 40 % of the estimation draws


def test_threshold_certificates_at_a_quantile_match_clopper_pearson():
    from scipy.stats import beta, norm

    sel = np.array([[30, 70], [10, 90]])
    est = np.array([[3000, 7000], [1000, 9000]])
    at_most, r = threshold_certificates(sel, est, 0.01, tau=0.2)
    assert at_most[:, 0].tolist() == [True, False]  # 30 % >= 0.2; 10 % < 0.2
    # side "<= 0": P(h <= 0) >= 0.2; side "> 0": P(h > 0) > 0.8
    low0 = beta.ppf(0.01, 3000, 10_000 - 3000 + 1)
    low1 = beta.ppf(0.01, 9000, 10_000 - 9000 + 1)
    assert r[0, 0] == pytest.approx(norm.ppf(low0) - norm.ppf(0.2), rel=1e-9)
    assert r[1, 0] == pytest.approx(norm.ppf(low1) - norm.ppf(0.8), rel=1e-9)


def test_best_interval_requires_one_class_and_certified_selection():
    K = 2
    at_most = np.array([[True], [False], [True]])
    sel_r = np.array([[0.5], [0.8], [0.0]])
    member_class = np.array([[1, 1], [0, 0], [1, 0]])
    member_r = np.array([[0.3, 0.9], [0.3, 0.9], [0.4, 0.9]])

    def inner(rows, a, b):  # balls: the intersection is the smallest
        span = member_r[rows, a:b + 1]
        return a + np.argmin(span, axis=1), np.ones(rows.size), span.min(axis=1)

    member, scale, selection, radius = best_interval(at_most, sel_r, member_class, member_r, inner)
    # row 0: [0, 1] needs no selector claim (0.3), [0, 0] gives min(0.5, 0.3)
    assert radius[0] == pytest.approx(0.3)
    # row 1: [1, 1] with the selector at >= 1 on 0.8: min(0.8, 0.9)
    assert radius[1] == pytest.approx(0.8) and member[1] == 1
    # row 2: the members disagree and the selection is not certified: nothing
    assert radius[2] == 0.0 and member[2] == -1
    assert K == member_class.shape[1]


def test_selector_streams_are_independent():
    seed = (1, 0)
    keys = np.array([[1, 2, 3, 4]], dtype=np.uint64)
    a = generators(seed, keys, 2)[0].standard_normal(8)
    b = generators(derived_seed(seed, STAGE_SELECTOR), keys, 2)[0].standard_normal(8)
    assert not np.allclose(a, b)


# ------------------------------------------------------- the estimator
@pytest.fixture(scope="module")
def fitted(curved_data):
    X, y, _ = curved_data
    return CertifiedRegion(RandomForestClassifier(20, random_state=0), method="isotropic",
                           guarantee=deployed(), **FAST).fit(X, y)


def test_default_guarantee_and_certificate_region(fitted, curved_data):
    _, _, X_test = curved_data
    assert CertifiedRegion().guarantee == "deployed"
    cert = fitted.certify(X_test)
    assert cert.guarantee == "deployed"
    assert fitted.selector_ is not None and fitted.covariance_family_.shape[1:] == (2, 2)
    assert cert.selection_radius is not None
    class_radius = cert.mahalanobis_radius * np.sqrt(cert.covariances.min_eigenvalue())
    np.testing.assert_allclose(cert.radius, np.minimum(class_radius, cert.selection_radius))
    # contains_ball respects the selection region
    limited = np.flatnonzero(cert.certified & (cert.selection_radius < class_radius))
    for i in limited:
        assert not cert[i:i + 1].contains_ball(0.5 * (cert.selection_radius[i] + class_radius[i]))[0]
    # points in the class ellipsoid but outside the selection region are outside
    for i in limited:
        direction = np.array([1.0, 0.0])
        p = cert.center[i] + 0.999 * class_radius[i] * direction
        assert not cert[i:i + 1].contains_points(p[None])[0]
    frame = cert.to_frame()
    np.testing.assert_allclose(frame["selection_radius"], cert.selection_radius)
    # the log-volume is a lower bound: never above the class ellipsoid's
    plain = Certificate(center=cert.center, prediction=cert.prediction, abstained=cert.abstained,
                        covariance=cert.covariances, mahalanobis_radius=cert.mahalanobis_radius,
                        p_lower=cert.p_lower, alpha=cert.alpha)
    ok = cert.certified
    assert np.all(cert.log_volume[ok] <= plain.log_volume[ok] + 1e-12)
    sliced = cert[[2, 0]]
    np.testing.assert_array_equal(sliced.selection_radius, cert.selection_radius[[2, 0]])


def test_deployed_predictions_use_the_family(fitted, curved_data):
    _, _, X_test = curved_data
    label, abstained = fitted.predict_abstain(X_test)
    cert = fitted.certify(X_test)
    agree = cert.certified & ~abstained
    assert np.mean(label[agree] == cert.prediction[agree]) == 1.0
    proba = fitted.predict_proba(X_test[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(fitted.predict(X_test[:5]), fitted.classes_[proba.argmax(axis=1)])


def test_invariances_and_pickle(fitted, curved_data):
    _, _, X_test = curved_data
    X_test = X_test[:8]
    cert = fitted.certify(X_test)
    order = np.arange(8)[::-1]
    other = copy.deepcopy(fitted).set_params(batch_size=97, n_jobs=2).certify(X_test[order])
    np.testing.assert_array_equal(other.radius, cert.radius[order])
    np.testing.assert_array_equal(other.selection_radius, cert.selection_radius[order])
    again = pickle.loads(pickle.dumps(fitted)).certify(X_test)
    np.testing.assert_array_equal(again.radius, cert.radius)


def test_target_radius_path(fitted, curved_data):
    _, _, X_test = curved_data
    cert = fitted.certify(X_test, radius=0.3)
    assert np.all(cert.radius[cert.certified] >= 0.3)
    full = fitted.certify(X_test)
    # the sequential path certifies about as many inputs at 0.3 as the fixed one
    assert abs(cert.certified.sum() - full.contains_ball(0.3).sum()) <= 3
    seq = copy.deepcopy(fitted).set_params(sampling="sequential")
    assert seq.certify(X_test).guarantee == "deployed"


def test_pipeline_pulls_back_the_selection_region(curved_data):
    X, y, X_test = curved_data
    scale = np.array([2.0, 0.5])
    region = CertifiedRegion(RandomForestClassifier(20, random_state=0), method="isotropic",
                             guarantee=deployed(), **FAST)
    pipe = make_pipeline(StandardScaler(), region).fit(X * scale, y)
    cert = certify(pipe, X_test[:6] * scale)
    inner = pipe[-1].certify(pipe[0].transform(X_test[:6] * scale))
    s = pipe[0].scale_
    expected = inner.selection_mahalanobis_radius * pipe[-1]._selection_sigma() * s.min()
    np.testing.assert_allclose(cert.selection_radius, expected)
    assert np.all(cert.radius <= cert.selection_radius + 1e-12)
    at = certify(pipe, X_test[:6] * scale, radius=0.2)
    assert np.all(at.radius[at.certified] >= 0.2 - 1e-12)


def test_grid_search_and_diagonal(curved_data):
    X, y, _ = curved_data
    params = {**FAST, "n_samples": 500}
    search = GridSearchCV(
        CertifiedRegion(RandomForestClassifier(10, random_state=0), method="diagonal",
                        guarantee=deployed(), **params),
        {"guarantee__n_prototypes": [2, 3]}, cv=2,
    ).fit(X[:400], y[:400])
    assert 0.0 <= search.best_score_ <= 1.0
    cert = search.best_estimator_.certify(X[:5])
    assert cert.guarantee == "deployed"


def test_per_covariance_is_selectable_and_refit_needed(curved_data):
    X, y, X_test = curved_data
    est = CertifiedRegion(LogisticRegression(), method="isotropic",
    guarantee="per-covariance",
                          **FAST).fit(X, y)
    assert est.certify(X_test[:3]).guarantee == "per-covariance"
    assert not hasattr(est, "selector_")
    with pytest.raises(ValueError, match="Call fit again"):
        est.set_params(guarantee="deployed").certify(X_test[:3])
    with pytest.raises(ValueError, match="guarantee"):
        CertifiedRegion(guarantee="sound").fit(X, y)


def test_coverage_linear_oracle():
    """Over-claims of deployed certificates on a linear model stay below alpha.

    For ``f(x) = 1[w.x + b > 0]`` every smoothed member predicts the side of the
    hyperplane, so a region over-claims when its class is wrong or when it
    crosses the hyperplane: counted (conservatively) when both the declared
    class ellipsoid and the selection region cross it.
    """
    from sklearn.frozen import FrozenEstimator

    w, b = np.array([1.0, -2.0]), 0.3
    rng = np.random.default_rng(0)
    lr = LogisticRegression().fit(rng.standard_normal((20, 2)), np.arange(20) % 2)
    lr.coef_, lr.intercept_ = w[None, :].copy(), np.array([b])
    alpha = 0.2
    est = CertifiedRegion(FrozenEstimator(lr), method="isotropic", n_iter=3, n_samples_optim=32,
                          n_samples=100, n_samples_selection=20, alpha=alpha, random_state=0,
                          guarantee=DeployedGuarantee(n_family_inputs=16, n_selector_inputs=300))
    est.fit(rng.uniform(-3, 3, size=(600, 2)))
    X = rng.uniform(-2, 2, size=(1500, 2))
    cert = est.certify(X)
    margin = np.abs(X @ w + b)
    truth = (X @ w + b > 0).astype(int)
    reach = cert.mahalanobis_radius * np.sqrt(np.einsum("i,nij,j->n", w, cert.covariance, w))
    crosses = reach > margin
    if cert.selection_covariances is not None:
        sel = cert.selection_mahalanobis_radius * np.sqrt(
            np.einsum("i,nij,j->n", w, cert.selection_covariance, w))
        crosses &= sel > margin
    over = cert.certified & ((cert.prediction != truth) | crosses)
    n = cert.certified.sum()
    assert n > 300
    assert over.sum() / n <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / n), (over.sum(), n)
