"""The objective of the covariance search and the gradients of its shape term.

With ``psi_c(Sigma) = E[F_c(x + e)]`` the smoothed scores estimated on a few
hundred *optimization* draws and ``gap = 2 Phi^-1(psi_A)`` (the top-two gap
``Phi^-1(psi_A) - Phi^-1(psi_B)`` with the runner-up bounded by ``1 - psi_A``,
as CERTIFY bounds it; clipped away from 0 and 1 at the largest probability
CERTIFY can certify), the objective is ``J = gap * M(Sigma)`` with the shape
term

* ``"volume"``: ``M = det(Sigma)^(1/(2d)) + kappa * sqrt(lambda_min)``
  (ANCER, Riemannian DDRS);
* ``"ball"``: ``M = sqrt(lambda_min(Sigma))``, the radius of the largest ball
  in the certified ellipsoid (what certified accuracy rewards).

The gradient of ``sqrt(lambda_min)`` is that of a smooth minimum of the noise
scales (:func:`_soft_min_scale`); the isotropic stage uses the exact gradient.
"""

import numpy as np
from scipy import stats

__all__ = ["gap_and_weights", "objective_value", "shape_factor", "shape_tangent", "SOFTMIN_BETA"]

#: Sharpness of the smooth minimum used for the gradient of ``sqrt(lambda_min)``.
SOFTMIN_BETA = 10.0


def gap_and_weights(psi, p_max):
    """Certifiable gap ``2 Phi^-1(psi_A)`` of the top class and its gradient weights.

    CERTIFY reports the Mahalanobis radius ``Phi^-1(p_A)`` of the top class
    alone (the runner-up is bounded by ``1 - p_A``), so the search maximizes the
    same quantity, written as the top-two gap ``Phi^-1(psi_A) - Phi^-1(1 - psi_A)``.
    With two classes this is exactly ``Phi^-1(psi_A) - Phi^-1(psi_B)``; with more
    classes the gap to the actual runner-up would reward noise that spreads
    probability over many classes and lowers ``psi_A``, hence the radius.

    Parameters
    ----------
    psi : ndarray of shape (n, n_classes)
        Smoothed scores.
    p_max : float
        ``psi_A`` is clipped into ``[1 - p_max, p_max]`` (``p_max``: the largest
        probability CERTIFY can certify with its number of draws).

    Returns
    -------
    gap : ndarray of shape (n,)
    weights : ndarray of shape (n, n_classes)
        ``d gap / d psi``: ``2 / phi(Phi^-1(psi_A))`` on the top class ``A``,
        0 elsewhere and where ``psi_A`` is clipped.
    """
    n = psi.shape[0]
    rows = np.arange(n)
    a = np.argmax(psi, axis=1)
    pa = psi[rows, a]
    lo, hi = 1.0 - p_max, p_max
    za = stats.norm.ppf(np.clip(pa, lo, hi))
    gap = 2.0 * za
    weights = np.zeros_like(psi)
    inside = (pa > lo) & (pa < hi)
    weights[rows, a] = np.where(inside, 2.0 / stats.norm.pdf(za), 0.0)
    return gap, weights


def _shape_factor(eigvals, objective, kappa):
    """``M(Sigma)`` with the exact minimum (the value used to accept steps)."""
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


def objective_value(psi, eigvals, objective, kappa, p_max):
    """Objective ``J = gap * M(Sigma)`` for smoothed scores and eigenvalues."""
    gap, _ = gap_and_weights(psi, p_max)
    return gap * _shape_factor(eigvals, objective, kappa)


def shape_factor(eigvals, objective, kappa):
    """``M(Sigma)`` from the eigenvalues ``(n, d)`` (exact minimum)."""
    return _shape_factor(eigvals, objective, kappa)


def shape_tangent(covariances, objective, kappa):
    """Whitened natural gradient of ``M``, projected on the form of ``covariances``.

    Diagonal and full forms follow the gradient of the smooth surrogate
    (:func:`_shape_gradient`); the isotropic form the exact natural gradient
    along ``log sigma^2`` of ``M(sigma^2 I) = C sigma`` (``C = 1 + kappa`` or
    1), namely ``M / d``.
    """
    eigvals = covariances.eigenvalues()
    a, c = _shape_gradient(eigvals, objective, kappa)
    return covariances.spectral_tangent(a, c, _shape_factor(eigvals, objective, kappa))
