"""The shape term of the search's objective and its Fisher-Rao gradient.

The objective of every covariance search is ``J = gap * M(Sigma)``
(:mod:`._searches`), with the shape term

* ``"volume"``: ``M = det(Sigma)^(1/(2d)) + kappa * sqrt(lambda_min)``
  (the scale of the certified volume -- ANCER's proxy radius per unit gap --
  plus the inscribed ball);
* ``"ball"``: ``M = sqrt(lambda_min(Sigma))``, the radius of the largest ball
  in the certified ellipsoid per unit of Mahalanobis radius.

The gradient of ``sqrt(lambda_min)`` is that of a smooth minimum of the noise
scales (:func:`_soft_min_scale`); the isotropic stage uses the exact gradient.
Each search stage projects it on its tangent
(``smoothcert._search._stages.SearchStage.shape_tangent``).
"""

import numpy as np

__all__ = ["shape_factor", "SOFTMIN_BETA"]

#: Sharpness of the smooth minimum used for the gradient of ``sqrt(lambda_min)``.
SOFTMIN_BETA = 10.0


def shape_factor(covariances, objective, kappa):
    """``M(Sigma)`` with the exact minimum eigenvalue ."""
    s_min = np.sqrt(covariances.min_eigenvalue())
    if objective == "ball":
        return s_min
    geo = np.exp(covariances.logdet() / (2.0 * covariances.n_features))
    return geo + kappa * s_min


def _shape_factor(eigvals, objective, kappa):
    """``M(Sigma)`` from eigenvalues ``(n, d)`` (exact minimum)."""
    s_min = np.sqrt(eigvals.min(axis=1))
    if objective == "ball":
        return s_min
    geo = np.exp(0.5 * np.log(eigvals).mean(axis=1))
    return geo + kappa * s_min


def _soft_min_scale(eigvals):
    """Smooth minimum of the noise scales ``s_i = sqrt(lambda_i)``, and its weights.

    ``m = (sum_i s_i^-beta)^(-1/beta)`` (``beta = SOFTMIN_BETA``): a smooth lower
    bound of ``min_i s_i`` that tends to it when the smallest scale is isolated
    (``d^(-1/beta) min_i s_i <= m <= min_i s_i``). ``omega_i = d log m / d log s_i``
    (a softmax of ``-beta log s``).
    """
    log_s = 0.5 * np.log(eigvals)
    logits = -SOFTMIN_BETA * log_s
    top = logits.max(axis=1, keepdims=True)
    weights = np.exp(logits - top)
    total = weights.sum(axis=1, keepdims=True)
    log_m = -(top[:, 0] + np.log(total[:, 0])) / SOFTMIN_BETA
    return np.exp(log_m), weights / total


def _smooth_shape_factor(eigvals, objective, kappa):
    """The smooth surrogate of ``M(Sigma)`` whose gradient the search follows.

    ``M(Sigma)`` with ``sqrt(lambda_min)`` replaced by the smooth minimum of
    :func:`_soft_min_scale`; :func:`_shape_gradient` is its exact gradient.
    """
    m, _ = _soft_min_scale(eigvals)
    if objective == "ball":
        return m
    geo = np.exp(0.5 * np.log(eigvals).mean(axis=1))
    return geo + kappa * m


def _shape_gradient(eigvals, objective, kappa):
    """Whitened natural gradient of the smooth shape factor, in the eigenbasis.

    For a spectral function ``F(lambda)`` of ``Sigma = U diag(lambda) U^T`` the
    Fisher-Rao gradient, whitened (``Sigma^(-1/2) grad Sigma^(-1/2)``), is
    ``U diag(2 lambda_i dF / d lambda_i) U^T = U diag(dF / d log s_i) U^T``.
    For :func:`_smooth_shape_factor` this is ``a I + U diag(c) U^T`` with

    * ``a = det(Sigma)^(1/(2d)) / d`` (volume term, 0 for ``"ball"``);
    * ``c_i = kappa * m * omega_i`` (``kappa = 1`` for ``"ball"``), ``m`` and
      ``omega`` from :func:`_soft_min_scale`. With an isolated smallest
      eigenvalue, ``c`` tends to ``sqrt(lambda_min) e_min``: the whitened form
      of the exact gradient ``lambda_min^(3/2) u u^T``.

    Returns
    -------
    a : ndarray of shape (n,)
    c : ndarray of shape (n, d)
    """
    d = eigvals.shape[1]
    m, omega = _soft_min_scale(eigvals)
    if objective == "ball":
        return np.zeros(len(eigvals)), m[:, None] * omega
    geo = np.exp(0.5 * np.log(eigvals).mean(axis=1))
    return geo / d, kappa * m[:, None] * omega
