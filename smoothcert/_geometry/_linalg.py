"""Batched linear algebra of symmetric (positive definite) matrices, written once.

Every other module symmetrizes, checks, inverts and takes square roots of
covariance matrices through these functions, so that one tolerance and one
numerical recipe hold everywhere:

* :func:`symmetrize` -- ``(M + M^T) / 2`` over the last two axes;
* :func:`spectral` -- ``V diag(w) V^T`` by a batched matrix product (BLAS);
* :func:`check_spd` -- the single SPD check (symmetry to a relative ``1e-8``
  of each matrix's largest entry, eigenvalues > 0), returning the
  symmetrized matrices and their eigendecomposition;
* :func:`spd_power` -- ``M^p`` of SPD matrices (square root, inverse, inverse
  square root), :func:`psd_sqrt` -- square root of semi-definite matrices.
"""

import numpy as np

__all__ = ["symmetrize", "spectral", "check_spd", "spd_power", "psd_sqrt", "SYMMETRY_TOL"]

#: Largest asymmetry accepted by :func:`check_spd`, relative to each matrix's
#: largest absolute entry (at least 1).
SYMMETRY_TOL = 1e-8


def symmetrize(matrices):
    """``(M + M^T) / 2`` for a batch ``(..., d, d)``."""
    return 0.5 * (matrices + np.swapaxes(matrices, -1, -2))


def spectral(vectors, values):
    """``V diag(w) V^T`` for stacked eigenvectors ``V`` (..., d, d) and values ``w`` (..., d).

    A batched matrix product (BLAS), several times faster than the
    equivalent ``einsum``.
    """
    return (vectors * values[..., None, :]) @ np.swapaxes(vectors, -1, -2)


def check_spd(matrices, name="covariance"):
    """Validate a stack of symmetric positive definite matrices.

    Parameters
    ----------
    matrices : ndarray of shape (n, d, d)
        Finite matrices.
    name : str, default="covariance"
        How to call them in error messages.

    Returns
    -------
    symmetric : ndarray of shape (n, d, d)
        ``(M + M^T) / 2``.
    eigenvalues : ndarray of shape (n, d)
        Ascending, all positive.
    eigenvectors : ndarray of shape (n, d, d)

    Raises
    ------
    ValueError
        Naming the first matrix that is not symmetric (beyond
        :data:`SYMMETRY_TOL`) or not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert._geometry._linalg import check_spd
    >>> _, w, _ = check_spd(np.array([[[2.0, 1.0], [1.0, 2.0]]]))
    >>> w
    array([[1., 3.]])
    >>> check_spd(np.array([[[1.0, 0.0], [0.0, -1.0]]]))
    Traceback (most recent call last):
    ...
    ValueError: covariance matrix 0 is not symmetric positive definite (smallest eigenvalue -1).
    """
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.size:
        scale = np.maximum(np.abs(matrices).max(axis=(-2, -1)), 1.0)
        asym = np.abs(matrices - np.swapaxes(matrices, -1, -2)).max(axis=(-2, -1))
        bad = np.flatnonzero(asym > SYMMETRY_TOL * scale)
        if bad.size:
            raise ValueError(f"{name} matrix {int(bad[0])} is not symmetric.")
    symmetric = symmetrize(matrices)
    eigenvalues, eigenvectors = np.linalg.eigh(symmetric)
    bad = np.flatnonzero(np.any(eigenvalues <= 0, axis=-1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name} matrix {i} is not symmetric positive definite "
            f"(smallest eigenvalue {eigenvalues[i, 0]:.3g})."
        )
    return symmetric, eigenvalues, eigenvectors


def spd_power(matrices, power, eig=None):
    """``M^power`` of SPD matrices through their eigendecomposition.

    Parameters
    ----------
    matrices : ndarray of shape (..., d, d)
        SPD matrices (ignored when ``eig`` is given).
    power : float
        E.g. 0.5 (square root), -1 (inverse, the precision of a covariance),
        -0.5.
    eig : tuple of ndarray, default=None
        A precomputed ``(eigenvalues, eigenvectors)``.

    Returns
    -------
    ndarray of shape (..., d, d)
    """
    w, v = np.linalg.eigh(matrices) if eig is None else eig
    if power == -0.5:
        return spectral(v, 1.0 / np.sqrt(w))
    return spectral(v, w**power)


def psd_sqrt(matrices):
    """Symmetric square roots of symmetric positive semi-definite ``(n, k, k)`` matrices."""
    w, v = np.linalg.eigh(symmetrize(matrices))
    # eigenvalues below zero are rounding errors of a semi-definite matrix
    return spectral(v, np.sqrt(np.clip(w, 0.0, None)))
