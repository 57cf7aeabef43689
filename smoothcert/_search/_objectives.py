"""The objective of the covariance search: the certified radius CERTIFY will return, times a shape term.

The search estimates, on a few hundred *optimization* draws, the top-class
probability ``psi_A`` of the classifier smoothed with ``tau^2 Sigma`` (tempered
draws ``x + tau Sigma^(1/2) z``, ``tau >= 1``) and reads the margin of
``Sigma`` as ``t = tau Phi^-1(psi_A)`` (exact for a hyperplane boundary, whose
smoothed probability is ``Phi(delta / sqrt(n^T Sigma n))``). The gap is

    ``gap = 2 r_cert(t)``,

where ``r_cert(t)`` is the radius hard-vote CERTIFY returns, in expectation,
when the true probability is ``Phi(t)``: ``Phi^-1`` of the one-sided
Clopper-Pearson bound of ``K ~ Binomial(N, Phi(t))``, averaged on a log scale
(:class:`RadiusCurve`). It is smooth, follows ``t`` (less a finite-``N``
shift) at small margins and saturates at ``Phi^-1(alpha^(1/N))``, so the
search is paid for what will be certified: no clip at a largest
probability, and no reward for margins the certificate cannot use. With
``alpha`` and ``N`` the certificate's own.

The objective is ``J = gap * M(Sigma)`` with the shape term

* ``"volume"``: ``M = det(Sigma)^(1/(2d)) + kappa * sqrt(lambda_min)``
  (ANCER, Riemannian DDRS);
* ``"ball"``: ``M = sqrt(lambda_min(Sigma))``, the radius of the largest ball
  in the certified ellipsoid (what certified accuracy rewards).

The gradient of ``sqrt(lambda_min)`` is that of a smooth minimum of the noise
scales (:func:`_soft_min_scale`); the isotropic stage uses the exact gradient.
"""

import functools

import numpy as np
from scipy import stats

__all__ = [
    "RadiusCurve",
    "gap_and_weights",
    "objective_value",
    "shape_factor",
    "shape_tangent",
    "SOFTMIN_BETA",
]

#: Sharpness of the smooth minimum used for the gradient of ``sqrt(lambda_min)``.
SOFTMIN_BETA = 10.0
#: Largest margin of the radius table (beyond, CERTIFY sees no failure: ``r_max``).
_T_MAX = 10.0
_T_STEP = 0.02
#: Most failure counts averaged per margin of the table.
_MAX_COUNTS = 301


@functools.lru_cache(maxsize=32)
def _radius_table(n_samples, alpha):
    """``(t, r_cert(t))`` on a grid: the expected certified radius at margin ``t``.

    ``r_cert(t) = exp E[log Phi^-1(p_lower(K))]`` over the counts
    ``K ~ Binomial(N, Phi(t))`` that certify, ``p_lower`` the one-sided
    Clopper-Pearson bound at level ``alpha``. Where CERTIFY abstains with
    probability at least 1/2 the curve continues with slope 1, so that it
    stays increasing and defined for every margin (also negative ones).
    """
    N = int(n_samples)
    t = np.arange(0.0, _T_MAX + _T_STEP / 2, _T_STEP)
    # radius as a function of the number of failures F = N - K: exact for
    # small F, interpolated (it is smooth) on a geometric grid beyond
    small = np.arange(0, min(N, 400) + 1)
    large = np.unique(np.round(np.geomspace(400, N, 600)).astype(np.int64)) if N > 400 else small[:0]
    failures = np.unique(np.concatenate([small, large]))
    counts = N - failures
    with np.errstate(all="ignore"):
        lower = np.where(counts > 0, stats.beta.ppf(alpha, np.maximum(counts, 1), failures + 1.0), 0.0)
    radius = stats.norm.ppf(lower)
    certified = radius > 0
    log_radius = np.log(np.where(certified, radius, 1.0))
    q = stats.norm.sf(t)
    mean, sd = N * q, np.sqrt(N * q * (1.0 - q))
    lo = np.clip(np.floor(mean - 10.0 * sd - 3.0), 0, N).astype(np.int64)
    hi = np.clip(np.ceil(mean + 10.0 * sd + 15.0), 0, N).astype(np.int64)
    log_r = np.full(len(t), -np.inf)
    for i in range(len(t)):  # a table of margins, built once per (N, alpha)
        F = np.unique(np.round(np.linspace(lo[i], hi[i], min(hi[i] - lo[i] + 1, _MAX_COUNTS))).astype(np.int64))
        weight = stats.binom.pmf(F, N, q[i])
        if len(F) > 1:
            weight = weight * np.gradient(F.astype(np.float64))
        ok = np.interp(F, failures, certified.astype(np.float64)) > 0.5
        total = weight.sum()
        if total <= 0 or weight[ok].sum() < 0.5 * total:
            continue
        values = np.interp(F[ok], failures, log_radius)
        log_r[i] = (weight[ok] * values).sum() / weight[ok].sum()
    finite = np.isfinite(log_r)
    r = np.exp(np.where(finite, log_r, 0.0))
    first = int(np.argmax(finite))
    r = np.where(finite, r, r[first] + (t - t[first]))
    # the average of a monotone function of K is monotone in t; keep it so
    # against rounding
    r = np.maximum.accumulate(r)
    return t, r


class RadiusCurve:
    """Expected radius of hard-vote CERTIFY at a margin, ``r_cert(t)``, and its slope.

    Parameters
    ----------
    n_samples : int
        Certification draws ``N``.
    alpha : float
        Failure probability of each certificate.
    """

    def __init__(self, n_samples, alpha):
        self.n_samples, self.alpha = int(n_samples), float(alpha)
        self._t, self._r = _radius_table(self.n_samples, self.alpha)
        self._slope = np.clip(np.gradient(self._r, self._t), 0.0, None)
        #: largest radius (all draws agree)
        self.r_max = float(stats.norm.ppf(self.alpha ** (1.0 / self.n_samples)))

    def __call__(self, t):
        """``(r_cert(t), r_cert'(t))`` for margins ``t`` (any shape)."""
        t = np.asarray(t, dtype=np.float64)
        top = self._t[-1]
        r = np.where(
            t < 0, self._r[0] + t, np.where(t > top, self._r[-1], np.interp(t, self._t, self._r))
        )
        slope = np.where(t < 0, 1.0, np.where(t > top, 0.0, np.interp(t, self._t, self._slope)))
        return r, slope

    def best_margin(self, n_features):
        """``t* = argmax_t d log r_cert(t) - log t``: the margin across a flat
        boundary that maximizes the certified log-volume of an ellipsoid long
        along it (``d = n_features``)."""
        t, r = self._t[1:], self._r[1:]
        ok = r > 0
        score = np.where(ok, n_features * np.log(np.where(ok, r, 1.0)) - np.log(t), -np.inf)
        return float(t[np.argmax(score)])

    def temperature(self, n_features):
        """Tempering ``tau = max(1, t* / 1.5)``: at the best margin, tempered draws
        see ``Phi(1.5)``, about 7 % failing draws, so the estimates keep a direction."""
        return max(1.0, self.best_margin(n_features) / 1.5)


def gap_and_weights(psi, curve, tau, n_draws):
    """Certifiable gap ``2 r_cert(t)`` of the top class and its gradient weights.

    Parameters
    ----------
    psi : ndarray of shape (n, n_classes)
        Smoothed scores (or vote frequencies) on tempered draws.
    curve : RadiusCurve
    tau : ndarray of shape (n,)
        Temperature of each row's draws.
    n_draws : int
        Draws of the estimate: ``psi_A`` is read within ``[1/(2m), 1 - 1/(2m)]``;
        beyond, every draw agreed and the margin is not resolved: the gap is
        that of the end of the range (the margin the draws can tell, not the
        largest radius, which would reward a point for having too few draws
        to see its failures), with zero weight.

    Returns
    -------
    gap : ndarray of shape (n,)
    weights : ndarray of shape (n, n_classes)
        ``d gap / d psi``: on the top class ``A`` only (CERTIFY bounds the
        runner-up by ``1 - p_A``), 0 where ``psi_A`` is not resolved.
    """
    n = psi.shape[0]
    rows = np.arange(n)
    top = np.argmax(psi, axis=1)
    pa = psi[rows, top]
    eps = 0.5 / max(int(n_draws), 1)
    inside = (pa > eps) & (pa < 1.0 - eps)
    q = stats.norm.ppf(np.clip(pa, eps, 1.0 - eps))
    t = np.asarray(tau, dtype=np.float64) * q
    r, slope = curve(t)
    weights = np.zeros_like(psi, dtype=np.float64)
    weights[rows, top] = np.where(inside, 2.0 * slope * tau / stats.norm.pdf(q), 0.0)
    return 2.0 * r, weights


def shape_factor(covariances, objective, kappa):
    """``M(Sigma)`` with the exact minimum eigenvalue (the value used to accept steps)."""
    s_min = np.sqrt(covariances.min_eigenvalue())
    if objective == "ball":
        return s_min
    geo = np.exp(covariances.logdet() / (2.0 * covariances.n_features))
    return geo + kappa * s_min


def objective_value(psi, covariances, objective, kappa, curve, tau, n_draws):
    """Objective ``J = gap * M(Sigma)`` for smoothed scores and covariances."""
    gap, _ = gap_and_weights(psi, curve, tau, n_draws)
    return gap * shape_factor(covariances, objective, kappa)


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


def shape_tangent(covariances, objective, kappa, basis=None):
    """Whitened natural gradient of ``M``, projected on the form of ``covariances``.

    Diagonal and full forms follow the gradient of the smooth surrogate
    (:func:`_shape_gradient`); the isotropic form the exact natural gradient
    along ``log sigma^2`` of ``M(sigma^2 I) = C sigma`` (``C = 1 + kappa`` or
    1), namely ``M / d``. The low-rank form, whose spectrum is not cheap,
    takes the volume term exactly and the ball term along its smallest axis
    (:meth:`~smoothcert._geometry._forms.LowRankCovariances.shape_tangent`,
    on the step's ``basis``).
    """
    if covariances.kind == "lowrank":
        return covariances.shape_tangent(objective, kappa, basis)
    eigvals = covariances.eigenvalues()
    a, c = _shape_gradient(eigvals, objective, kappa)
    return covariances.spectral_tangent(a, c, _shape_factor(eigvals, objective, kappa))
