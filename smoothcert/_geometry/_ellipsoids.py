"""Exact geometry of certified ellipsoids: disjointness, touching scale, membership.

A certified region is the ellipsoid

    E(c, Sigma, r) = { x : (x - c)^T Sigma^-1 (x - c) <= r^2 },

i.e. ``{x : (x - c)^T A^-1 (x - c) <= 1}`` with shape matrix ``A = r^2 Sigma``.

**Disjointness** (the separating-ellipsoid criterion). Write ``delta = c2 - c1``
and, for ``t`` in (0, 1),

    M(t) = A1 / (1 - t) + A2 / t,        F(t) = delta^T M(t)^-1 delta.

Every ``{z : z^T M(t)^-1 z <= 1}`` contains the Minkowski sum ``E1' + E2'`` of the
centred ellipsoids (Cauchy-Schwarz: ``(sqrt(p) + sqrt(q))^2 <= p / (1 - t) + q / t``),
with equality of the support functions in every direction for the right ``t``;
so the sum is exactly their intersection. The ellipsoids meet iff ``delta`` lies
in that sum, hence

    E1 and E2 are disjoint  <=>  max_{t in (0, 1)} F(t) > 1
                            <=>  min_{t in (0, 1)} K(t) < 0,   K(t) = 1 - F(t).

(The maximum of ``K`` is 1 at the ends, so the criterion is on its *minimum*.)
At a touching pair the maximum of ``F`` is exactly 1 and, the ellipsoids being
closed, they intersect. A generalized eigendecomposition ``A2 v = mu A1 v``
(``v^T A1 v = 1``) diagonalizes both matrices, and with ``w = V^T delta``

    F(t) = sum_i w_i^2 t (1 - t) / (a t + b_i (1 - t)),   a = r1^2,  b_i = r2^2 mu_i,

a sum of scalar terms. ``F`` is concave (``F'' = -2 sum w_i^2 a b_i / D_i^3``,
``D_i = a t + b_i (1 - t)``), with ``F'(0) > 0 > F'(1)``; its maximum is found by
a safeguarded Newton iteration on ``F'`` inside a shrinking bracket, to ~1e-15 in
``t``. Any ``t`` with ``F(t) > 1`` is itself a proof of disjointness (the
hyperplane with normal ``M(t)^-1 delta`` separates the two), so a "disjoint"
answer never depends on the optimizer having converged.

**Touching scale.** The ellipsoid ``E(x, Sigma, s)`` meets ``E(c, Sigma_c, r)``
iff ``s >= s*``, where ``s*`` is the smallest ``Sigma``-Mahalanobis distance from
``x`` to a point of ``E(c, Sigma_c, r)`` (0 when ``x`` is inside it). Whitening
by ``Sigma`` and diagonalizing the stored ellipsoid, the closest point solves
the secular equation ``sum_i w_i^2 b_i / (b_i + lam)^2 = 1`` (``lam >= 0`` the
Lagrange multiplier); ``phi(lam) = (sum ...)^(-1/2)`` is concave and increasing
(More and Sorensen), so Newton's method from the left converges monotonically
and quadratically; then ``s*^2 = sum_i w_i^2 lam^2 / (b_i + lam)^2``. The
radius ``s*`` is the touching radius: the pair is disjoint for every smaller
radius and intersects for every radius ``>= s*``.

All functions broadcast over leading batch dimensions, so one new region is
tested against thousands of stored ones in a few batched ``eigh`` calls. A
bounding-ball prefilter (``|x - c| - r_c sqrt(lambda_max(Sigma_c))`` against the
candidate radius) keeps the exact computation to the regions that can matter.
"""

import numpy as np

from ._linalg import spd_power, symmetrize

__all__ = [
    "ellipsoid_separation",
    "ellipsoids_disjoint",
    "touching_scales",
    "largest_disjoint_scale",
    "point_in_ellipsoids",
    "outer_radii",
]

_MAX_ITER = 200
# Relative slack of the bounding-ball prefilters (they only skip exact work, so
# they must never skip a region that matters because of rounding).
_PREFILTER_SLACK = 1e-9


def _as_float(a, name):
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return a


def _check_region(center, covariance, radius, which):
    center = _as_float(center, f"center{which}")
    covariance = _as_float(covariance, f"covariance{which}")
    radius = _as_float(radius, f"radius{which}")
    if center.ndim < 1:
        raise ValueError(f"center{which} must have shape (..., d), got {center.shape}.")
    d = center.shape[-1]
    if covariance.ndim < 2 or covariance.shape[-2:] != (d, d):
        raise ValueError(
            f"covariance{which} must have shape (..., {d}, {d}), got {covariance.shape}."
        )
    if np.any(radius < 0):
        raise ValueError(f"radius{which} must be non-negative.")
    return center, covariance, radius


def _inv_sqrt(covariance):
    """Symmetric ``Sigma^(-1/2)`` of a batch of SPD matrices."""
    w, v = np.linalg.eigh(covariance)
    if np.any(w <= 0):
        raise ValueError("covariance matrices must be symmetric positive definite.")
    return spd_power(None, -0.5, eig=(w, v))


def _whitened_spectrum(center, covariance, centers, covariances):
    """Eigen-coordinates of ``E(centers, covariances)`` seen from ``(center, covariance)``.

    With ``W = covariance^(-1/2)`` and ``W covariances W = V diag(mu) V^T``,
    returns ``mu`` and ``w = V^T W (centers - center)`` (both ``(..., d)``).
    """
    white = _inv_sqrt(covariance)
    b_mat = symmetrize(white @ covariances @ white)
    mu, vecs = np.linalg.eigh(b_mat)
    mu = np.maximum(mu, np.finfo(np.float64).tiny)
    delta = np.asarray(centers - center)
    wd = np.einsum("...ij,...j->...i", white, delta)
    w = np.einsum("...ji,...j->...i", vecs, wd)
    return mu, w


def _maximize_separation(w2, a, b):
    """``max_{t in (0,1)} sum_i w2_i t (1 - t) / (a t + b_i (1 - t))`` and its argmax.

    ``w2`` and ``b`` have shape (k, d), ``a`` shape (k,); ``a > 0``, ``b > 0``,
    ``w2.sum(1) > 0``. Safeguarded Newton on the decreasing derivative.
    """
    a_col = a[:, None]
    w_tot = w2.sum(axis=1)
    b_mean = (w2 * b).sum(axis=1) / w_tot
    # exact optimum when every b_i is equal: b (1 - t)^2 = a t^2
    t = np.sqrt(b_mean) / (np.sqrt(a) + np.sqrt(b_mean))
    lo = np.zeros_like(t)
    hi = np.ones_like(t)
    active = np.ones(t.shape, dtype=bool)
    for _ in range(_MAX_ITER):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        tt = t[idx][:, None]
        bb, ww, aa = b[idx], w2[idx], a_col[idx]
        den = aa * tt + bb * (1.0 - tt)
        grad = (ww * (bb * (1.0 - tt) ** 2 - aa * tt**2) / den**2).sum(axis=1)
        curv = -2.0 * (ww * aa * bb / den**3).sum(axis=1)
        t_now = tt[:, 0]
        lo[idx] = np.where(grad > 0, t_now, lo[idx])
        hi[idx] = np.where(grad < 0, t_now, hi[idx])
        t_new = t_now - grad / curv
        outside = ~((t_new > lo[idx]) & (t_new < hi[idx]))
        t_new = np.where(outside, 0.5 * (lo[idx] + hi[idx]), t_new)
        done = (grad == 0) | (np.abs(t_new - t_now) <= 1e-15) | (hi[idx] - lo[idx] <= 1e-15)
        t[idx] = np.where(grad == 0, t_now, t_new)
        active[idx] = ~done
    tt = t[:, None]
    value = (w2 * tt * (1.0 - tt) / (a_col * tt + b * (1.0 - tt))).sum(axis=1)
    return value, t


def ellipsoid_separation(center1, covariance1, radius1, center2, covariance2, radius2):
    """Exact separating-ellipsoid criterion of two ellipsoids, batched.

    For ``E_k = {x : (x - c_k)^T Sigma_k^-1 (x - c_k) <= r_k^2}`` computes

        value = max_{t in (0, 1)} (c2 - c1)^T [A1 / (1 - t) + A2 / t]^-1 (c2 - c1),

    with ``A_k = r_k^2 Sigma_k``. The ellipsoids are disjoint iff
    ``value > 1``; they touch when it equals 1. A zero radius makes the
    ellipsoid a point, and ``value`` is then its squared Mahalanobis distance
    to the other ellipsoid's centre in units of that ellipsoid's radius
    (``inf`` for two distinct points).

    Parameters
    ----------
    center1, center2 : array-like of shape (..., d)
    covariance1, covariance2 : array-like of shape (..., d, d)
        SPD matrices.
    radius1, radius2 : array-like of shape (...)
        Non-negative Mahalanobis radii. All arguments broadcast together.

    Returns
    -------
    value : ndarray of shape (...)
        The maximum of ``F(t)``; disjoint iff ``value > 1``.
    t : ndarray of shape (...)
        The maximizer (0 or 1 for a zero radius).

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._geometry._ellipsoids import ellipsoid_separation
    >>> eye = np.eye(2)
    >>> value, t = ellipsoid_separation([0, 0], eye, 1.0, [3, 0], eye, 1.0)
    >>> float(np.round(value, 12)), float(np.round(t, 12))
    (2.25, 0.5)
    """
    c1, s1, r1 = _check_region(center1, covariance1, radius1, "1")
    c2, s2, r2 = _check_region(center2, covariance2, radius2, "2")
    d = c1.shape[-1]
    if c2.shape[-1] != d:
        raise ValueError(f"the two ellipsoids have dimensions {d} and {c2.shape[-1]}.")
    batch = np.broadcast_shapes(
        c1.shape[:-1], s1.shape[:-2], r1.shape, c2.shape[:-1], s2.shape[:-2], r2.shape
    )
    c1 = np.broadcast_to(c1, batch + (d,))
    c2 = np.broadcast_to(c2, batch + (d,))
    r1 = np.broadcast_to(r1, batch).reshape(-1)
    r2 = np.broadcast_to(r2, batch).reshape(-1)
    # whiten by Sigma1 (computed once when it is shared by the whole batch)
    mu, w = _whitened_spectrum(c1, s1, c2, s2)
    mu = np.broadcast_to(mu, batch + (d,)).reshape(-1, d)
    w2 = np.square(np.broadcast_to(w, batch + (d,)).reshape(-1, d))
    k = mu.shape[0]
    a = np.square(r1)
    b = np.square(r2)[:, None] * mu
    w_tot = w2.sum(axis=1)

    value = np.zeros(k)
    t = np.full(k, 0.5)
    both = (a > 0) & (r2 > 0) & (w_tot > 0)
    if np.any(both):
        value[both], t[both] = _maximize_separation(w2[both], a[both], b[both])
    with np.errstate(divide="ignore", invalid="ignore"):
        point1 = (a == 0) & (r2 > 0)  # point c1 against E2: sup at t -> 1
        value[point1] = (w2[point1] / b[point1]).sum(axis=1)
        t[point1] = 1.0
        point2 = (a > 0) & (r2 == 0)  # point c2 against E1: sup at t -> 0
        value[point2] = w_tot[point2] / a[point2]
        t[point2] = 0.0
    points = (a == 0) & (r2 == 0)
    value[points] = np.where(w_tot[points] > 0, np.inf, 0.0)
    return value.reshape(batch), t.reshape(batch)


def ellipsoids_disjoint(center1, covariance1, radius1, center2, covariance2, radius2):
    """Whether two (closed) ellipsoids are disjoint, exactly, batched.

    ``E_k = {x : (x - c_k)^T Sigma_k^-1 (x - c_k) <= r_k^2}``; see
    :func:`ellipsoid_separation` for the criterion. Touching ellipsoids share
    a point and are *not* disjoint.

    Parameters
    ----------
    center1, center2 : array-like of shape (..., d)
    covariance1, covariance2 : array-like of shape (..., d, d)
    radius1, radius2 : array-like of shape (...)

    Returns
    -------
    disjoint : ndarray of bool, shape (...)

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._geometry._ellipsoids import ellipsoids_disjoint
    >>> eye = np.eye(2)
    >>> ellipsoids_disjoint([0, 0], eye, 1.0, [[2.5, 0], [1.5, 0]], eye, 1.0)
    array([ True, False])
    """
    value, _ = ellipsoid_separation(center1, covariance1, radius1, center2, covariance2, radius2)
    return value > 1.0


def _solve_touching(w2, b):
    """Touching scale for whitened data: ``w2``, ``b`` of shape (k, d), ``b > 0``."""
    inside = (w2 / b).sum(axis=1) <= 1.0
    scale = np.zeros(w2.shape[0])
    out = ~inside
    if not np.any(out):
        return scale
    w2o, bo = w2[out], b[out]
    g2 = w2o * bo  # squared gradient of the trust-region form
    # lower bound of the root from each single term: |g_i| / (b_i + lam) >= 1
    lam = np.maximum(np.sqrt(g2) - bo, 0.0).max(axis=1)
    active = np.ones(lam.shape, dtype=bool)
    for _ in range(_MAX_ITER):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        q = bo[idx] + lam[idx][:, None]
        h = (g2[idx] / q**2).sum(axis=1)
        hp = (g2[idx] / q**3).sum(axis=1)
        phi = 1.0 / np.sqrt(h)
        dphi = hp / h**1.5
        step = np.maximum((1.0 - phi) / dphi, 0.0)
        lam_new = lam[idx] + step
        done = step <= 4 * np.finfo(np.float64).eps * np.maximum(lam_new, 1e-300)
        lam[idx] = lam_new
        active[idx] = ~done
    q = bo + lam[:, None]
    scale[out] = np.sqrt((w2o * (lam[:, None] / q) ** 2).sum(axis=1))
    return scale


def touching_scales(center, covariance, centers, covariances, radii):
    """Radius at which ``E(center, covariance, s)`` touches each stored ellipsoid.

    ``s*_j = min { ||y - center||_covariance : y in E(centers_j, covariances_j,
    radii_j) }``, the ``covariance``-Mahalanobis distance from ``center`` to
    the ellipsoid (0 when ``center`` lies in it). ``E(center, covariance, s)``
    is disjoint from ellipsoid ``j`` iff ``s < s*_j``.

    Parameters
    ----------
    center : array-like of shape (..., d)
    covariance : array-like of shape (..., d, d)
        SPD shape of the new ellipsoid.
    centers : array-like of shape (..., d)
    covariances : array-like of shape (..., d, d)
    radii : array-like of shape (...)
        Non-negative Mahalanobis radii of the stored ellipsoids.

    Returns
    -------
    scale : ndarray of shape (...)

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._geometry._ellipsoids import touching_scales
    >>> touching_scales([0, 0], np.eye(2), [[3, 0], [0, 0.5]], np.eye(2), 1.0)
    array([2., 0.])
    """
    c, s, _ = _check_region(center, covariance, 0.0, "")
    cs, ss, rs = _check_region(centers, covariances, radii, "s")
    d = c.shape[-1]
    if cs.shape[-1] != d:
        raise ValueError(f"the ellipsoids have dimensions {d} and {cs.shape[-1]}.")
    batch = np.broadcast_shapes(c.shape[:-1], s.shape[:-2], cs.shape[:-1], ss.shape[:-2], rs.shape)
    mu, w = _whitened_spectrum(c, s, cs, ss)
    mu = np.broadcast_to(mu, batch + (d,)).reshape(-1, d)
    w2 = np.square(np.broadcast_to(w, batch + (d,)).reshape(-1, d))
    r2 = np.square(np.broadcast_to(rs, batch).reshape(-1))
    scale = np.sqrt(w2.sum(axis=1))  # distance to the centre (zero-radius regions)
    pos = r2 > 0
    if np.any(pos):
        scale[pos] = _solve_touching(w2[pos], r2[pos, None] * mu[pos])
    return scale.reshape(batch)


def outer_radii(covariances, radii):
    """Radius of the smallest ball around the centre containing each ellipsoid.

    ``r * sqrt(lambda_max(Sigma))``.

    Parameters
    ----------
    covariances : array-like of shape (..., d, d)
    radii : array-like of shape (...)

    Returns
    -------
    outer : ndarray of shape (...)
    """
    covariances = _as_float(covariances, "covariances")
    lam_max = np.linalg.eigvalsh(covariances)[..., -1]
    return np.asarray(radii, dtype=np.float64) * np.sqrt(np.maximum(lam_max, 0.0))


def largest_disjoint_scale(
    center, covariance, centers, covariances, radii, *, max_scale=np.inf, outer=None
):
    """Largest radius keeping a new ellipsoid disjoint from every stored one.

    The new region is ``E(center, covariance, s) = {center + d : d^T
    covariance^-1 d <= s^2}``. It is disjoint from all stored ellipsoids iff
    ``s < min_j s*_j`` (:func:`touching_scales`); this returns that touching
    radius ``min(max_scale, min_j s*_j)``, so a caller must store a radius
    strictly below it (the pair touches at the returned value itself).

    Stored ellipsoids whose bounding ball is too far to matter,
    ``(|center - c_j| - outer_j) / sqrt(lambda_max(covariance)) >= max_scale``,
    are skipped without the exact computation.

    Parameters
    ----------
    center : array-like of shape (d,)
    covariance : array-like of shape (d, d)
    centers : array-like of shape (m, d)
    covariances : array-like of shape (m, d, d)
    radii : array-like of shape (m,)
    max_scale : float, default=inf
        Cap of the answer (e.g. the radius the new region would have anyway).
    outer : array-like of shape (m,), default=None
        Precomputed :func:`outer_radii` of the stored ellipsoids.

    Returns
    -------
    scale : float
        ``min(max_scale, min_j s*_j)``; 0 when ``center`` lies in a stored
        ellipsoid.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._geometry._ellipsoids import largest_disjoint_scale
    >>> centers = np.array([[3.0, 0.0], [0.0, 5.0]])
    >>> covs = np.stack([np.eye(2), np.eye(2)])
    >>> float(largest_disjoint_scale([0, 0], 4 * np.eye(2), centers, covs, [1.0, 1.0]))
    1.0
    """
    center = _as_float(center, "center")
    covariance = _as_float(covariance, "covariance")
    centers = _as_float(centers, "centers")
    covariances = _as_float(covariances, "covariances")
    radii = _as_float(radii, "radii")
    if center.ndim != 1 or covariance.shape != (center.size, center.size):
        raise ValueError("center must have shape (d,) and covariance shape (d, d).")
    m = centers.shape[0]
    if centers.shape != (m, center.size) or covariances.shape != (m, center.size, center.size):
        raise ValueError("centers, covariances must have shapes (m, d), (m, d, d).")
    if radii.shape != (m,):
        raise ValueError(f"radii must have shape ({m},), got {radii.shape}.")
    if m == 0:
        return float(max_scale)
    outer = outer_radii(covariances, radii) if outer is None else np.asarray(outer, float)
    lam_max = np.linalg.eigvalsh(covariance)[-1]
    dist = np.sqrt(np.square(centers - center).sum(axis=1))
    candidates = _prefilter_scale(dist, outer, lam_max, max_scale)
    if candidates.size == 0:
        return float(max_scale)
    scales = touching_scales(
        center, covariance, centers[candidates], covariances[candidates], radii[candidates]
    )
    return float(min(max_scale, scales.min()))


def _prefilter_scale(dist, outer, lam_max, max_scale):
    """Indices whose touching scale may be below ``max_scale``.

    ``s*_j >= (|x - c_j| - outer_j) / sqrt(lambda_max)``: the stored ellipsoid
    lies outside the ball of that radius around ``x``, which contains
    ``E(x, Sigma, s)`` only for ``s <= ...``.
    """
    lower = (dist - outer) / np.sqrt(lam_max)
    lower = lower - _PREFILTER_SLACK * (dist + outer) / np.sqrt(lam_max)
    return np.flatnonzero(lower < max_scale)


def point_in_ellipsoids(points, centers, covariances, radii, *, chunk_size=65536):
    """Whether each point lies in each ellipsoid (Mahalanobis test), batched.

    ``(p - c_j)^T Sigma_j^-1 (p - c_j) <= r_j^2``; pairs outside the bounding
    ball ``|p - c_j| <= r_j sqrt(lambda_max(Sigma_j))`` are ruled out without
    the Mahalanobis computation.

    Parameters
    ----------
    points : array-like of shape (n, d)
    centers : array-like of shape (m, d)
    covariances : array-like of shape (m, d, d)
    radii : array-like of shape (m,)
    chunk_size : int, default=65536
        Largest number of point-ellipsoid distances held at once.

    Returns
    -------
    inside : ndarray of bool, shape (n, m)

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._geometry._ellipsoids import point_in_ellipsoids
    >>> covs = np.stack([np.diag([4.0, 1.0]), np.eye(2)])
    >>> point_in_ellipsoids([[1.9, 0.0], [0.0, 1.5]], [[0, 0], [0, 1]], covs, [1.0, 1.0])
    array([[ True, False],
           [False,  True]])
    """
    points = _as_float(points, "points")
    centers = _as_float(centers, "centers")
    covariances = _as_float(covariances, "covariances")
    radii = _as_float(radii, "radii")
    if points.ndim != 2 or centers.ndim != 2 or points.shape[1] != centers.shape[1]:
        raise ValueError("points and centers must have shapes (n, d) and (m, d).")
    w, v = np.linalg.eigh(covariances)
    if np.any(w <= 0):
        raise ValueError("covariance matrices must be symmetric positive definite.")
    precisions = spd_power(None, -1, eig=(w, v))
    outer2 = np.square(radii) * w[:, -1]
    return _points_inside(points, centers, precisions, np.square(radii), outer2, chunk_size)


def _points_inside(points, centers, precisions, radii2, outer2, chunk_size=65536):
    n, m = points.shape[0], centers.shape[0]
    inside = np.zeros((n, m), dtype=bool)
    if n == 0 or m == 0:
        return inside
    step = max(1, chunk_size // max(m, 1))
    for start in range(0, n, step):
        block = points[start : start + step]
        diff = block[:, None, :] - centers[None, :, :]
        sq = np.einsum("nmd,nmd->nm", diff, diff)
        rows, cols = np.nonzero(sq <= outer2[None, :] * (1.0 + _PREFILTER_SLACK))
        if rows.size == 0:
            continue
        dd = diff[rows, cols]
        maha = np.einsum("kd,kde,ke->k", dd, precisions[cols], dd)
        hit = maha <= radii2[cols]
        inside[start + rows[hit], cols[hit]] = True
    return inside
