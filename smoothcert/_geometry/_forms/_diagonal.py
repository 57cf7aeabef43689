"""The diagonal covariance form."""

import numpy as np

from .._linalg import psd_sqrt, symmetrize
from ._base import NoiseFactor, RowCovariances

__all__ = ["DiagonalCovariances"]


class DiagonalCovariances(RowCovariances):
    """``diag(s_i^2)`` per row: ``values`` are the variances ``(n, d)``."""

    kind = "diagonal"
    values_ndim = 2

    def _diagonal(self):
        return self._values

    def eigenvalues(self):
        return self._values.copy()

    def min_eigenvalue(self):
        return self._values.min(axis=1)

    def max_eigenvalue(self):
        return self._values.max(axis=1)

    def whiten(self, rows, delta):
        return delta / np.sqrt(self._values[rows])[:, None, :]

    def projected_factor(self, rows, projection):
        a = np.asarray(projection, dtype=np.float64)
        moments = (a[None] * self._values[rows][:, None, :]) @ a.T
        return NoiseFactor(psd_sqrt(moments))

    def scaled(self, scales):
        return DiagonalCovariances(self._values * scales**2, self.n_features)

    def congruence(self, B):
        full = np.einsum("ij,nj,kj->nik", B, self._values, B)
        return RowCovariances.from_matrices(symmetrize(full))
