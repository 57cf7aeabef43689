"""The low-rank form: a diagonal covariance shrunk along a few directions.

``Sigma = (D^-1 + V V^T)^-1`` per row, with ``D`` a positive diagonal (``d``
variances) and ``V`` a ``d x k`` matrix: the *precision* is diagonal plus a
positive semi-definite rank-``k`` term, so ``Sigma`` is SPD by construction,
``Sigma <= D`` (the noise is at most ``D`` in every direction) and it is
smaller only along the ``k`` directions spanned by ``D V``. This is the shape
the search wants near a decision boundary in high dimension: large noise
everywhere except across the boundary. Storage and every operation the search
and the certificates need cost ``O(d k)`` per row (``O(d k^2)`` for the
factor), never ``O(d^2)``, so the form scales to ``d = 784`` and beyond.

With ``U = D^(1/2) V = P diag(s) R^T`` (thin SVD),
``Sigma = D^(1/2) M D^(1/2)`` with ``M = (I + U U^T)^-1 = I - P diag(s^2 / (1 + s^2)) P^T``,
and the noise factor is ``L = D^(1/2) M^(1/2)``, ``M^(1/2) = I + P diag(a - 1) P^T``,
``a = (1 + s^2)^(-1/2)``: ``L L^T = Sigma``. ``L`` is not symmetric; the
search works in its whitened coordinates ``z = L^-1 e`` (a rotation of the
symmetric ones: the Fisher-Rao geometry does not depend on the factor), so
the form also gives ``L^T``, ``L^-T`` (:meth:`factor_transpose`,
:meth:`inverse_factor_transpose`) and :meth:`LowRankFactor.apply_transpose`.

Spectrum: ``log det Sigma = sum log D - sum log(1 + s^2)`` exactly; the
extreme eigenvalues are found by bisection on the inertia of
``D^-1 + V V^T - mu I`` (Haynsworth: the number of its eigenvalues below
``mu`` is ``#{D_i^-1 < mu} + #{eig(I + V^T (D^-1 - mu)^-1 V) > 0} - k``),
``O(d k^2)`` per bisection step; the full spectrum (:meth:`eigenvalues`) is
dense, ``O(d^3)``.

Bounds (for the search): ``Sigma <= D``, so clipping ``D`` at the cap bounds
every eigenvalue; ``lambda_min(Sigma) >= floor`` holds exactly when
``lambda_max(V^T diag(1/floor - 1/D)^-1 V) <= 1`` (a ``k x k`` eigenvalue),
which fixes how far ``V`` may go; and ``log det Sigma <= sum log D`` bounds the
volume (conservatively: the shrink directions are not credited).
"""

import numpy as np

from .._fisher_rao import cap_log_mean
from .._linalg import psd_sqrt, symmetrize
from ._base import NoiseFactor, RowCovariances

__all__ = ["LowRankCovariances", "LowRankFactor", "LowRankTangent", "LOWRANK_RANK"]

#: Number of directions ``k`` along which the search's low-rank form shrinks the noise.
LOWRANK_RANK = 2
#: Bisection steps of the extreme eigenvalues (on a log scale: relative error 2^-52).
_BISECTION_STEPS = 64


def _split(values):
    return values[..., 0], values[..., 1:]


def _thin_svd(D, V):
    """``P`` (r, d, k) orthonormal and ``s`` (r, k) with ``D^(1/2) V = P diag(s) R^T``."""
    U = np.sqrt(D)[:, :, None] * V
    # the SVD of the small Gram matrix: U^T U = R diag(s^2) R^T, P = U R / s
    gram = np.swapaxes(U, 1, 2) @ U
    s2, R = np.linalg.eigh(symmetrize(gram))
    s2 = np.clip(s2, 0.0, None)
    s = np.sqrt(s2)
    with np.errstate(divide="ignore", invalid="ignore"):
        P = (U @ R) / np.where(s > 0, s, 1.0)[:, None, :]
    # a direction with s = 0 carries no weight (its coefficient a - 1 is 0
    # everywhere): its column is set to zero
    P = np.where((s > 0)[:, None, :], P, 0.0)
    return P, s


class LowRankFactor(NoiseFactor):
    """``L = D^(1/2) (I + P diag(a - 1) P^T)`` for a batch of low-rank rows.

    Parameters
    ----------
    sqrt_d : ndarray of shape (r, d)
    P : ndarray of shape (r, d, k)
        Orthonormal columns.
    a : ndarray of shape (r, k)
        ``(1 + s^2)^(-1/2)`` in (0, 1].
    """

    def __init__(self, sqrt_d, P, a):
        self.sqrt_d, self.P, self.a = sqrt_d, P, a

    def apply(self, z, out=None):
        # L z = D^(1/2) (z + P ((a - 1) * P^T z)), z of shape (r, m, d)
        coef = (z @ self.P) * (self.a - 1.0)[:, None, :]
        moved = z + coef @ np.swapaxes(self.P, 1, 2)
        return np.multiply(moved, self.sqrt_d[:, None, :], out=out)

    def apply_transpose(self, x, out=None):
        # L^T x = M^(1/2) D^(1/2) x
        y = x * self.sqrt_d[:, None, :]
        coef = (y @ self.P) * (self.a - 1.0)[:, None, :]
        result = y + coef @ np.swapaxes(self.P, 1, 2)
        if out is not None:
            out[...] = result
            return out
        return result

    def astype(self, dtype):
        return LowRankFactor(
            self.sqrt_d.astype(dtype, copy=False), self.P.astype(dtype, copy=False), self.a.astype(dtype, copy=False)
        )

    def take(self, rows):
        return LowRankFactor(self.sqrt_d[rows], self.P[rows], self.a[rows])


class LowRankTangent:
    """A whitened tangent of the low-rank form: ``diag(g) + B C B^T``.

    ``g`` (n, d) moves the log-variances ``log D``; ``C`` (n, m, m) is a
    symmetric block on the orthonormal basis ``B`` (n, d, m) of the
    directions the search follows (the form's current directions and the
    estimated boundary normal). Tangents of one step share their basis, so
    they add and scale per row.
    """

    def __init__(self, diag, basis, block):
        self.diag, self.basis, self.block = diag, basis, block

    def scaled(self, factor):
        factor = np.asarray(factor, dtype=np.float64)
        return LowRankTangent(factor[:, None] * self.diag, self.basis, factor[:, None, None] * self.block)

    def __add__(self, other):
        if other.basis is not self.basis:
            raise ValueError("low-rank tangents of different bases cannot be added")
        return LowRankTangent(self.diag + other.diag, self.basis, self.block + other.block)

    def norm(self):
        """Fisher-Rao norm ``sqrt(tr(T^2) / 2)`` of each row, the two parts taken as orthogonal."""
        return np.sqrt(0.5 * (np.square(self.diag).sum(axis=1) + np.square(self.block).sum(axis=(1, 2))))


class LowRankCovariances(RowCovariances):
    """``(D^-1 + V V^T)^-1`` per row: ``values`` of shape ``(n, d, k + 1)``.

    ``values[:, :, 0]`` holds the variances ``D`` (positive) and
    ``values[:, :, 1:]`` the ``d x k`` matrix ``V`` (any real numbers).
    Search parameters: the same array with ``log D`` in place of ``D``.
    """

    kind = "lowrank"
    values_ndim = 3

    def _validated(self, values):
        if values.shape[2] < 2:
            raise ValueError(f"a lowrank covariance needs values of shape (n, d, k + 1), k >= 1, got {values.shape}.")
        if np.any(values[:, :, 0] <= 0):
            raise ValueError("variances must be strictly positive.")
        return values

    # ------------------------------------------------------------ pieces
    @property
    def rank(self):
        return self._values.shape[2] - 1

    def _parts(self, rows=slice(None)):
        D, V = _split(self._values[rows])
        return D, V

    def _svd(self, rows=slice(None)):
        cache = getattr(self, "_svd_cache", None)
        if cache is None:
            D, V = self._parts()
            cache = _thin_svd(D, V)
            self._svd_cache = cache
        P, s = cache
        return P[rows], s[rows]

    def take(self, rows):
        return self._wrap(self._values[rows], self.n_features)

    # ---------------------------------------------------------- quantities
    def _diagonal(self):
        return np.einsum("nii->ni", self.matrices())

    def matrices(self):
        D, _ = self._parts()
        P, s = self._svd()
        shrink = s**2 / (1.0 + s**2)
        M = np.eye(self.n_features)[None] - (P * shrink[:, None, :]) @ np.swapaxes(P, 1, 2)
        root = np.sqrt(D)
        return symmetrize(root[:, :, None] * M * root[:, None, :])

    def precision(self):
        D, V = self._parts()
        out = V @ np.swapaxes(V, 1, 2)
        idx = np.arange(self.n_features)
        out[:, idx, idx] += 1.0 / D
        return out

    def eigenvalues(self):
        """All eigenvalues, ascending (dense: ``O(d^3)`` per row)."""
        return np.linalg.eigvalsh(self.matrices())

    def logdet(self):
        D, _ = self._parts()
        _, s = self._svd()
        return np.log(D).sum(axis=1) - np.log1p(s**2).sum(axis=1)

    def _count_below(self, mu):
        """Eigenvalues of ``D^-1 + V V^T`` below ``mu`` (n,), by Haynsworth inertia."""
        D, V = self._parts()
        k = V.shape[2]
        e = 1.0 / D - mu[:, None]
        # an eigenvalue of D^-1 exactly at mu is not below it: a hair above
        e = np.where(e == 0, 1e-12 / D, e)
        inv = 1.0 / e
        small = np.eye(k)[None] + np.swapaxes(V, 1, 2) @ (inv[:, :, None] * V)
        positive = (np.linalg.eigvalsh(symmetrize(small)) > 0).sum(axis=1)
        return (e < 0).sum(axis=1) + positive - k

    def _precision_extreme(self, largest):
        """Largest (or smallest) eigenvalue of the precision, by bisection on a log scale."""
        D, V = self._parts()
        inv_d = 1.0 / D
        spread = np.square(np.linalg.norm(V, axis=(1, 2), ord=None)) if V.size else np.zeros(len(D))
        # ||V||_2^2 <= ||V||_F^2: a bracket of both extremes
        if largest:
            lo, hi = inv_d.max(axis=1), inv_d.max(axis=1) + spread
            target = self.n_features
        else:
            lo, hi = inv_d.min(axis=1), inv_d.min(axis=1) + spread
            target = 0
        hi = np.maximum(hi, lo * (1.0 + 1e-15))
        log_lo, log_hi = np.log(lo), np.log(hi)
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (log_lo + log_hi)
            count = self._count_below(np.exp(mid))
            if largest:
                # all d eigenvalues below mid: the largest is below
                below = count >= target
                log_hi = np.where(below, mid, log_hi)
                log_lo = np.where(below, log_lo, mid)
            else:
                none = count <= target
                log_lo = np.where(none, mid, log_lo)
                log_hi = np.where(none, log_hi, mid)
        return np.exp(0.5 * (log_lo + log_hi))

    def min_eigenvalue(self):
        cache = getattr(self, "_min_cache", None)
        if cache is None:
            cache = self._min_cache = 1.0 / self._precision_extreme(largest=True)
        return cache.copy()

    def max_eigenvalue(self):
        return 1.0 / self._precision_extreme(largest=False)

    def sqrt_matrices(self):
        return self.as_full().sqrt_matrices()

    # ------------------------------------------------------------ sampling
    def factor(self, rows):
        D, _ = self._parts(rows)
        P, s = self._svd(rows)
        return LowRankFactor(np.sqrt(D), P, 1.0 / np.sqrt(1.0 + s**2))

    def whiten(self, rows, delta):
        # L^-1 delta = M^(-1/2) D^(-1/2) delta (the same Mahalanobis norms as Sigma^(-1/2))
        D, _ = self._parts(rows)
        P, s = self._svd(rows)
        y = delta / np.sqrt(D)[:, None, :]
        coef = (y @ P) * (np.sqrt(1.0 + s**2) - 1.0)[:, None, :]
        return y + coef @ np.swapaxes(P, 1, 2)

    def projected_factor(self, rows, projection):
        a = np.asarray(projection, dtype=np.float64)
        D, _ = self._parts(rows)
        P, s = self._svd(rows)
        B = a[None] * np.sqrt(D)[:, None, :]  # A D^(1/2), (r, k_out, d)
        BP = B @ P
        shrink = s**2 / (1.0 + s**2)
        moments = B @ np.swapaxes(B, 1, 2) - (BP * shrink[:, None, :]) @ np.swapaxes(BP, 1, 2)
        return NoiseFactor(psd_sqrt(moments))

    # ---------------------------------------------------------- the search
    def factor_transpose(self, vectors):
        """``L^T x`` for vectors ``x`` of shape (n, d) (x-space -> whitened)."""
        return self.factor(slice(None)).apply_transpose(vectors[:, None, :])[:, 0]

    def inverse_factor_transpose(self, vectors):
        """``L^-T v`` for whitened vectors ``v`` (n, d): a whitened gradient -> x-space."""
        D, _ = self._parts()
        P, s = self._svd()
        coef = np.einsum("nd,ndk->nk", vectors, P) * (np.sqrt(1.0 + s**2) - 1.0)
        return (vectors + np.einsum("nk,ndk->nd", coef, P)) / np.sqrt(D)

    def rescaled(self, factors):
        """``factors[i] * Sigma_i``: ``D`` scaled by the factor, ``V`` by its inverse root."""
        factors = np.asarray(factors, dtype=np.float64)
        values = self._values.copy()
        values[:, :, 0] *= factors[:, None]
        values[:, :, 1:] /= np.sqrt(factors)[:, None, None]
        return self._wrap(values, self.n_features)

    def scaled(self, scales):
        # S Sigma S = ((S D S)^-1 + (S^-1 V)(S^-1 V)^T)^-1
        values = self._values.copy()
        values[:, :, 0] *= scales[None, :] ** 2
        values[:, :, 1:] /= scales[None, :, None]
        return LowRankCovariances(values, self.n_features)

    def congruence(self, B):
        full = B[None] @ self.matrices() @ B.T[None]
        return RowCovariances.from_matrices(symmetrize(full))

    @classmethod
    def from_parameters(cls, theta, n_features):
        values = theta.copy()
        values[:, :, 0] = np.exp(theta[:, :, 0])
        return cls._wrap(values, n_features)

    @classmethod
    def parameters_from(cls, previous, theta, n_features, rank=LOWRANK_RANK):
        if previous is None:
            raise ValueError("the lowrank form starts from a previous stage")
        if previous.kind == cls.kind:
            return theta
        if previous.kind == "isotropic":
            log_d = np.repeat(theta[:, None], n_features, axis=1)
        elif previous.kind == "diagonal":
            log_d = theta
        else:
            raise ValueError(f"the lowrank form cannot start from the {previous.kind} form")
        out = np.zeros((len(theta), n_features, rank + 1))
        out[:, :, 0] = log_d
        return out

    @classmethod
    def tangent_shape(cls, n_features):
        return (n_features, LOWRANK_RANK + 2)

    @classmethod
    def norm(cls, tangent, n_features):
        return tangent.norm()

    @classmethod
    def step(cls, theta, direction, low, high, volume=None):
        """Move ``log D`` by ``g`` and the low-rank part by ``M^(1/2) exp(B C B^T) M^(1/2)``.

        The block step acts on the whitened frame of ``L``: with ``M`` the
        middle factor of ``Sigma = D^(1/2) M D^(1/2)``, the step maps ``M`` to
        ``M^(1/2) expm(B C B^T) M^(1/2)``, whose inverse is the identity plus a
        symmetric matrix on ``span(B)``; its positive part (shrinking the noise)
        is kept, at most ``k`` directions, as the new ``U = D^(1/2) V``
        (directions that would grow the noise beyond ``D`` are left to ``D``).
        Then ``log D`` moves by ``g``, ``D`` is clipped into ``[low, high]``
        (log scale) with the mean of ``log D`` at most ``volume``, and ``V``
        shrunk until every eigenvalue is at least ``exp(low)`` (see the module
        docstring).
        """
        n, d, k1 = theta.shape
        k = k1 - 1
        log_d, V = theta[:, :, 0], theta[:, :, 1:]
        D = np.exp(log_d)
        P, s = _thin_svd(D, V)
        a = 1.0 / np.sqrt(1.0 + s**2)
        B, C = direction.basis, direction.block
        m = B.shape[2]
        # M^(-1/2) B expressed on the joint basis [P, B]: the step's new
        # M'^-1 = M^(-1/2) expm(-B C B^T) M^(-1/2) = M^-1 + M^(-1/2) B (expm(-C) - I) B^T M^(-1/2)
        w, R = np.linalg.eigh(symmetrize(-C))
        # no useful step changes a variance by more than the whole allowed
        # range: cap the block's spectrum there (expm cannot overflow)
        limit = (np.asarray(high) - np.asarray(low) + 1.0)[:, None]
        w = np.clip(w, -limit, limit)
        E = (R * np.expm1(w)[:, None, :]) @ np.swapaxes(R, 1, 2)  # expm(-C) - I, (n, m, m)
        PtB = np.swapaxes(P, 1, 2) @ B  # (n, k, m)
        inv_a = 1.0 / a
        Minvh_B = B + P @ ((inv_a - 1.0)[:, :, None] * PtB)  # M^(-1/2) B, (n, d, m)
        # M^-1 - I = U U^T = P diag(s^2) P^T; the full symmetric update on span[P, M^(-1/2) B]
        basis = np.concatenate([P, Minvh_B], axis=2)
        q, rr = np.linalg.qr(basis)
        top = np.zeros((n, k + m, k + m))
        top[:, :k, :k] = s[:, :, None] ** 2 * np.eye(k)[None]
        top[:, k:, k:] = E
        small = symmetrize(rr @ top @ np.swapaxes(rr, 1, 2))
        ev, evec = np.linalg.eigh(small)
        # keep the k largest positive parts (directions where the precision grows)
        ev = np.clip(ev, 0.0, None)[:, ::-1][:, :k]
        evec = evec[:, :, ::-1][:, :, :k]
        U_new = (q @ evec) * np.sqrt(ev)[:, None, :]
        # the mean of log D is capped at ``volume``: log det Sigma = sum log D
        # + log det M <= sum log D, so the geometric mean of the eigenvalues
        # stays within the cap (the shrink directions are not credited)
        log_d_new = cap_log_mean(log_d + direction.diag, low, high, volume)
        D_new = np.exp(log_d_new)
        # U = D^(1/2) V is kept while D moves (M fixed: a common factor of D
        # scales Sigma exactly)
        V_new = U_new / np.sqrt(D_new)[:, :, None]
        V_new = cls._respect_floor(D_new, V_new, np.exp(low))
        out = np.empty_like(theta)
        out[:, :, 0] = log_d_new
        out[:, :, 1:] = V_new
        return out

    def smallest_axis(self):
        """Whitened unit direction ``y = L^T x / |L^T x|`` of the smallest eigenvector ``x``, (n, d).

        ``x`` is the top eigenvector of the precision ``D^-1 + V V^T``: with
        ``mu`` its eigenvalue above ``max D^-1``, ``x = (mu - D^-1)^-1 V c``
        for the eigenvector ``c`` of ``V^T (mu - D^-1)^-1 V`` at eigenvalue 1;
        else (no direction shrunk below the diagonal's smallest) the axis of
        the smallest ``D_i``.
        """
        D, V = self._parts()
        inv_d = 1.0 / D
        mu = 1.0 / self.min_eigenvalue()
        top = inv_d.max(axis=1)
        spiked = mu > top * (1.0 + 1e-9)
        gap = np.where(spiked[:, None], mu[:, None] - inv_d, 1.0)
        K = np.swapaxes(V, 1, 2) @ (V / gap[:, :, None])
        w, c = np.linalg.eigh(symmetrize(K))
        c = c[:, :, -1]
        x = np.einsum("ndk,nk->nd", V, c) / gap
        axis = np.zeros_like(D)
        axis[np.arange(len(D)), np.argmin(D, axis=1)] = 1.0
        x = np.where(spiked[:, None], x, axis)
        y = self.factor_transpose(x)
        return y / np.linalg.norm(y, axis=1, keepdims=True)

    def shape_tangent(self, objective, kappa, basis, beta=10.0):
        """Whitened gradient of the shape term on the step's ``basis`` (a :class:`LowRankTangent`).

        The volume term ``det^(1/(2d))`` has the exact gradient
        ``det^(1/(2d)) / d * I``: a common move of ``log D``. The ball term
        ``kappa sqrt(lambda_min)`` follows a smooth minimum of the noise scales
        (as the other forms do, sharpness ``beta``) over a pseudo-spectrum: the
        variances ``D_i``, whose weights move ``log D_i``, and, when a
        direction is shrunk below them, the smallest eigenvalue, whose weight
        goes on ``y y^T`` (``y`` from :meth:`smallest_axis`; its part in
        ``span(basis)`` on the block, the rest on ``log D``).
        """
        d = self.n_features
        D, _ = self._parts()
        lam = self.min_eigenvalue()
        spiked = lam < D.min(axis=1) * (1.0 - 1e-9)
        spectrum = np.concatenate([D, np.where(spiked, lam, np.inf)[:, None]], axis=1)
        log_s = 0.5 * np.log(spectrum)
        logits = -beta * log_s
        top = logits.max(axis=1, keepdims=True)
        weights = np.exp(logits - top)
        total = weights.sum(axis=1, keepdims=True)
        m = np.exp(-(top[:, 0] + np.log(total[:, 0])) / beta)
        omega = weights / total
        coef = (1.0 if objective == "ball" else kappa) * m
        diag = coef[:, None] * omega[:, :d]
        if objective != "ball":
            diag += (np.exp(self.logdet() / (2.0 * d)) / d)[:, None]
        y = self.smallest_axis()
        By = np.einsum("ndm,nd->nm", basis, y)
        rest = y - np.einsum("ndm,nm->nd", basis, By)
        w_spike = coef * omega[:, d]
        diag += w_spike[:, None] * np.square(rest)
        block = w_spike[:, None, None] * By[:, :, None] * By[:, None, :]
        return LowRankTangent(diag, basis, block)

    @staticmethod
    def _respect_floor(D, V, floor):
        """Shrink ``V`` (by one factor per row) so that every eigenvalue of ``Sigma`` is at least ``floor``.

        ``lambda_min(Sigma) >= f`` is ``D^-1 + V V^T <= I / f``, that is
        ``V V^T <= E = diag(1/f - 1/D_i)`` (``D >= f``): with ``gamma V`` in
        place of ``V``, ``gamma^2 lambda_max(V^T E^-1 V) <= 1``, a ``k x k``
        eigenvalue. Components of ``V`` on axes already at the floor
        (``E_i = 0``) are removed: no direction through them can shrink.
        """
        floor = np.asarray(floor, dtype=np.float64)[:, None]
        room = 1.0 / floor - 1.0 / D
        at_floor = room <= 1e-12 / floor
        V = np.where(at_floor[:, :, None], 0.0, V)
        inv = np.where(at_floor, 0.0, 1.0 / np.where(at_floor, 1.0, room))
        K = np.swapaxes(V, 1, 2) @ (inv[:, :, None] * V)
        top = np.linalg.eigvalsh(symmetrize(K))[:, -1]
        # a hair inside, so that rounding cannot push an eigenvalue below the floor
        shrink = np.where(top > 1.0, (1.0 - 1e-9) / np.sqrt(np.where(top > 1.0, top, 1.0)), 1.0)
        return V * shrink[:, None, None]
