"""The diagonal covariance form."""

import numpy as np

from .._fisher_rao import cap_log_mean
from .._linalg import psd_sqrt, symmetrize
from ._base import FORMS, NoiseFactor, RowCovariances

__all__ = ["DiagonalCovariances"]


class DiagonalCovariances(RowCovariances):
    """``diag(s_i^2)`` per row: ``values`` are the variances ``(n, d)``.

    Search parameters: log-variances ``(n, d)``.
    """

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

    @classmethod
    def parameters_from(cls, previous, theta, n_features):
        if previous is not FORMS["isotropic"]:
            raise ValueError("the diagonal form starts from the isotropic one")
        return np.repeat(theta[:, None], n_features, axis=1)

    @classmethod
    def tangent_shape(cls, n_features):
        return (n_features,)

    @classmethod
    def norm(cls, tangent, n_features):
        return np.sqrt(0.5 * np.square(tangent).sum(axis=1))

    @classmethod
    def step(cls, theta, direction, low, high, volume=None):
        return cap_log_mean(theta + direction, low, high, volume)

    def spectral_tangent(self, a, c, scale_derivative):
        return a[:, None] + c

    @staticmethod
    def score_moment(centred, z):
        return np.einsum("rm,rmd->rd", centred, np.square(z) - 1.0) / z.shape[1]

    @staticmethod
    def pathwise_moment(grad_z, z):
        return np.einsum("rmd,rmd->rd", grad_z, z) / z.shape[1]
