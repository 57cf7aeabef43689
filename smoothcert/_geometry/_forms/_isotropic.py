"""The isotropic covariance form."""

import numpy as np

from .._linalg import psd_sqrt, symmetrize
from ._base import FORMS, NoiseFactor, RowCovariances

__all__ = ["IsotropicCovariances"]


class IsotropicCovariances(RowCovariances):
    """``sigma_i^2 I`` per row: ``values`` are the variances ``(n,)``.

    Search parameters: log-variances ``(n,)``.
    """

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

    @classmethod
    def parameters_from(cls, previous, theta, n_features):
        if previous is not None:
            raise ValueError("the isotropic form starts a chain of stages")
        return theta

    @classmethod
    def tangent_shape(cls, n_features):
        return ()

    @classmethod
    def norm(cls, tangent, n_features):
        return np.sqrt(0.5 * n_features) * np.abs(tangent)

    @classmethod
    def step(cls, theta, direction, low, high, volume=None):
        if volume is not None:
            high = np.minimum(high, volume)
        return np.clip(theta + direction, low, high)

    def spectral_tangent(self, a, c, scale_derivative):
        # M(sigma^2 I) is homogeneous of degree 1 in sigma: its natural
        # gradient along log sigma^2 is M / d (the metric is d / 2 there).
        return scale_derivative / self.n_features

    @staticmethod
    def score_moment(centred, z):
        m, d = z.shape[1], z.shape[2]
        return np.einsum("rm,rm->r", centred, np.square(z).sum(axis=2) - d) / (m * d)

    @staticmethod
    def pathwise_moment(grad_z, z):
        m, d = z.shape[1], z.shape[2]
        return np.einsum("rmd,rmd->r", grad_z, z) / (m * d)
