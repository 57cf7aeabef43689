"""The full covariance form."""

import numpy as np

from .._linalg import check_spd, psd_sqrt, spd_power, spectral, symmetrize
from ._base import NoiseFactor, RowCovariances

__all__ = ["FullCovariances"]


class FullCovariances(RowCovariances):
    """SPD matrices ``(n, d, d)`` per row, with their eigendecomposition."""

    kind = "full"
    values_ndim = 3

    def __init__(self, values, n_features):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 3 and values.shape[1] == n_features != values.shape[2]:
            raise ValueError(f"covariance matrices must be square, got {values.shape[1:]}.")
        super().__init__(values, n_features)

    def _validated(self, values):
        symmetric, eigvals, eigvecs = check_spd(values)
        self._eig = (eigvals, eigvecs)
        return symmetric

    def take(self, rows):
        return self._wrap(
            self._values[rows], self.n_features, _eig=(self._eig[0][rows], self._eig[1][rows])
        )

    @classmethod
    def _concatenate(cls, parts):
        return cls._wrap(
            np.concatenate([p._values for p in parts]),
            parts[0].n_features,
            _eig=(
                np.concatenate([p._eig[0] for p in parts]),
                np.concatenate([p._eig[1] for p in parts]),
            ),
        )

    def as_full(self):
        return self

    def matrices(self):
        return self._values.copy()

    @property
    def eigenvectors(self):
        """Eigenvectors of each row, ``(n, d, d)`` (columns, ascending eigenvalues)."""
        return self._eig[1]

    def eigenvalues(self):
        return self._eig[0].copy()

    def min_eigenvalue(self):
        return self._eig[0][:, 0].copy()

    def max_eigenvalue(self):
        return self._eig[0][:, -1].copy()

    def logdet(self):
        return np.log(self._eig[0]).sum(axis=1)

    def precision(self):
        return spd_power(None, -1, eig=self._eig)

    def sqrt_matrices(self):
        w, v = self._eig
        return spectral(v, np.sqrt(w))

    def factor(self, rows):
        w, v = self._eig[0][rows], self._eig[1][rows]
        return NoiseFactor(spectral(v, np.sqrt(w)))

    def whiten(self, rows, delta):
        w, v = self._eig[0][rows], self._eig[1][rows]
        return delta @ spd_power(None, -0.5, eig=(w, v))  # symmetric

    def projected_factor(self, rows, projection):
        a = np.asarray(projection, dtype=np.float64)
        return NoiseFactor(psd_sqrt(a @ self._values[rows] @ a.T))

    def scaled(self, scales):
        full = self._values * scales[None, :, None] * scales[None, None, :]
        return RowCovariances.from_matrices(symmetrize(full))

    def congruence(self, B):
        full = np.einsum("ij,njl,kl->nik", B, self._values, B)
        return RowCovariances.from_matrices(symmetrize(full))

    def rescaled(self, factors):
        factors = np.asarray(factors, dtype=np.float64)
        w, v = self._eig
        return self._wrap(self._values * factors[:, None, None], self.n_features, _eig=(w * factors[:, None], v))
