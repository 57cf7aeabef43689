"""The storage of a CertificateMemory and its geometric queries.

:class:`RegionStore` keeps certified regions (centre, covariance, precision,
Mahalanobis radius, class code, lower bound) in insertion order, in arrays that
grow geometrically, and answers the exact geometric questions memory-based
certification asks: which stored region first contains a point, which pairs of
regions of different classes intersect, and at what radius a new region would
touch the stored regions of other classes.

Noise on some features. A memory of certificates with ``noise_features``
``S`` stores regions ``{c + P_S^T e : e^T Sigma^-1 e <= r^2}``: full centres
and ``|S| x |S|`` covariances. Two such regions meet only when their centres
agree on every other column, and a point lies in one only when it does too;
every query below compares the other columns exactly and measures distances
in the columns ``S``.
"""


import numpy as np

from .._geometry._ellipsoids import _PREFILTER_SLACK, ellipsoid_separation, touching_scales
from ._memory_io import _label_key, _labels_array

__all__ = ["RegionStore"]


class RegionStore:
    """Certified regions in insertion order, with exact geometric queries (base class)."""

    #: Columns of the regions' noise (None: every column), and the others.
    _features = None
    _others = None

    def _allocate(self, d, capacity, features=None):
        self._d = d
        self._features = None if features is None else np.asarray(features, dtype=np.intp)
        self._others = None if features is None else np.setdiff1d(np.arange(d), self._features)
        k = d if features is None else self._features.size
        self._centers = np.empty((capacity, d))
        self._covs = np.empty((capacity, k, k))
        self._precs = np.empty((capacity, k, k))
        self._radii = np.empty(capacity)
        self._outer = np.empty(capacity)  # r * sqrt(lambda_max)
        self._codes = np.empty(capacity, dtype=np.int64)
        self._plow = np.empty(capacity)

    def _reserve(self, extra):
        need = self._n + extra
        capacity = self._radii.shape[0]
        if need <= capacity:
            return
        new_cap = max(need, 2 * capacity, 16)
        for name in ("_centers", "_covs", "_precs", "_radii", "_outer", "_codes", "_plow"):
            old = getattr(self, name)
            new = np.empty((new_cap,) + old.shape[1:], dtype=old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def _append(self, centers, covs, eigvals, precs, radii, codes, p_lower):
        k = centers.shape[0]
        self._reserve(k)
        sl = slice(self._n, self._n + k)
        self._centers[sl] = centers
        self._covs[sl] = covs
        self._precs[sl] = precs
        self._radii[sl] = radii
        self._outer[sl] = radii * np.sqrt(eigvals[:, -1])
        self._codes[sl] = codes
        self._plow[sl] = p_lower
        self._n += k

    def _adopt_features(self, features):
        """Use the noise columns ``features`` (None: all) of certificates to come.

        An empty memory adopts them; one holding regions of other noise
        columns refuses.
        """
        mine = None if self._features is None else self._features.tolist()
        theirs = None if features is None else np.asarray(features).tolist()
        if mine == theirs:
            return
        if self._n:
            raise ValueError(
                f"this memory holds regions with noise on the columns {mine} "
                f"(noise_features; None: all), got a certificate with noise_features={theirs}; "
                "use one memory per choice of noise_features."
            )
        self._allocate(self._d, 16, features)

    def _noisy(self, diff):
        """``(diff on the noise columns, whether the other columns are all 0)``."""
        if self._features is None:
            return diff, np.ones(diff.shape[:-1], dtype=bool)
        return diff[..., self._features], np.all(diff[..., self._others] == 0, axis=-1)

    def _check_features(self, d):
        if self._d is None:
            self._allocate(int(d), 16)
        elif d != self._d:
            raise ValueError(
                f"this memory holds regions in {self._d} dimensions, got inputs with {d} features."
            )

    def _code(self, label, create):
        key, kind = _label_key(label)
        if self._label_type is not None and kind != self._label_type:
            raise ValueError(
                f"this memory holds {self._label_type} class labels; got {kind} label {label!r}."
            )
        code = self._code_of.get(key)
        if code is None and create:
            code = len(self._classes)
            self._classes.append(key)
            self._code_of[key] = code
            self._label_type = kind
        return -1 if code is None else code

    @staticmethod
    def _readonly(a):
        view = a.view()
        view.flags.writeable = False
        return view

    # ---------------------------------------------------------------- public
    def __len__(self):
        return self._n

    def __repr__(self):
        return (
            f"CertificateMemory(n_regions={self._n}, n_features={self._d}, "
            f"n_classes={len(self._classes)})"
        )

    @property
    def n_features(self):
        return self._d

    @property
    def margin(self):
        return self._margin

    @property
    def centers(self):
        if self._d is None:
            return np.zeros((0, 0))
        return self._readonly(self._centers[: self._n])

    @property
    def covariances(self):
        if self._d is None:
            return np.zeros((0, 0, 0))
        if self._features is not None:
            from ._certificate import embed_matrices

            return self._readonly(embed_matrices(self._covs[: self._n], self._features, self._d))
        return self._readonly(self._covs[: self._n])

    @property
    def noise_features(self):
        """Columns that the stored regions span (None: every column)."""
        return None if self._features is None else self._readonly(self._features)

    @property
    def mahalanobis_radii(self):
        if self._d is None:
            return np.zeros(0)
        return self._readonly(self._radii[: self._n])

    @property
    def p_lower(self):
        if self._d is None:
            return np.zeros(0)
        return self._readonly(self._plow[: self._n])

    @property
    def classes(self):
        return _labels_array(self._classes, self._label_type)

    @property
    def labels(self):
        if self._n == 0:
            return self.classes[:0]
        return self.classes[self._codes[: self._n]]

    # ------------------------------------------------------------- queries
    def _first_containing(self, x):
        """(index, Mahalanobis distance, squared l2 distances) for point ``x``."""
        m = self._n
        diff, same = self._noisy(self._centers[:m] - x)
        sq = np.einsum("ij,ij->i", diff, diff)
        cand = np.flatnonzero(same & (sq <= np.square(self._outer[:m]) * (1.0 + _PREFILTER_SLACK)))
        if cand.size:
            dd = diff[cand]
            maha = np.einsum("kd,kde,ke->k", dd, self._precs[cand], dd)
            hit = np.flatnonzero(maha <= np.square(self._radii[cand]))
            if hit.size:
                k = hit[0]
                return int(cand[k]), float(np.sqrt(max(maha[k], 0.0))), sq
        return -1, np.nan, sq

    def query(self, X, *, chunk_size=65536):
        """Index of the first stored region containing each point.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        chunk_size : int, default=65536
            Largest number of point-region distances held at once.

        Returns
        -------
        index : ndarray of int, shape (n_samples,)
            Position of the first region (in insertion order) whose closed
            ellipsoid contains the point, -1 where none does. The class the
            memory answers is ``labels[index]``.
        """
        if hasattr(X, "toarray") or hasattr(X, "tocsr"):
            raise TypeError("X must be a dense array; sparse matrices are not supported.")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must have shape (n_samples, n_features), got {X.shape}.")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinite values.")
        if self._d is not None:
            self._check_features(X.shape[1])
        out = np.full(X.shape[0], -1, dtype=np.int64)
        if self._n == 0:
            return out
        m = self._n
        step = max(1, int(chunk_size) // m)
        outer2 = np.square(self._outer[:m]) * (1.0 + _PREFILTER_SLACK)
        radii2 = np.square(self._radii[:m])
        for start in range(0, X.shape[0], step):
            block = X[start : start + step]
            diff, same = self._noisy(block[:, None, :] - self._centers[None, :m, :])
            sq = np.einsum("nmd,nmd->nm", diff, diff)
            rows, cols = np.nonzero(same & (sq <= outer2[None, :]))  # row-major: cols ascending per row
            if rows.size == 0:
                continue
            dd = diff[rows, cols]
            maha = np.einsum("kd,kde,ke->k", dd, self._precs[cols], dd)
            hit = maha <= radii2[cols]
            rows, cols = rows[hit], cols[hit]
            first = np.full(block.shape[0], m, dtype=np.int64)
            np.minimum.at(first, rows, cols)
            found = first < m
            out[start : start + block.shape[0]][found] = first[found]
        return out

    # ---------------------------------------------------------- consistency
    def _conflicts(self, start):
        """Pairs ``(i, j)``, ``j < i``, ``i >= start``, of different classes that intersect."""
        m = self._n
        pairs = []
        if m == 0 or start >= m:
            return np.zeros((0, 2), dtype=np.int64)
        centers, outer, codes = self._centers[:m], self._outer[:m], self._codes[:m]
        step = max(1, 65536 // m)
        cand_i, cand_j = [], []
        for lo in range(start, m, step):
            hi = min(m, lo + step)
            diff, same = self._noisy(centers[lo:hi, None, :] - centers[None, :hi, :])
            dist = np.sqrt(np.einsum("ijd,ijd->ij", diff, diff))
            reach = (outer[lo:hi, None] + outer[None, :hi]) * (1.0 + _PREFILTER_SLACK)
            rows = np.arange(lo, hi)[:, None]
            mask = same & (dist <= reach) & (np.arange(hi)[None, :] < rows)
            mask &= codes[lo:hi, None] != codes[None, :hi]
            ii, jj = np.nonzero(mask)
            cand_i.append(ii + lo)
            cand_j.append(jj)
        ii = np.concatenate(cand_i)
        jj = np.concatenate(cand_j)
        if self._features is not None:
            centers = centers[:, self._features]
        for s in range(0, ii.size, 4096):
            a, b = ii[s : s + 4096], jj[s : s + 4096]
            value, _ = ellipsoid_separation(
                centers[a], self._covs[a], self._radii[a], centers[b], self._covs[b], self._radii[b]
            )
            bad = value <= 1.0
            pairs.append(np.stack([a[bad], b[bad]], axis=1))
        if not pairs:
            return np.zeros((0, 2), dtype=np.int64)
        return np.concatenate(pairs).astype(np.int64)

    def conflicts(self):
        """Pairs of stored regions of different classes that intersect.

        Always empty for a memory built with :meth:`add` and :meth:`process`
        (or loaded with :meth:`load`); exact separating-ellipsoid test on the
        pairs whose bounding balls meet.

        Returns
        -------
        pairs : ndarray of int, shape (n_pairs, 2)
            ``(i, j)`` with ``j < i``.
        """
        return self._conflicts(0)

    # ------------------------------------------------------------- growing
    def _touching(self, x, cov, lam_max, code, sq, cap):
        """Smallest touching radius of ``E(x, cov, .)`` over stored regions of other classes.

        Regions whose bounding ball keeps them beyond ``cap`` are skipped
        (their touching radius is ``>= cap``); returns ``inf`` when none is left.
        """
        m = self._n
        dist = np.sqrt(sq)
        outer = self._outer[:m]
        lower = (dist - outer) - _PREFILTER_SLACK * (dist + outer)
        _, same = self._noisy(self._centers[:m] - x)
        mask = same & (lower < cap * np.sqrt(lam_max))
        if code >= 0:
            mask &= self._codes[:m] != code
        cand = np.flatnonzero(mask)
        if cand.size == 0:
            return np.inf
        centers = self._centers[cand]
        if self._features is not None:
            x, centers = x[self._features], centers[:, self._features]
        scales = touching_scales(x, cov, centers, self._covs[cand], self._radii[cand])
        return float(scales.min())
