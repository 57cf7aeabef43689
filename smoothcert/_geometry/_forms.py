"""Covariance forms: one class per way of storing a batch of noise covariances.

A form holds one Gaussian noise covariance per input in the cheapest exact
representation and knows everything the rest of the library asks of it:

* **storage** -- ``values``, ``take``, ``concatenate``, ``matrices``;
* **spectrum** -- eigenvalues, their bounds, log-determinant;
* **sampling** -- a square-root :class:`NoiseFactor` (``e = Sigma^(1/2) z``
  with the *symmetric* root, so that standard normals ``z`` are the whitened
  coordinates of the search), whitening, the factor of a linear image;
* **affine images** -- ``scaled`` (``D Sigma D``), ``congruence``
  (``B Sigma B^T``) and the precision, for the pull-back through pipelines;
* **the search** -- a parametrization (log-variances, or the matrix itself),
  its Fisher-Rao norm and step, the projection of whitened tangent vectors
  (outer-product moments of the gradient estimators, spectral gradients of the
  objective's shape term) onto the form's tangent space, and how a stage starts
  from the previous stage's optimum.

The forms are :class:`IsotropicCovariances` (``sigma_i^2 I``),
:class:`DiagonalCovariances` (``diag(s_i^2)``) and :class:`FullCovariances`
(SPD matrices). Adding a form is adding one subclass of
:class:`RowCovariances`; it registers itself under its ``kind``.
"""

import numpy as np

from ._fisher_rao import clamp_eigenvalues, exp_whitened, fisher_rao_norm_whitened
from ._linalg import check_spd, psd_sqrt, spd_power, spectral, symmetrize

__all__ = [
    "RowCovariances",
    "IsotropicCovariances",
    "DiagonalCovariances",
    "FullCovariances",
    "NoiseFactor",
    "FORMS",
    "spectral",
]

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
        return IsotropicCovariances(np.atleast_1d(variances), n_features)

    @staticmethod
    def from_matrices(matrices):
        """Build full rows from an ``(n, d, d)`` array of SPD matrices."""
        matrices = np.asarray(matrices, dtype=np.float64)
        if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2]:
            raise ValueError(
                f"covariance must have shape (n_samples, d, d), got {matrices.shape}."
            )
        return FullCovariances(matrices, matrices.shape[1])

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
        """The same covariances as :class:`FullCovariances`."""
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

    # ---------------------------------------------------------- the search
    @classmethod
    def from_parameters(cls, theta, n_features):
        """The form whose search parameters are ``theta`` (see :meth:`parameters_from`)."""
        return cls(np.exp(theta), n_features)

    @classmethod
    def parameters_from(cls, previous, theta, n_features):
        """Search parameters of this form at the optimum of the previous stage.

        ``previous`` is the previous stage's form class and ``theta`` its
        parameters; ``None`` and log-variances (n,) start a first stage.
        """
        raise NotImplementedError

    @classmethod
    def bounds(cls, floor_log, cap_log):
        """Per-row bounds of the parameters from log-variance floor and cap, ``(n,)`` each."""
        return floor_log, cap_log

    @classmethod
    def tangent_shape(cls, n_features):
        """Shape of one row's whitened tangent vector (the search's step)."""
        raise NotImplementedError

    @classmethod
    def norm(cls, tangent, n_features):
        """Fisher-Rao norm of a whitened tangent vector of this form."""
        raise NotImplementedError

    @classmethod
    def step(cls, theta, direction, low, high):
        """Parameters after a step ``direction`` (whitened tangent), kept within bounds."""
        raise NotImplementedError

    def spectral_tangent(self, a, c, scale_derivative):
        """A whitened tangent ``a I + U diag(c) U^T`` projected on this form.

        ``U`` diagonalizes the covariance; this is the Fisher-Rao gradient of
        a spectral function whose derivatives along ``log s_i`` (``s_i`` the
        noise scales) are ``a + c_i``. ``scale_derivative`` (n,) is the exact
        derivative along the log of a common scale, for forms whose tangent
        holds only that direction.
        """
        raise NotImplementedError

    @staticmethod
    def score_moment(centred, z):
        """Projection of ``mean[(h - mean h)(z z^T - I)]`` on the tangent.

        ``centred`` (r, m) are the centred objective values and ``z`` (r, m, d)
        the whitened draws (the score-function natural gradient).
        """
        raise NotImplementedError

    @staticmethod
    def pathwise_moment(grad_z, z):
        """Projection of ``sym(mean[grad_z h  z^T])`` on the tangent (pathwise gradient)."""
        raise NotImplementedError


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
        return DiagonalCovariances(self._values[:, None] * scales**2, self.n_features)

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
    def step(cls, theta, direction, low, high):
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
        if previous is not IsotropicCovariances:
            raise ValueError("the diagonal form starts from the isotropic one")
        return np.repeat(theta[:, None], n_features, axis=1)

    @classmethod
    def tangent_shape(cls, n_features):
        return (n_features,)

    @classmethod
    def norm(cls, tangent, n_features):
        return np.sqrt(0.5 * np.square(tangent).sum(axis=1))

    @classmethod
    def step(cls, theta, direction, low, high):
        return np.clip(theta + direction, low[:, None], high[:, None])

    def spectral_tangent(self, a, c, scale_derivative):
        return a[:, None] + c

    @staticmethod
    def score_moment(centred, z):
        return np.einsum("rm,rmd->rd", centred, np.square(z) - 1.0) / z.shape[1]

    @staticmethod
    def pathwise_moment(grad_z, z):
        return np.einsum("rmd,rmd->rd", grad_z, z) / z.shape[1]


class FullCovariances(RowCovariances):
    """SPD matrices ``(n, d, d)`` per row, with their eigendecomposition.

    Search parameters: the matrices themselves, moved by the Fisher-Rao
    exponential map.
    """

    kind = "full"
    values_ndim = 3

    def __init__(self, values, n_features):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 3 and values.shape[1] == n_features != values.shape[2]:
            raise ValueError(f"covariance matrices must be square, got {values.shape[1:]}.")
        super().__init__(values, n_features)

    def _validated(self, values):
        symmetric, eigvals, eigvecs = check_spd(values)
        self._eig = (eigvals, eigvecs)
        return symmetric

    def take(self, rows):
        return self._wrap(
            self._values[rows], self.n_features, _eig=(self._eig[0][rows], self._eig[1][rows])
        )

    @classmethod
    def _concatenate(cls, parts):
        return cls._wrap(
            np.concatenate([p._values for p in parts]),
            parts[0].n_features,
            _eig=(
                np.concatenate([p._eig[0] for p in parts]),
                np.concatenate([p._eig[1] for p in parts]),
            ),
        )

    def as_full(self):
        return self

    def matrices(self):
        return self._values.copy()

    @property
    def eigenvectors(self):
        """Eigenvectors of each row, ``(n, d, d)`` (columns, ascending eigenvalues)."""
        return self._eig[1]

    def eigenvalues(self):
        return self._eig[0].copy()

    def min_eigenvalue(self):
        return self._eig[0][:, 0].copy()

    def max_eigenvalue(self):
        return self._eig[0][:, -1].copy()

    def logdet(self):
        return np.log(self._eig[0]).sum(axis=1)

    def precision(self):
        return spd_power(None, -1, eig=self._eig)

    def sqrt_matrices(self):
        w, v = self._eig
        return spectral(v, np.sqrt(w))

    def factor(self, rows):
        w, v = self._eig[0][rows], self._eig[1][rows]
        return NoiseFactor(spectral(v, np.sqrt(w)))

    def whiten(self, rows, delta):
        w, v = self._eig[0][rows], self._eig[1][rows]
        return delta @ spd_power(None, -0.5, eig=(w, v))  # symmetric

    def projected_factor(self, rows, projection):
        a = np.asarray(projection, dtype=np.float64)
        return NoiseFactor(psd_sqrt(a @ self._values[rows] @ a.T))

    def scaled(self, scales):
        full = self._values * scales[None, :, None] * scales[None, None, :]
        return RowCovariances.from_matrices(symmetrize(full))

    def congruence(self, B):
        full = np.einsum("ij,njl,kl->nik", B, self._values, B)
        return RowCovariances.from_matrices(symmetrize(full))

    @classmethod
    def from_parameters(cls, theta, n_features):
        return cls(theta, n_features)

    @classmethod
    def parameters_from(cls, previous, theta, n_features):
        if previous is None:
            raise ValueError("the full form starts from a previous stage")
        return previous.from_parameters(theta, n_features).matrices()

    @classmethod
    def bounds(cls, floor_log, cap_log):
        return np.exp(floor_log), np.exp(cap_log)

    @classmethod
    def tangent_shape(cls, n_features):
        return (n_features, n_features)

    @classmethod
    def norm(cls, tangent, n_features):
        return fisher_rao_norm_whitened(tangent)

    @classmethod
    def step(cls, theta, direction, low, high):
        # No useful step changes a variance by more than the whole allowed
        # range (the clamp undoes the excess): cap the spectral norm of the
        # whitened step there, so that expm cannot overflow whatever the
        # learning rate. Ordinary steps are far below the cap.
        limit = np.log(np.asarray(high) / np.asarray(low)) + 1.0
        largest = np.abs(np.linalg.eigvalsh(direction)).max(axis=-1)
        shrink = np.where(largest > limit, limit / np.where(largest > limit, largest, 1.0), 1.0)
        moved = exp_whitened(theta, direction * shrink[:, None, None])
        return clamp_eigenvalues(moved, low, high)

    def spectral_tangent(self, a, c, scale_derivative):
        return a[:, None, None] * np.eye(self.n_features) + spectral(self._eig[1], c)

    @staticmethod
    def score_moment(centred, z):
        return np.swapaxes(z * centred[:, :, None], 1, 2) @ z / z.shape[1]

    @staticmethod
    def pathwise_moment(grad_z, z):
        g = np.swapaxes(grad_z, 1, 2) @ z / z.shape[1]
        return symmetrize(g)
