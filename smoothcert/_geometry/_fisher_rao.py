"""The Fisher-Rao geometry of centred Gaussians on SPD(d), via geomstats.

The Fisher-Rao metric of ``N(0, Sigma)`` is half the affine-invariant metric,
``<U, V>_Sigma = 1/2 tr(Sigma^-1 U Sigma^-1 V)``. Its exponential map is
``Exp_Sigma(V) = Sigma^(1/2) expm(Sigma^(-1/2) V Sigma^(-1/2)) Sigma^(1/2)``,
which stays SPD by construction. The optimizer works in *whitened* tangent
coordinates ``W = Sigma^(-1/2) V Sigma^(-1/2)``; the functions here convert
and step, batched over ``(n, d, d)`` arrays.

geomstats is imported lazily with its numpy backend, and the root-logger
configuration it installs on import is undone so that importing smoothcert
never changes the user's logging. On numpy 2.4 and later, the name
``numpy.trapz`` that geomstats 2.8 imports is restored first (an alias of
``numpy.trapezoid``, see :mod:`._numpy_compat`).
"""

import logging
import os
import warnings

import numpy as np

from ._linalg import spd_power, spectral, symmetrize
from ._numpy_compat import restore_trapz

__all__ = [
    "fisher_rao_metric",
    "fisher_rao_exp",
    "fisher_rao_norm_whitened",
    "exp_whitened",
    "sym_sqrt",
    "clamp_eigenvalues",
    "cap_log_mean",
]

_METRICS = {}


def _import_geomstats():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    os.environ.setdefault("GEOMSTATS_BACKEND", "numpy")
    restore_trapz()
    try:
        with warnings.catch_warnings():
            # geomstats' backend importer emits ImportWarning (and older
            # versions deprecation warnings) on import
            warnings.simplefilter("ignore", ImportWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                from geomstats.information_geometry.normal import CenteredNormalDistributions
            except ImportError as exc:
                raise ImportError(
                    "The Fisher-Rao geometry of method='riemannian' needs geomstats "
                    f"(pip install 'geomstats>=2.8'), which failed to import with numpy "
                    f"{np.__version__}: {exc}"
                ) from exc
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    return CenteredNormalDistributions


def fisher_rao_metric(n_features):
    """The geomstats Fisher-Rao metric of ``N(0, Sigma)`` on SPD(``n_features``)."""
    if n_features not in _METRICS:
        space = _import_geomstats()(sample_dim=n_features)
        _METRICS[n_features] = space.metric
    return _METRICS[n_features]


def sym_sqrt(matrices, power=0.5):
    """``matrices ** power`` for a batch of SPD matrices (symmetric root)."""
    return spd_power(matrices, power)


def fisher_rao_exp(sigma, tangent):
    """Fisher-Rao exponential map ``Exp_Sigma(tangent)`` with geomstats.

    Parameters
    ----------
    sigma : ndarray of shape (n, d, d)
        Base points (SPD).
    tangent : ndarray of shape (n, d, d)
        Symmetric tangent vectors (ambient coordinates).

    Returns
    -------
    ndarray of shape (n, d, d)
    """
    metric = fisher_rao_metric(sigma.shape[-1])
    out = np.asarray(metric.exp(tangent, sigma), dtype=np.float64)
    return symmetrize(out)


def exp_whitened(sigma, whitened):
    """Step ``Sigma <- Exp_Sigma(Sigma^(1/2) W Sigma^(1/2))`` for whitened ``W``.

    The exponential map is evaluated by geomstats; the conversion to ambient
    coordinates uses the symmetric square root, so every matrix is expressed
    in one basis (mixing the eigenbasis of Sigma with the standard basis would
    silently rotate the ellipsoids).
    """
    root = sym_sqrt(sigma)
    tangent = symmetrize(root @ whitened @ root)
    return fisher_rao_exp(sigma, tangent)


def fisher_rao_norm_whitened(whitened):
    """Fisher-Rao norm of a whitened tangent vector: ``sqrt(tr(W^2) / 2)``."""
    return np.sqrt(0.5 * np.einsum("...ij,...ij->...", whitened, whitened))


def clamp_eigenvalues(matrices, low, high, volume=None):
    """Clip the eigenvalues of each SPD matrix into ``[low[i], high[i]]``.

    With ``volume`` (log of the largest ``det^(1/d)``), the log-eigenvalues are
    also projected so that their mean is at most ``volume``
    (:func:`cap_log_mean`).

    Parameters
    ----------
    matrices : ndarray of shape (n, d, d)
    low, high : ndarray of shape (n,) or float
    volume : ndarray of shape (n,) or float, default=None

    Returns
    -------
    clamped : ndarray of shape (n, d, d)
    """
    w, v = np.linalg.eigh(matrices)
    n = w.shape[0]
    low = np.broadcast_to(np.asarray(low, dtype=np.float64), (n,))
    high = np.broadcast_to(np.asarray(high, dtype=np.float64), (n,))
    if volume is None:
        w = np.clip(w, low[:, None], high[:, None])
    else:
        w = np.exp(cap_log_mean(np.log(np.clip(w, 1e-300, None)), np.log(low), np.log(high), volume))
    return symmetrize(spectral(v, w))


def cap_log_mean(logs, low, high, volume=None):
    """Clip log-variances into ``[low, high]`` and cap their mean at ``volume``.

    Where the mean of the clipped values exceeds ``volume`` (the log of the
    largest geometric-mean variance, that is of ``det^(1/d)``), every value is
    lowered by one common shift and clipped again at ``low``: the Euclidean
    projection onto ``{low <= x_i <= high, mean(x) <= volume}`` (found by
    bisection on the shift, which the mean decreases monotonically).

    Parameters
    ----------
    logs : ndarray of shape (n, d)
    low, high : ndarray of shape (n,) or float
    volume : ndarray of shape (n,) or float, default=None
        Must be at least ``low``; ``None``: no cap on the mean.

    Returns
    -------
    ndarray of shape (n, d)
    """
    n = logs.shape[0]
    low = np.broadcast_to(np.asarray(low, dtype=np.float64), (n,))[:, None]
    high = np.broadcast_to(np.asarray(high, dtype=np.float64), (n,))[:, None]
    out = np.clip(logs, low, high)
    if volume is None:
        return out
    volume = np.broadcast_to(np.asarray(volume, dtype=np.float64), (n,))
    over = out.mean(axis=1) > volume
    if not np.any(over):
        return out
    x, lo_r, hi_r, v = out[over], low[over], high[over], volume[over]
    a, b = np.zeros(len(x)), (x.max(axis=1) - lo_r[:, 0]).clip(0.0) + 1e-12
    for _ in range(60):
        mid = 0.5 * (a + b)
        too_big = np.clip(x - mid[:, None], lo_r, hi_r).mean(axis=1) > v
        a, b = np.where(too_big, mid, a), np.where(too_big, b, mid)
    out[over] = np.clip(x - b[:, None], lo_r, hi_r)
    return out
