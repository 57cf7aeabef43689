"""The low-rank form: a diagonal covariance shrunk along a few directions.

``Sigma = (D^-1 + V V^T)^-1`` per row, with ``D`` a positive diagonal (``d``
variances) and ``V`` a ``d x k`` matrix: the *precision* is diagonal plus a
positive semi-definite rank-``k`` term, so ``Sigma`` is SPD by construction,
``Sigma <= D`` (the noise is at most ``D`` in every direction) and it is
smaller only along the ``k`` directions spanned by ``D V``. This is the shape
the search wants near a decision boundary in high dimension: large noise
everywhere except across the boundary (the search's stage,
``smoothcert._search._stages.LowRankStage``, moves it). Storage and every
operation the search and the certificates need cost ``O(d k)`` per row (``O(d k^2)`` for the
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
"""

import numpy as np

from .._linalg import psd_sqrt, symmetrize
from ._base import NoiseFactor, RowCovariances

__all__ = ["LowRankCovariances", "LowRankFactor", "lowrank_svd"]

#: Bisection steps of the extreme eigenvalues (on a log scale: relative error 2^-52).
_BISECTION_STEPS = 64


def _split(values):
    return values[..., 0], values[..., 1:]


def lowrank_svd(D, V):
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


class LowRankCovariances(RowCovariances):
    """``(D^-1 + V V^T)^-1`` per row: ``values`` of shape ``(n, d, k + 1)``.

    ``values[:, :, 0]`` holds the variances ``D`` (positive) and
    ``values[:, :, 1:]`` the ``d x k`` matrix ``V`` (any real numbers).
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

    def svd(self, rows=slice(None)):
        """``P`` (r, d, k) and ``s`` (r, k) of the thin SVD ``D^(1/2) V = P diag(s) R^T`` (cached).

        ``P`` are the directions along which the noise is shrunk below ``D``
        (whitened by ``D``), ``s`` how much: ``Sigma = D^(1/2) (I + U U^T)^-1 D^(1/2)``.
        """
        cache = getattr(self, "_svd_cache", None)
        if cache is None:
            D, V = self._parts()
            cache = lowrank_svd(D, V)
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
        P, s = self.svd()
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
        _, s = self.svd()
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
        P, s = self.svd(rows)
        return LowRankFactor(np.sqrt(D), P, 1.0 / np.sqrt(1.0 + s**2))

    def whiten(self, rows, delta):
        # L^-1 delta = M^(-1/2) D^(-1/2) delta (the same Mahalanobis norms as Sigma^(-1/2))
        D, _ = self._parts(rows)
        P, s = self.svd(rows)
        y = delta / np.sqrt(D)[:, None, :]
        coef = (y @ P) * (np.sqrt(1.0 + s**2) - 1.0)[:, None, :]
        return y + coef @ np.swapaxes(P, 1, 2)

    def projected_factor(self, rows, projection):
        a = np.asarray(projection, dtype=np.float64)
        D, _ = self._parts(rows)
        P, s = self.svd(rows)
        B = a[None] * np.sqrt(D)[:, None, :]  # A D^(1/2), (r, k_out, d)
        BP = B @ P
        shrink = s**2 / (1.0 + s**2)
        moments = B @ np.swapaxes(B, 1, 2) - (BP * shrink[:, None, :]) @ np.swapaxes(BP, 1, 2)
        return NoiseFactor(psd_sqrt(moments))

    # ------------------------------------------------- whitened coordinates
    def inverse_factor_transpose(self, vectors):
        """``L^-T v`` for whitened vectors ``v`` (n, d): a whitened gradient -> x-space."""
        D, _ = self._parts()
        P, s = self.svd()
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
