"""The isotropic covariance form."""

import numpy as np

from .._linalg import psd_sqrt, symmetrize
from ._base import FORMS, NoiseFactor, RowCovariances

__all__ = ["IsotropicCovariances"]


class IsotropicCovariances(RowCovariances):
    """``sigma_i^2 I`` per row: ``values`` are the variances ``(n,)``."""

    kind = "isotropic"
    values_ndim = 1

    def _diagonal(self):
        return self._values[:, None]

    def eigenvalues(self):
        return np.repeat(self._values[:, None], self.n_features, axis=1)

    def min_eigenvalue(self):
        return self._values.copy()

    def max_eigenvalue(self):
        return self._values.copy()

    def logdet(self):
        return self.n_features * np.log(self._values)

    def whiten(self, rows, delta):
        return delta / np.sqrt(self._values[rows])[:, None, None]

    def projected_factor(self, rows, projection):
        a = np.asarray(projection, dtype=np.float64)
        root = psd_sqrt((a @ a.T)[None])
        return NoiseFactor(np.sqrt(self._values[rows])[:, None, None] * root)

    def precision(self):
        return np.eye(self.n_features)[None] / self._values[:, None, None]

    def scaled(self, scales):
        if np.all(scales == scales[0]):
            return IsotropicCovariances(self._values * scales[0] ** 2, self.n_features)
        return FORMS["diagonal"](self._values[:, None] * scales**2, self.n_features)

    def congruence(self, B):
        full = self._values[:, None, None] * (B @ B.T)[None]
        return RowCovariances.from_matrices(symmetrize(full))
