"""Per-row noise covariances in compact form.

A :class:`RowCovariances` holds one covariance per input in the cheapest exact
representation: a variance per row (``sigma_x^2 I``), a vector of variances per
row (diagonal), or a full SPD matrix per row together with its symmetric square
root. Noise is drawn as ``e = Sigma^(1/2) z`` with the *symmetric* square root,
so that standard-normal draws ``z`` are the whitened coordinates used by the
Riemannian optimizer.
"""

import numpy as np

__all__ = ["RowCovariances"]

_KINDS = ("isotropic", "diagonal", "full")


class RowCovariances:
    """One Gaussian noise covariance per row, stored compactly.

    Parameters
    ----------
    kind : {"isotropic", "diagonal", "full"}
        Representation.
    values : ndarray
        ``(n,)`` variances for ``"isotropic"``, ``(n, d)`` variances for
        ``"diagonal"``, ``(n, d, d)`` SPD matrices for ``"full"``.
    n_features : int
        Dimension ``d`` (needed for the isotropic kind).
    """

    def __init__(self, kind, values, n_features):
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}.")
        values = np.asarray(values, dtype=np.float64)
        expected_ndim = {"isotropic": 1, "diagonal": 2, "full": 3}[kind]
        if values.ndim != expected_ndim:
            raise ValueError(
                f"A {kind} covariance needs a {expected_ndim}-D array of values, "
                f"got shape {values.shape}."
            )
        if kind != "isotropic" and values.shape[1] != n_features:
            raise ValueError(
                f"covariance has {values.shape[1]} features, expected {n_features}."
            )
        if kind == "full" and values.shape[2] != n_features:
            raise ValueError(f"covariance matrices must be square, got {values.shape[1:]}.")
        if not np.all(np.isfinite(values)):
            raise ValueError("covariance contains NaN or infinite values.")
        self.kind = kind
        self.n_features = int(n_features)
        self._values = values
        self._eig = None
        if kind == "full":
            sym_err = np.abs(values - values.transpose(0, 2, 1)).max(initial=0.0)
            scale = np.abs(values).max(initial=1.0)
            if sym_err > 1e-8 * scale:
                raise ValueError("covariance matrices must be symmetric.")
            values = 0.5 * (values + values.transpose(0, 2, 1))
            self._values = values
            eigvals, eigvecs = np.linalg.eigh(values)
            if np.any(eigvals <= 0):
                raise ValueError(
                    "covariance matrices must be symmetric positive definite; "
                    f"smallest eigenvalue found: {eigvals.min():.3g}."
                )
            self._eig = (eigvals, eigvecs)
        elif np.any(values <= 0):
            raise ValueError("variances must be strictly positive.")

    # ------------------------------------------------------------------ builders
    @classmethod
    def isotropic(cls, variances, n_features):
        """Build ``variances[i] * I`` rows."""
        return cls("isotropic", np.atleast_1d(variances), n_features)

    @classmethod
    def from_matrices(cls, matrices):
        """Build full rows from an ``(n, d, d)`` array of SPD matrices."""
        matrices = np.asarray(matrices, dtype=np.float64)
        if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2]:
            raise ValueError(
                f"covariance must have shape (n_samples, d, d), got {matrices.shape}."
            )
        return cls("full", matrices, matrices.shape[1])

    # ------------------------------------------------------------------- basics
    def __len__(self):
        return self._values.shape[0]

    @property
    def values(self):
        """The compact values (read-only view)."""
        view = self._values.view()
        view.flags.writeable = False
        return view

    def take(self, rows):
        """Covariances of a subset of rows (index array or slice)."""
        new = RowCovariances.__new__(RowCovariances)
        new.kind = self.kind
        new.n_features = self.n_features
        new._values = self._values[rows]
        new._eig = None if self._eig is None else (self._eig[0][rows], self._eig[1][rows])
        return new

    @staticmethod
    def concatenate(parts):
        """Concatenate rows of several covariances of the same kind and dimension."""
        kinds = {p.kind for p in parts}
        if len(kinds) != 1:
            parts = [p.as_full() for p in parts]
        first = parts[0]
        new = RowCovariances.__new__(RowCovariances)
        new.kind = first.kind
        new.n_features = first.n_features
        new._values = np.concatenate([p._values for p in parts])
        new._eig = None
        if first.kind == "full":
            new._eig = (
                np.concatenate([p._eig[0] for p in parts]),
                np.concatenate([p._eig[1] for p in parts]),
            )
        return new

    def as_full(self):
        """The same covariances as full ``(n, d, d)`` rows."""
        if self.kind == "full":
            return self
        return RowCovariances.from_matrices(self.matrices())

    # -------------------------------------------------------------- quantities
    def matrices(self):
        """Dense ``(n, d, d)`` covariance matrices."""
        n, d = len(self), self.n_features
        if self.kind == "full":
            return self._values.copy()
        out = np.zeros((n, d, d))
        idx = np.arange(d)
        if self.kind == "isotropic":
            out[:, idx, idx] = self._values[:, None]
        else:
            out[:, idx, idx] = self._values
        return out

    def eigenvalues(self):
        """Eigenvalues of each row, ``(n, d)``, ascending for full rows."""
        if self.kind == "isotropic":
            return np.repeat(self._values[:, None], self.n_features, axis=1)
        if self.kind == "diagonal":
            return self._values.copy()
        return self._eig[0].copy()

    def min_eigenvalue(self):
        """Smallest eigenvalue of each row, ``(n,)``."""
        if self.kind == "isotropic":
            return self._values.copy()
        if self.kind == "diagonal":
            return self._values.min(axis=1)
        return self._eig[0][:, 0].copy()

    def max_eigenvalue(self):
        """Largest eigenvalue of each row, ``(n,)``."""
        if self.kind == "isotropic":
            return self._values.copy()
        if self.kind == "diagonal":
            return self._values.max(axis=1)
        return self._eig[0][:, -1].copy()

    def logdet(self):
        """Log-determinant of each row, ``(n,)``."""
        if self.kind == "isotropic":
            return self.n_features * np.log(self._values)
        if self.kind == "diagonal":
            return np.log(self._values).sum(axis=1)
        return np.log(self._eig[0]).sum(axis=1)

    def sqrt_matrices(self):
        """Symmetric square roots of full rows, ``(n, d, d)``."""
        if self.kind != "full":
            return self.as_full().sqrt_matrices()
        w, v = self._eig
        return spectral(v, np.sqrt(w))

    def whiten(self, rows, delta):
        """``Sigma^(-1/2) delta`` for displacements ``delta`` of shape (n, m, d)."""
        sub = self.take(rows)
        if sub.kind == "isotropic":
            return delta / np.sqrt(sub._values)[:, None, None]
        if sub.kind == "diagonal":
            return delta / np.sqrt(sub._values)[:, None, :]
        w, v = sub._eig
        inv_sqrt = spectral(v, 1.0 / np.sqrt(w))
        return delta @ inv_sqrt  # inv_sqrt is symmetric

    def factor(self, rows):
        """Compact square-root factor of ``rows`` for :meth:`apply_factor`."""
        sub = self.take(rows)
        if sub.kind == "full":
            w, v = sub._eig
            return sub.kind, spectral(v, np.sqrt(w))
        return sub.kind, np.sqrt(sub._values)

    def projected_factor(self, rows, projection):
        """Factor of the projected noise ``A e`` of ``rows``, for :meth:`apply_factor`.

        For ``e ~ N(0, Sigma)`` and a ``(k, d)`` matrix ``A``, ``A e`` is
        ``N(0, A Sigma A^T)``: the returned factor is the symmetric positive
        semi-definite square root of ``A Sigma A^T``, shape (r, k, k).
        """
        sub = self.take(rows)
        a = np.asarray(projection, dtype=np.float64)
        if sub.kind == "isotropic":
            root = _psd_sqrt((a @ a.T)[None])
            return "full", np.sqrt(sub._values)[:, None, None] * root
        if sub.kind == "diagonal":
            moments = (a[None] * sub._values[:, None, :]) @ a.T
        else:
            moments = a @ sub._values @ a.T
        return "full", _psd_sqrt(moments)

    @staticmethod
    def apply_factor(factor, z, out=None):
        """Noise ``e = Sigma^(1/2) z`` for standard normals ``z`` of shape (r, m, d).

        ``out`` (which may be ``z`` itself) receives the result in place.
        """
        kind, root = factor
        if kind == "isotropic":
            return np.multiply(z, root[:, None, None], out=out)
        if kind == "diagonal":
            return np.multiply(z, root[:, None, :], out=out)
        # root is symmetric: e_j = sum_k root[j, k] z_k
        return np.matmul(z, root, out=out)


def spectral(vectors, values):
    """``V diag(w) V^T`` for stacked eigenvectors ``V`` (..., d, d) and values ``w`` (..., d).

    A batched matrix product (BLAS), several times faster than the
    equivalent ``einsum``.
    """
    return (vectors * values[..., None, :]) @ np.swapaxes(vectors, -1, -2)


def _psd_sqrt(matrices):
    """Symmetric square roots of symmetric positive semi-definite ``(n, k, k)`` matrices."""
    matrices = 0.5 * (matrices + np.swapaxes(matrices, -1, -2))
    w, v = np.linalg.eigh(matrices)
    # eigenvalues below zero are rounding errors of a semi-definite matrix
    return spectral(v, np.sqrt(np.clip(w, 0.0, None)))
