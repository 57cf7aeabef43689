"""The interface of the covariance forms, their registry and the noise factor."""

import numpy as np


__all__ = ["RowCovariances", "NoiseFactor", "FORMS"]

#: kind -> form class, filled by subclassing :class:`RowCovariances`.
FORMS = {}


# ------------------------------------------------------------------ factors
class NoiseFactor:
    """A square-root factor ``L`` of a batch of covariances (``L L^T = Sigma``).

    Parameters
    ----------
    root : ndarray
        ``(r,)`` scales, ``(r, d)`` per-axis scales, or ``(r, d, d)``
        symmetric matrices.
    """

    def __init__(self, root):
        self.root = root

    def apply(self, z, out=None):
        """Noise ``e = L z`` for standard normals ``z`` of shape (r, m, d).

        ``out`` (which may be ``z`` itself) receives the result in place.
        """
        root = self.root
        if root.ndim == 1:
            return np.multiply(z, root[:, None, None], out=out)
        if root.ndim == 2:
            return np.multiply(z, root[:, None, :], out=out)
        # root is symmetric: e_j = sum_k root[j, k] z_k
        return np.matmul(z, root, out=out)

    def apply_transpose(self, x, out=None):
        """``L^T x`` for vectors ``x`` of shape (r, m, d): the chain rule of
        ``z -> x + L z`` (``grad_z = L^T grad_x``). The roots stored here are
        symmetric, so this is :meth:`apply`; a form with another factor
        overrides it."""
        return self.apply(x, out=out)

    def astype(self, dtype):
        """The same factor in ``dtype`` (no copy when it already is)."""
        return NoiseFactor(self.root.astype(dtype, copy=False))

    def take(self, rows):
        """The factor of a subset of the rows."""
        return NoiseFactor(self.root[rows])


# -------------------------------------------------------------------- forms
class RowCovariances:
    """One Gaussian noise covariance per row, in a compact form (abstract base).

    Build a form with :meth:`create` (``kind`` and values), :meth:`isotropic`
    or :meth:`from_matrices`, or one of the subclasses directly.

    Parameters
    ----------
    values : ndarray
        The compact values; their shape depends on the form.
    n_features : int
        Dimension ``d``.
    """

    #: Name of the form (key of :data:`FORMS`).
    kind = None
    #: Number of dimensions of ``values`` (1, 2 or 3).
    values_ndim = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind is not None:
            FORMS[cls.kind] = cls

    def __init__(self, values, n_features):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != self.values_ndim:
            raise ValueError(
                f"A {self.kind} covariance needs a {self.values_ndim}-D array of values, "
                f"got shape {values.shape}."
            )
        if self.values_ndim > 1 and values.shape[1] != n_features:
            raise ValueError(f"covariance has {values.shape[1]} features, expected {n_features}.")
        if not np.all(np.isfinite(values)):
            raise ValueError("covariance contains NaN or infinite values.")
        self.n_features = int(n_features)
        self._values = self._validated(values)

    def _validated(self, values):
        """Check (and canonicalize) the compact values; return what is stored."""
        if np.any(values <= 0):
            raise ValueError("variances must be strictly positive.")
        return values

    @classmethod
    def _wrap(cls, values, n_features, **state):
        """A form around already validated values (no copy, no check)."""
        new = cls.__new__(cls)
        new.n_features = int(n_features)
        new._values = values
        for key, value in state.items():
            setattr(new, key, value)
        return new

    # ------------------------------------------------------------ builders
    @staticmethod
    def create(kind, values, n_features):
        """Build the form named ``kind`` (``"isotropic"``, ``"diagonal"``, ``"full"``, ...)."""
        if kind not in FORMS:
            raise ValueError(f"kind must be one of {tuple(FORMS)}, got {kind!r}.")
        return FORMS[kind](values, n_features)

    @staticmethod
    def isotropic(variances, n_features):
        """Build ``variances[i] * I`` rows."""
        return FORMS["isotropic"](np.atleast_1d(variances), n_features)

    @staticmethod
    def from_matrices(matrices):
        """Build full rows from an ``(n, d, d)`` array of SPD matrices."""
        matrices = np.asarray(matrices, dtype=np.float64)
        if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2]:
            raise ValueError(
                f"covariance must have shape (n_samples, d, d), got {matrices.shape}."
            )
        return FORMS["full"](matrices, matrices.shape[1])

    # -------------------------------------------------------------- basics
    def __len__(self):
        return self._values.shape[0]

    def __repr__(self):
        return f"{type(self).__name__}(n={len(self)}, d={self.n_features})"

    @property
    def values(self):
        """The compact values (read-only view)."""
        view = self._values.view()
        view.flags.writeable = False
        return view

    def take(self, rows):
        """Covariances of a subset of rows (index array or slice)."""
        return self._wrap(self._values[rows], self.n_features)

    @staticmethod
    def concatenate(parts):
        """Concatenate the rows of several forms (full rows if the forms differ)."""
        if len({type(p) for p in parts}) != 1:
            parts = [p.as_full() for p in parts]
        return type(parts[0])._concatenate(parts)

    @classmethod
    def _concatenate(cls, parts):
        return cls._wrap(np.concatenate([p._values for p in parts]), parts[0].n_features)

    def as_full(self):
        """The same covariances as full matrices (``FullCovariances``)."""
        return RowCovariances.from_matrices(self.matrices())

    # ---------------------------------------------------------- quantities
    def matrices(self):
        """Dense ``(n, d, d)`` covariance matrices."""
        n, d = len(self), self.n_features
        out = np.zeros((n, d, d))
        idx = np.arange(d)
        out[:, idx, idx] = self._diagonal()
        return out

    def eigenvalues(self):
        """Eigenvalues of each row, ``(n, d)`` (ascending for full rows)."""
        raise NotImplementedError

    def min_eigenvalue(self):
        """Smallest eigenvalue of each row, ``(n,)``."""
        return self.eigenvalues().min(axis=1)

    def max_eigenvalue(self):
        """Largest eigenvalue of each row, ``(n,)``."""
        return self.eigenvalues().max(axis=1)

    def logdet(self):
        """Log-determinant of each row, ``(n,)``."""
        return np.log(self.eigenvalues()).sum(axis=1)

    def precision(self):
        """Dense inverse ``Sigma^-1`` of each row, ``(n, d, d)``."""
        n, d = len(self), self.n_features
        out = np.zeros((n, d, d))
        idx = np.arange(d)
        out[:, idx, idx] = 1.0 / self._diagonal()
        return out

    def sqrt_matrices(self):
        """Symmetric square roots, ``(n, d, d)``."""
        return self.as_full().sqrt_matrices()

    # ------------------------------------------------------------ sampling
    def factor(self, rows):
        """Square-root factor of ``rows`` (a :class:`NoiseFactor`)."""
        return NoiseFactor(np.sqrt(self._values[rows]))

    def whiten(self, rows, delta):
        """``Sigma^(-1/2) delta`` for displacements ``delta`` of shape (r, m, d)."""
        raise NotImplementedError

    def projected_factor(self, rows, projection):
        """Factor of the projected noise ``A e`` of ``rows``.

        For ``e ~ N(0, Sigma)`` and a ``(k, d)`` matrix ``A``, ``A e`` is
        ``N(0, A Sigma A^T)``: the returned factor is the symmetric positive
        semi-definite square root of ``A Sigma A^T``, shape (r, k, k).
        """
        raise NotImplementedError

    # -------------------------------------------------------- affine images
    def scaled(self, scales):
        """The covariances of ``D e`` for ``D = diag(scales)``: ``D Sigma D``."""
        raise NotImplementedError

    def congruence(self, B):
        """The covariances of ``B e`` for a square matrix ``B``: ``B Sigma B^T`` (full)."""
        raise NotImplementedError

    # ------------------------------------------------- whitened coordinates
    def factor_transpose(self, vectors):
        """``L^T x`` for one vector per row, ``(n, d)``: an x-space direction in
        the whitened coordinates of the search (``L`` the noise factor; the
        symmetric root ``Sigma^(1/2)`` for the forms here)."""
        return self.factor(slice(None)).apply_transpose(vectors[:, None, :])[:, 0]

    def inverse_factor_transpose(self, vectors):
        """``L^-T v`` for one whitened vector per row, ``(n, d)``: a whitened
        gradient back in x-space (``Sigma^(-1/2) v`` for a symmetric root)."""
        return self.whiten(slice(None), vectors[:, None, :])[:, 0]

    def rescaled(self, factors):
        """The covariances ``factors[i] * Sigma_i`` (``factors`` of shape (n,), positive)."""
        factors = np.asarray(factors, dtype=np.float64)
        shape = (len(factors),) + (1,) * (self._values.ndim - 1)
        return self._wrap(self._values * factors.reshape(shape), self.n_features)
