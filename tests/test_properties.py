"""Property-based tests (hypothesis): statistics, ellipsoid geometry, SPD steps, memory.

``SMOOTHCERT_HYPOTHESIS_EXAMPLES`` raises the number of examples for a longer run.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats
from scipy.linalg import expm

from smoothcert import Certificate, CertificateMemory
from smoothcert._geometry import _ellipsoids as ellipsoids
from smoothcert._geometry._forms import RowCovariances
from smoothcert._certify._stats import (
    binomial_test_pvalue,
    clopper_pearson_lower,
    clopper_pearson_upper,
    empirical_bernstein_lower,
    hoeffding_lower,
    mahalanobis_radius,
    radius_ceiling,
    soft_lower_bound,
)

N_EXAMPLES = int(os.environ.get("SMOOTHCERT_HYPOTHESIS_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=N_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

alphas = st.floats(1e-6, 0.5, allow_nan=False)
probs = st.floats(0.0, 1.0, allow_nan=False)


# ---------------------------------------------------------------- statistics
@SETTINGS
@given(n=st.integers(1, 10**6), frac=probs, alpha=alphas)
def test_clopper_pearson_increasing_in_k(n, frac, alpha):
    k = min(n - 1, int(frac * n))
    lo, hi = clopper_pearson_lower([k, k + 1], n, alpha)
    assert 0.0 <= lo < hi < 1.0
    assert lo <= k / n <= clopper_pearson_upper(k, n, alpha)


@SETTINGS
@given(n=st.integers(1, 10**5), frac=probs, a1=alphas, a2=alphas)
def test_clopper_pearson_increasing_in_alpha(n, frac, a1, a2):
    """A larger failure probability (lower confidence) gives a larger lower bound."""
    k = int(frac * n)
    a1, a2 = sorted((a1, a2))
    assert clopper_pearson_lower(k, n, a1) <= clopper_pearson_lower(k, n, a2) + 1e-15
    assert clopper_pearson_upper(k, n, a1) >= clopper_pearson_upper(k, n, a2) - 1e-15


@SETTINGS
@given(n=st.integers(1, 2000), frac=probs, factor=st.integers(2, 50), alpha=alphas)
def test_clopper_pearson_tighter_with_more_draws(n, frac, factor, alpha):
    """At a fixed proportion k/N, more draws give a larger (tighter) lower bound."""
    k = int(frac * n)
    small = clopper_pearson_lower(k, n, alpha)
    large = clopper_pearson_lower(factor * k, factor * n, alpha)
    assert large >= small - 1e-12
    assert large <= k / n + 1e-12


@SETTINGS
@given(n=st.integers(1, 300), p=st.floats(0.001, 0.999), alpha=st.floats(1e-4, 0.5))
def test_clopper_pearson_exact_coverage(n, p, alpha):
    """P(lower bound > p) <= alpha exactly, summed over all binomial outcomes."""
    k = np.arange(n + 1)
    failure = stats.binom.pmf(k, n, p)[clopper_pearson_lower(k, n, alpha) > p].sum()
    assert failure <= alpha * (1 + 1e-9)


@SETTINGS
@given(p1=probs, p2=probs, q=st.floats(0.0, 0.5))
def test_mahalanobis_radius_monotone(p1, p2, q):
    p1, p2 = sorted((p1, p2))
    r1, r2 = mahalanobis_radius([p1, p2])
    assert np.isfinite(r1) and np.isfinite(r2)
    assert 0.0 <= r1 <= r2
    if p1 <= 0.5:
        assert r1 == 0.0
    if p2 > 0.5:
        assert r2 == pytest.approx(stats.norm.ppf(min(p2, 1 - np.finfo(float).eps)))
    # top-two radius: with the runner-up bound at 1 - p_A it equals Cohen's radius,
    # with a smaller runner-up bound it can only grow
    if 0.5 < p2 < 1.0:
        same = mahalanobis_radius(p2, 1.0 - p2)
        assert same == pytest.approx(r2, rel=1e-9, abs=1e-12)
        assert mahalanobis_radius(p2, min(q, 1.0 - p2)) >= same - 1e-12


@SETTINGS
@given(
    scores=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=200),
    alpha=alphas,
)
def test_soft_bounds_below_the_mean(scores, alpha):
    x = np.asarray(scores)
    n, mean, var = len(x), x.mean(), x.var(ddof=1)
    for bound in (
        hoeffding_lower(mean, n, alpha),
        empirical_bernstein_lower(mean, var, n, alpha),
        soft_lower_bound(mean, var, n, alpha),
    ):
        assert 0.0 <= bound <= mean + 1e-12
    # the combination is at least as good as each part at level alpha / 2
    combined = soft_lower_bound(mean, var, n, alpha)
    assert combined >= hoeffding_lower(mean, n, alpha / 2) - 1e-15
    assert combined >= empirical_bernstein_lower(mean, var, n, alpha / 2) - 1e-15


@SETTINGS
@given(
    m1=probs, m2=probs, v1=st.floats(0, 0.25), v2=st.floats(0, 0.25),
    n=st.integers(2, 10**6), alpha=alphas,
)
def test_soft_bound_monotone(m1, m2, v1, v2, n, alpha):
    (m1, m2), (v1, v2) = sorted((m1, m2)), sorted((v1, v2))
    assert soft_lower_bound(m1, v1, n, alpha) <= soft_lower_bound(m2, v1, n, alpha) + 1e-15
    assert soft_lower_bound(m1, v2, n, alpha) <= soft_lower_bound(m1, v1, n, alpha) + 1e-15
    assert soft_lower_bound(m1, v1, n, alpha) <= soft_lower_bound(m1, v1, 2 * n, alpha) + 1e-15


@SETTINGS
@given(k1=st.integers(0, 300), k2=st.integers(0, 300))
def test_binomial_test_pvalue_matches_scipy(k1, k2):
    p = binomial_test_pvalue(k1, k2)
    assert p == binomial_test_pvalue(k2, k1)
    if k1 + k2 > 0:
        assert p == pytest.approx(stats.binomtest(k1, k1 + k2, 0.5).pvalue, rel=1e-9, abs=1e-300)
    else:
        assert p == 1.0


@SETTINGS
@given(n1=st.integers(1, 10**12), n2=st.integers(1, 10**12), alpha=alphas)
def test_radius_ceiling_finite_and_increasing(n1, n2, alpha):
    n1, n2 = sorted((n1, n2))
    c1, c2 = radius_ceiling(n1, alpha), radius_ceiling(n2, alpha)
    assert np.isfinite(c1) and np.isfinite(c2)
    assert c1 <= c2 + 1e-12


# ------------------------------------------------------------------ geometry
def _spd(seed, d, log_cond=3.0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = np.exp(rng.uniform(-log_cond / 2, log_cond / 2, size=d) * np.log(10))
    return (q * eig) @ q.T


def _certificate(center, cov, r):
    return Certificate(
        center=center[None], prediction=np.array([1]), abstained=np.array([False]),
        covariance=RowCovariances.from_matrices(cov[None]),
        mahalanobis_radius=np.array([r]), p_lower=np.array([0.9]), alpha=0.01,
    )


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1), d=st.integers(1, 6),
    r=st.floats(0.01, 5.0), ratio=st.floats(0.0, 2.0),
)
def test_ball_inside_ellipsoid_iff_radius_small_enough(seed, d, r, ratio):
    cov = _spd(seed, d)
    lam, vecs = np.linalg.eigh(cov)
    bound = r * np.sqrt(lam[0])
    assume(abs(ratio - 1.0) > 1e-6)
    R = ratio * bound
    center = np.random.default_rng(seed).standard_normal(d)
    cert = _certificate(center, cov, r)
    assert cert.radius[0] == pytest.approx(bound, rel=1e-10)
    inside = bool(cert.contains_ball(R)[0])
    assert inside == (ratio < 1.0)
    rng = np.random.default_rng(seed + 1)
    u = rng.standard_normal((200, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    pts = np.concatenate([u, vecs[:, :1].T, -vecs[:, :1].T])  # incl. the worst direction
    in_ell = cert.contains_points(center + R * pts[None])[0]
    if inside:
        assert in_ell.all()  # every point of the ball's sphere is in the ellipsoid
    else:
        assert not in_ell[-1]  # the ball pokes out along the shortest axis


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 4), scale=st.floats(0.01, 1.5))
def test_fisher_rao_exp_matches_closed_form_and_geomstats_log(seed, d, scale):
    from smoothcert._geometry._fisher_rao import (
        exp_whitened,
        fisher_rao_exp,
        fisher_rao_metric,
        fisher_rao_norm_whitened,
        sym_sqrt,
    )

    rng = np.random.default_rng(seed)
    sigma = _spd(seed, d, log_cond=2.0)
    w = rng.standard_normal((d, d))
    w = scale * (w + w.T) / np.sqrt(2 * d)  # whitened tangent vector
    root = sym_sqrt(sigma[None])[0]
    tangent = root @ w @ root
    expected = root @ expm(w) @ root
    out = fisher_rao_exp(sigma[None], tangent[None])[0]
    assert_allclose(out, expected, rtol=1e-8, atol=1e-10 * np.abs(expected).max())
    assert_allclose(exp_whitened(sigma[None], w[None])[0], expected, rtol=1e-8,
                    atol=1e-10 * np.abs(expected).max())
    assert np.all(np.linalg.eigvalsh(out) > 0)
    metric = fisher_rao_metric(d)
    back = np.asarray(metric.log(out[None], sigma[None]))[0]
    assert_allclose(back, tangent, rtol=1e-6, atol=1e-8 * np.abs(tangent).max())
    # the Fisher-Rao length of the step, three ways
    length = float(fisher_rao_norm_whitened(w))
    assert length == pytest.approx(np.sqrt(0.5 * np.trace(w @ w)), rel=1e-12)
    assert length == pytest.approx(float(np.asarray(metric.norm(tangent[None], sigma[None]))[0]),
                                   rel=1e-8)
    assert length == pytest.approx(float(np.asarray(metric.dist(sigma[None], out[None]))[0]),
                                   rel=1e-6)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 5),
       lo=st.floats(1e-3, 1.0), span=st.floats(1.0, 100.0))
def test_clamp_eigenvalues(seed, d, lo, span):
    from smoothcert._geometry._fisher_rao import clamp_eigenvalues

    sigma = _spd(seed, d, log_cond=6.0)
    out = clamp_eigenvalues(sigma[None], lo, lo * span)[0]
    assert_allclose(out, out.T)
    ev = np.linalg.eigvalsh(out)
    assert np.all(ev >= lo * (1 - 1e-9)) and np.all(ev <= lo * span * (1 + 1e-9))
    # the eigenvectors are kept: out commutes with sigma
    assert_allclose(out @ sigma, sigma @ out, atol=1e-8 * np.abs(sigma).max() * np.abs(out).max())


# --------------------------------------------------- memory: disjointness test
def _brute_separation(c1, s1, r1, c2, s2, r2):
    """``max_t delta^T (A1 / (1 - t) + A2 / t)^-1 delta`` by direct inversion on a grid
    dense near both ends, refined by a bounded scalar search (no generalized eigenproblem)."""
    from scipy.optimize import minimize_scalar

    delta = c2 - c1
    a1, a2 = r1**2 * s1, r2**2 * s2

    def f(t):
        t = np.atleast_1d(t)
        m = a1[None] / (1 - t)[:, None, None] + a2[None] / t[:, None, None]
        return np.einsum("i,tij,j->t", delta, np.linalg.inv(m), delta)

    ends = np.geomspace(1e-12, 0.5, 400)
    t = np.unique(np.concatenate([ends, 1 - ends, np.linspace(0.001, 0.999, 999)]))
    t = t[(t > 0) & (t < 1)]
    values = f(t)
    k = int(np.argmax(values))
    lo, hi = t[max(k - 1, 0)], t[min(k + 1, len(t) - 1)]
    res = minimize_scalar(lambda s: -f(s)[0], bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-14})
    return float(max(values[k], -res.fun))


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 4),
       r1=st.floats(0.05, 2.0), r2=st.floats(0.05, 2.0), shift=st.floats(0.0, 4.0))
def test_ellipsoid_disjointness_symmetric_and_exact(seed, d, r1, r2, shift):
    rng = np.random.default_rng(seed)
    s1, s2 = _spd(seed, d, 1.5), _spd(seed + 7, d, 1.5)
    c1 = rng.standard_normal(d)
    c2 = c1 + shift * rng.standard_normal(d)
    a = ellipsoids.ellipsoids_disjoint(c1, s1, r1, c2, s2, r2)
    b = ellipsoids.ellipsoids_disjoint(c2, s2, r2, c1, s1, r1)
    assert bool(a) == bool(b)
    value, _ = ellipsoids.ellipsoid_separation(c1, s1, r1, c2, s2, r2)
    brute = _brute_separation(c1, s1, r1, c2, s2, r2)
    # the grid maximum can only be below the true maximum
    assert brute <= value * (1 + 1e-9) + 1e-12
    assert brute >= value * (1 - 1e-6) - 1e-12
    if bool(a):
        # no point of E1 lies in E2: sample E1 densely, incl. its boundary
        u = rng.standard_normal((4000, d))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        u *= rng.uniform(0, 1, size=(4000, 1)) ** (1.0 / d)
        u = np.concatenate([u, u / np.linalg.norm(u, axis=1, keepdims=True)])
        pts = c1 + r1 * u @ np.linalg.cholesky(s1).T
        inside2 = ellipsoids.point_in_ellipsoids(pts, c2[None], s2[None], [r2])[:, 0]
        assert not inside2.any()


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 4), r2=st.floats(0.05, 2.0))
def test_touching_scale_is_the_disjointness_threshold(seed, d, r2):
    rng = np.random.default_rng(seed)
    s1, s2 = _spd(seed, d, 1.5), _spd(seed + 3, d, 1.5)
    c1 = rng.standard_normal(d)
    c2 = c1 + 3 * rng.standard_normal(d)
    scale = float(ellipsoids.touching_scales(c1, s1, c2[None], s2[None], [r2])[0])
    assume(scale > 1e-3)
    assert ellipsoids.ellipsoids_disjoint(c1, s1, scale * (1 - 1e-6), c2, s2, r2)
    assert not ellipsoids.ellipsoids_disjoint(c1, s1, scale * (1 + 1e-6), c2, s2, r2)


@settings(max_examples=max(25, N_EXAMPLES // 2), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 3), n=st.integers(2, 40))
def test_memory_keeps_classes_apart(seed, d, n):
    """After any sequence of processed certificates, a point never sits in regions
    of two classes, and every stored point is answered with its region's class."""
    rng = np.random.default_rng(seed)
    covs = np.stack([_spd(seed + i, d, 1.0) for i in range(n)])
    cert = Certificate(
        center=rng.uniform(-2, 2, size=(n, d)),
        prediction=rng.integers(0, 3, size=n),
        abstained=rng.uniform(size=n) < 0.2,
        covariance=RowCovariances.from_matrices(covs),
        mahalanobis_radius=rng.uniform(0.1, 2.0, size=n),
        p_lower=np.full(n, 0.9), alpha=0.01,
    )
    cert.mahalanobis_radius[cert.abstained] = 0.0
    memory = CertificateMemory()
    sound = memory.process(cert)
    assert sound.guarantee == "memory"
    assert memory.conflicts().shape == (0, 2)
    # sample points in each certified sound region
    rows = np.flatnonzero(sound.certified)
    if rows.size == 0:
        return
    u = rng.standard_normal((rows.size, 30, d))
    u /= np.linalg.norm(u, axis=2, keepdims=True)
    u *= rng.uniform(0, 1, size=(rows.size, 30, 1))
    root = sound.covariances.take(rows).sqrt_matrices()
    pts = sound.center[rows][:, None] + sound.mahalanobis_radius[rows][:, None, None] * np.einsum(
        "nij,nmj->nmi", root, u)
    assert sound[rows].contains_points(pts).all()
    flat = pts.reshape(-1, d)
    owner_label = np.repeat(sound.prediction[rows], 30)
    hit = ellipsoids.point_in_ellipsoids(flat, memory.centers, memory.covariances,
                                         memory.mahalanobis_radii)
    labels = memory.labels
    for i in range(flat.shape[0]):
        assert set(labels[hit[i]].tolist()) <= {owner_label[i]}
    idx = memory.query(flat)
    assert np.all(idx >= 0)
    np.testing.assert_array_equal(labels[idx], owner_label)
