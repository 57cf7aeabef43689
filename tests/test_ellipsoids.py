"""Exact ellipsoid geometry: disjointness, touching scale, membership.

The disjointness test is checked against ground truth that does not use it:

- constructed pairs whose answer is known by construction (tangent pairs
  shrunk or grown by 1e-3, nested pairs, far-apart pairs);
- random pairs, where every "intersecting" answer must be backed by a point
  found in both ellipsoids (uniform sampling of the first, or a convex program
  solved with scipy), and every "disjoint" answer by a separating hyperplane
  verified with the support functions of the original matrices. Either check
  fails if the answer is wrong.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import minimize

from smoothcert._geometry._ellipsoids import (
    ellipsoid_separation,
    ellipsoids_disjoint,
    largest_disjoint_scale,
    outer_radii,
    point_in_ellipsoids,
    touching_scales,
)

DIMS = (2, 5, 20)


def random_spd(rng, n, d, low=-2.0, high=1.0):
    """SPD matrices with log-uniform eigenvalues in [e^low, e^high] and random axes."""
    q, _ = np.linalg.qr(rng.standard_normal((n, d, d)))
    w = np.exp(rng.uniform(low, high, size=(n, d)))
    out = np.einsum("nij,nj,nkj->nik", q, w, q)
    return 0.5 * (out + out.transpose(0, 2, 1))


def maha2(points, center, cov):
    """Squared Mahalanobis distance, straight from the definition."""
    diff = points - center
    return np.einsum("...i,...ij,...j->...", diff, np.linalg.inv(cov), diff, optimize=False)


def sample_ellipsoid(rng, center, cov, radius, n):
    """Points uniform in the ellipsoid, plus as many on its surface."""
    d = center.size
    u = rng.standard_normal((2 * n, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    u[:n] *= rng.uniform(size=(n, 1)) ** (1.0 / d)
    return center + radius * np.einsum("nj,ij->ni", u, np.linalg.cholesky(cov))


def separating_hyperplane_holds(c1, a1, c2, a2, t):
    """Support-function check that the normal ``M(t)^-1 (c2 - c1)`` separates."""
    delta = c2 - c1
    m = a1 / (1 - t) + a2 / t
    u = np.linalg.solve(m, delta)
    return u @ delta > np.sqrt(u @ a1 @ u) + np.sqrt(u @ a2 @ u)


def qp_witness(c1, a1, c2, a2):
    """Point of E1 closest to c2 in the metric of E2 (scipy SLSQP), if it lies in E2."""
    chol = np.linalg.cholesky(a1)
    a2_inv = np.linalg.inv(a2)

    def objective(z):
        x = c1 + chol @ z
        return (x - c2) @ a2_inv @ (x - c2), 2 * chol.T @ a2_inv @ (x - c2)

    cons = {"type": "ineq", "fun": lambda z: 1 - z @ z, "jac": lambda z: -2 * z}
    res = minimize(objective, np.zeros(c1.size), jac=True, constraints=[cons], method="SLSQP",
                   options={"ftol": 1e-14, "maxiter": 500})
    z = res.x / max(1.0, np.linalg.norm(res.x))  # exactly feasible for E1
    x = c1 + chol @ z
    return x if (x - c2) @ a2_inv @ (x - c2) <= 1.0 else None


def path_witness(c1, a1, c2, a2, n_grid=400):
    """A point in both ellipsoids on the path ``argmin (1-t) q1 + t q2``, if the grid finds one.

    ``q_k(x) = (x - c_k)^T A_k^-1 (x - c_k)``; by Lagrangian duality two
    intersecting ellipsoids share a point of this path (from c1 to c2).
    """
    p1, p2 = np.linalg.inv(a1), np.linalg.inv(a2)
    t = np.linspace(0, 1, n_grid)[:, None, None]
    hess = (1 - t) * p1 + t * p2
    rhs = (1 - t)[:, :, 0] * (p1 @ c1) + t[:, :, 0] * (p2 @ c2)
    x = np.linalg.solve(hess, rhs[..., None])[..., 0]
    q1 = np.einsum("ni,ij,nj->n", x - c1, p1, x - c1)
    q2 = np.einsum("ni,ij,nj->n", x - c2, p2, x - c2)
    both = np.flatnonzero((q1 <= 1) & (q2 <= 1))
    return x[both[0]] if both.size else None


def tangent_pairs(rng, n, d):
    """Pairs touching at a known point ``p`` with a known common normal."""
    cov1, cov2 = random_spd(rng, n, d), random_spd(rng, n, d)
    r1, r2 = rng.uniform(0.2, 2.0, n), rng.uniform(0.2, 2.0, n)
    c2 = rng.standard_normal((n, d))
    # boundary point of E2 along a random direction, and its outward normal
    u = rng.standard_normal((n, d))
    u /= np.sqrt(maha2(u, 0.0, cov2))[:, None]
    p = c2 + r2[:, None] * u
    normal = np.linalg.solve(cov2, u[..., None])[..., 0]
    # E1 lies on the other side of the tangent plane, touching it at p
    a1n = np.einsum("nij,nj->ni", cov1, normal)
    c1 = p + r1[:, None] * a1n / np.sqrt(np.einsum("ni,ni->n", normal, a1n))[:, None]
    return c1, cov1, r1, c2, cov2, r2, p, normal


@pytest.mark.parametrize("d", DIMS)
def test_tangent_pairs_shrunk_or_grown(d):
    rng = np.random.default_rng(d)
    c1, cov1, r1, c2, cov2, r2, p, normal = tangent_pairs(rng, 300, d)
    # ground truth by construction: p is on both boundaries
    assert_allclose(maha2(p, c1, cov1), r1**2, rtol=1e-9)
    assert_allclose(maha2(p, c2, cov2), r2**2, rtol=1e-9)
    value, _ = ellipsoid_separation(c1, cov1, r1, c2, cov2, r2)
    assert_allclose(value, 1.0, atol=1e-8)
    shrunk = ellipsoids_disjoint(c1, cov1, r1 * (1 - 1e-3), c2, cov2, r2)
    grown = ellipsoids_disjoint(c1, cov1, r1 * (1 + 1e-3), c2, cov2, r2)
    assert shrunk.all()
    assert not grown.any()
    # the grown E1 contains a point of E2 near p (witness of the intersection)
    inner = p + 1e-7 * (c2 - p)
    assert np.all(maha2(inner, c2, cov2) <= r2**2)
    assert np.all(maha2(inner, c1, cov1) <= (r1 * (1 + 1e-3)) ** 2)
    # symmetric in the two arguments
    assert_array_equal(ellipsoids_disjoint(c2, cov2, r2, c1, cov1, r1 * (1 - 1e-3)), shrunk)
    assert_array_equal(ellipsoids_disjoint(c2, cov2, r2, c1, cov1, r1 * (1 + 1e-3)), grown)


@pytest.mark.parametrize("d", DIMS)
def test_nested_and_far_apart(d):
    rng = np.random.default_rng(100 + d)
    n = 200
    cov1, cov2 = random_spd(rng, n, d), random_spd(rng, n, d)
    r2 = rng.uniform(0.5, 2.0, n)
    c2 = rng.standard_normal((n, d))
    # nested: a small ellipsoid around a point deep inside E2
    u = rng.standard_normal((n, d))
    u /= np.sqrt(maha2(u, 0.0, cov2))[:, None]
    c1 = c2 + 0.5 * r2[:, None] * u
    inner_r2 = 0.5 * r2 * np.sqrt(np.linalg.eigvalsh(cov2)[:, 0])  # ball inside E2 around c1
    r1 = inner_r2 / np.sqrt(np.linalg.eigvalsh(cov1)[:, -1]) * rng.uniform(0.1, 1.0, n)
    assert not ellipsoids_disjoint(c1, cov1, r1, c2, cov2, r2).any()
    # E1 containing E2 entirely
    big = 10 * r2 * np.sqrt(np.linalg.eigvalsh(cov2)[:, -1] / np.linalg.eigvalsh(cov1)[:, 0])
    assert not ellipsoids_disjoint(c2, cov1, big, c2, cov2, r2).any()
    # far apart: bounding balls separated
    out1, out2 = outer_radii(cov1, r2), outer_radii(cov2, r2)
    direction = rng.standard_normal((n, d))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    far = c2 + (out1 + out2 + rng.uniform(0.01, 5.0, n))[:, None] * direction
    assert ellipsoids_disjoint(far, cov1, r2, c2, cov2, r2).all()
    # identical ellipsoids and identical centres intersect
    assert not ellipsoids_disjoint(c2, cov2, r2, c2, cov1, r2).any()


@pytest.mark.parametrize("d", DIMS)
def test_random_pairs_against_witnesses(d):
    """Every answer on random pairs is proven by a witness that does not use it."""
    rng = np.random.default_rng(200 + d)
    n = 400
    cov1, cov2 = random_spd(rng, n, d), random_spd(rng, n, d)
    r1, r2 = rng.uniform(0.2, 2.0, n), rng.uniform(0.2, 2.0, n)
    c1 = rng.standard_normal((n, d))
    # put the second centre at a distance comparable to the sizes: both outcomes occur
    scale = outer_radii(cov1, r1) + outer_radii(cov2, r2)
    direction = rng.standard_normal((n, d))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    c2 = c1 + rng.uniform(0.0, 1.0, n)[:, None] * scale[:, None] * direction
    value, t = ellipsoid_separation(c1, cov1, r1, c2, cov2, r2)
    disjoint = value > 1
    assert 0.1 < disjoint.mean() < 0.9  # both answers are exercised
    n_qp = 0
    for i in range(n):
        a1, a2 = r1[i] ** 2 * cov1[i], r2[i] ** 2 * cov2[i]
        pts = sample_ellipsoid(rng, c1[i], cov1[i], r1[i], 1000)
        found = np.any(maha2(pts, c2[i], cov2[i]) <= r2[i] ** 2)
        if disjoint[i]:
            assert not found, f"pair {i}: claimed disjoint, but a sample lies in both"
            assert separating_hyperplane_holds(c1[i], a1, c2[i], a2, t[i]), f"pair {i}"
        elif not found:
            witness = path_witness(c1[i], a1, c2[i], a2)
            if witness is None:
                n_qp += 1
                witness = qp_witness(c1[i], a1, c2[i], a2)
            assert witness is not None, f"pair {i}: claimed intersecting, no common point found"
    assert n_qp < 20  # the cheap witnesses do nearly all of the work


@pytest.mark.parametrize("d", DIMS)
def test_value_is_the_maximum_over_t(d):
    """The returned value is max_t F(t), F evaluated from the original matrices."""
    rng = np.random.default_rng(300 + d)
    n = 20
    cov1, cov2 = random_spd(rng, n, d), random_spd(rng, n, d)
    r1, r2 = rng.uniform(0.2, 2.0, n), rng.uniform(0.2, 2.0, n)
    c1, c2 = rng.standard_normal((n, d)), 2 * rng.standard_normal((n, d))
    value, t_star = ellipsoid_separation(c1, cov1, r1, c2, cov2, r2)
    grid = np.linspace(1e-4, 1 - 1e-4, 2001)
    for i in range(n):
        delta = c2[i] - c1[i]
        a1, a2 = r1[i] ** 2 * cov1[i], r2[i] ** 2 * cov2[i]

        def f(t):
            t = np.asarray(t, dtype=float)[..., None, None]
            rhs = np.broadcast_to(delta, t.shape[:-2] + (d,))[..., None]
            return np.linalg.solve(a1 / (1 - t) + a2 / t, rhs)[..., 0] @ delta

        on_grid = f(grid)
        assert on_grid.max() <= value[i] * (1 + 1e-10)
        assert_allclose(f(t_star[i]), value[i], rtol=1e-10)
        # the maximizer is a stationary point: nearby t do not do better
        for eps in (1e-6, -1e-6):
            t_near = np.clip(t_star[i] + eps, 1e-12, 1 - 1e-12)
            assert f(t_near) <= value[i] * (1 + 1e-12)


def test_degenerate_radii():
    eye = np.eye(3)
    c = np.zeros(3)
    far = np.array([2.0, 0.0, 0.0])
    # a point (radius 0) against an ellipsoid: the membership test
    assert ellipsoids_disjoint(far, eye, 0.0, c, eye, 1.5)
    assert not ellipsoids_disjoint(far, eye, 0.0, c, eye, 2.5)
    assert not ellipsoids_disjoint(c, eye, 2.5, far, eye, 0.0)
    assert ellipsoids_disjoint(c, eye, 0.0, far, eye, 0.0)
    assert not ellipsoids_disjoint(c, eye, 0.0, c, eye, 0.0)
    assert_allclose(touching_scales(c, eye, far, eye, 0.0), 2.0)


def test_input_validation():
    eye = np.eye(2)
    with pytest.raises(ValueError, match="non-negative"):
        ellipsoids_disjoint([0, 0], eye, -1.0, [1, 1], eye, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        ellipsoids_disjoint([0, np.nan], eye, 1.0, [1, 1], eye, 1.0)
    with pytest.raises(ValueError, match="shape"):
        ellipsoids_disjoint([0, 0], np.eye(3), 1.0, [1, 1], eye, 1.0)
    with pytest.raises(ValueError, match="positive definite"):
        ellipsoids_disjoint([0, 0], -eye, 1.0, [1, 1], eye, 1.0)


# ------------------------------------------------------------------ scale search
@pytest.mark.parametrize("d", DIMS)
def test_touching_scale_is_the_boundary(d):
    rng = np.random.default_rng(400 + d)
    n = 300
    x = 2 * rng.standard_normal((n, d))
    cov = random_spd(rng, n, d)
    c = rng.standard_normal((n, d))
    cov_c = random_spd(rng, n, d)
    r = rng.uniform(0.2, 2.0, n)
    inside = maha2(x, c, cov_c) <= r**2
    scale = touching_scales(x, cov, c, cov_c, r)
    assert np.all(scale[inside] == 0)
    out = ~inside
    assert out.sum() > n // 2
    s = scale[out]
    args = (c[out], cov_c[out], r[out])
    assert ellipsoids_disjoint(x[out], cov[out], s * (1 - 1e-6), *args).all()
    assert not ellipsoids_disjoint(x[out], cov[out], s * (1 + 1e-6), *args).any()


@pytest.mark.parametrize("d", DIMS)
def test_largest_disjoint_scale_over_many_regions(d):
    rng = np.random.default_rng(500 + d)
    m = 400
    centers = 3 * rng.standard_normal((m, d))
    covs = random_spd(rng, m, d, low=-3.0, high=-1.0)
    radii = rng.uniform(0.2, 1.0, m)
    for trial in range(5):
        x = rng.standard_normal(d)
        cov = random_spd(rng, 1, d)[0]
        if np.any(maha2(x, centers, covs) <= radii**2):
            assert largest_disjoint_scale(x, cov, centers, covs, radii) == 0.0
            continue
        brute = touching_scales(x, cov, centers, covs, radii)
        s = largest_disjoint_scale(x, cov, centers, covs, radii)
        assert s == brute.min()  # the prefilter drops nothing that matters
        assert ellipsoids_disjoint(x, cov, s * (1 - 1e-6), centers, covs, radii).all()
        assert not ellipsoids_disjoint(x, cov, s * (1 + 1e-6), centers, covs, radii).all()
        # a cap below the answer is returned as is
        assert largest_disjoint_scale(x, cov, centers, covs, radii, max_scale=0.5 * s) == 0.5 * s


def test_scale_ill_conditioned():
    """Needle-like and pancake-like shapes (condition number 1e6)."""
    rng = np.random.default_rng(7)
    d = 5
    n = 200
    cov = random_spd(rng, n, d, low=-7.0, high=7.0)
    cov_c = random_spd(rng, n, d, low=-7.0, high=7.0)
    x = 5 * rng.standard_normal((n, d))
    c = rng.standard_normal((n, d))
    r = np.ones(n)
    out = maha2(x, c, cov_c) > 1
    s = touching_scales(x[out], cov[out], c[out], cov_c[out], r[out])
    args = (c[out], cov_c[out], r[out])
    assert ellipsoids_disjoint(x[out], cov[out], s * (1 - 1e-6), *args).all()
    assert not ellipsoids_disjoint(x[out], cov[out], s * (1 + 1e-6), *args).any()


# ------------------------------------------------------------------ membership
@pytest.mark.parametrize("d", DIMS)
def test_point_in_ellipsoids_matches_definition(d):
    rng = np.random.default_rng(600 + d)
    m, n = 50, 300
    centers = rng.standard_normal((m, d))
    covs = random_spd(rng, m, d)
    radii = rng.uniform(0.5, 3.0, m)
    # points around the centres, at Mahalanobis distances around the radii
    owner = rng.integers(m, size=n)
    u = rng.standard_normal((n, d))
    u *= (radii[owner] * rng.uniform(0.5, 1.5, n) / np.sqrt(maha2(u, 0.0, covs[owner])))[:, None]
    points = centers[owner] + u
    expected = maha2(points[:, None, :], centers[None], covs[None]) <= radii**2
    assert expected.any() and not expected.all()
    assert_array_equal(point_in_ellipsoids(points, centers, covs, radii), expected)
    assert_array_equal(point_in_ellipsoids(points, centers, covs, radii, chunk_size=7), expected)
