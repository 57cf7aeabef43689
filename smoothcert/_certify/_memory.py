"""Memory-based certification: sound certificates for data-dependent smoothing.

A certificate of :class:`CertifiedRegion` covers ``g_{Sigma_x}``, the classifier
smoothed with the covariance optimized *for x*; the deployed map
``x -> g_{Sigma_x}(x)`` re-optimizes the covariance at every query, so a
neighbour inside the certified region may be classified differently (Sukenik
et al., 2022). The memory (Alfarra et al., DDRS) makes the deployed classifier
stateful: certified regions are kept in order, a query inside a stored region
is answered with that region's class, and a new region is shrunk until it is
disjoint from every stored region of another class before it is stored.
"""

import numbers

import numpy as np

from ._certificate import Certificate
from ._memory_io import _label_key, _set_labels, _spd_parts, read_npz, validated_parts, write_npz
from ._memory_store import RegionStore
from .._geometry._forms import RowCovariances

__all__ = ["CertificateMemory"]

class CertificateMemory(RegionStore):
    """An ordered store of certified regions that makes certificates sound.

    Data-dependent smoothing (:class:`CertifiedRegion`) optimizes a noise
    covariance ``Sigma_x`` for each input. Its certificate
    (``guarantee="per-covariance"``) says that ``g_{Sigma_x}``, the classifier
    smoothed with *that* covariance, is constant on the ellipsoid
    ``{x + d : d^T Sigma_x^-1 d <= r^2}``. It says nothing about the deployed
    classifier ``x -> g_{Sigma_x}(x)``: a neighbour ``x'`` inside the ellipsoid
    gets its own covariance ``Sigma_{x'}`` and may be classified differently
    (Sukenik et al., 2022).

    The memory (Alfarra et al.) turns the deployed classifier into a stateful
    one whose answers *are* constant on the certified regions. It keeps
    regions ``(center, covariance, mahalanobis radius, class)`` in insertion
    order, and :meth:`process` handles the rows of a certificate one after the
    other:

    1. a query inside a stored region is answered with that region's class
       (the first such region in order; all regions containing a point have
       the same class). Its certificate is the largest ellipsoid of the stored
       shape centred at the query inside that region: covariance
       ``Sigma_j``, radius ``r_j - ||x - c_j||_{Sigma_j}``. Nothing is stored.
    2. otherwise the fresh certificate is used: an abstention stays an
       abstention (nothing is stored); a certified region is shrunk to the
       largest radius that keeps it disjoint from every stored region of
       another class (times ``1 - margin``, so that the regions never even
       touch), then stored.

    After every step, stored regions of different classes are pairwise
    disjoint (checked with the exact separating-ellipsoid criterion, see
    :mod:`smoothcert._geometry._ellipsoids`), so every point of a stored region is
    answered with that region's class by the memory, now and for every later
    query.

    **Which guarantee each result carries.** A certificate returned by
    :meth:`process` has ``guarantee="memory"``: for every certified row, the
    classifier "answer from the memory, else certify afresh and store" gives
    the row's class on the row's whole ellipsoid, for this query and every
    later one, whatever covariance a later query would have optimized. This
    part holds by construction, not with a probability. In addition, each
    stored region lies inside a per-covariance certificate of the smoothed
    classifier ``g_{Sigma_c}`` at its centre ``c``, so with probability at
    least ``1 - alpha`` (per region) the memory's answer on the region agrees
    with that smoothed classifier. The memory's answer at a query may differ
    from ``g_{Sigma_x}(x)`` (the query's own fresh prediction): the stored
    region wins.

    **Order dependence.** The result depends on the order of the queries:
    earlier regions are never changed, later regions are shrunk (or answered
    from the memory) because of them. Processing the same inputs in another
    order gives other certificates, equally consistent (no regions of
    different classes intersect either way). This is why the rows are
    processed one at a time: row ``i`` must see the regions stored by rows
    ``0, ..., i - 1``. Within a row, the work over stored regions is
    vectorized and pruned by bounding balls.

    The memory is explicit and owned by the user: it grows only through
    :meth:`add` and :meth:`process`, and persists with :meth:`save` /
    :meth:`load`. Every region stores a full ``d x d`` covariance, so the
    memory needs ``8 d^2`` bytes per region.

    Certificates with ``noise_features`` (noise on some columns only) cover
    perturbations of those columns, the others fixed. An empty memory takes
    the ``noise_features`` of the first certificate it processes and then
    accepts only certificates with the same ones: its regions are ellipsoids
    in those columns (``covariances`` are zero elsewhere), a query lies in a
    region only when it agrees with its centre on every other column, and
    regions whose centres differ there never meet.

    Parameters
    ----------
    n_features : int, default=None
        Input dimension; inferred from the first region when None.
    margin : float, default=1e-6
        Relative shrinkage applied below the exact touching radius when a new
        region is shrunk, so that stored regions of different classes are
        strictly disjoint despite rounding (with 0 they would touch, and
        closed ellipsoids that touch intersect). In ``(0, 1)``.

    Attributes
    ----------
    centers : ndarray of shape (n_regions, n_features)
        Centre of each stored region, in insertion order.
    covariances : ndarray of shape (n_regions, n_features, n_features)
        SPD shape matrix ``Sigma`` of each region.
    mahalanobis_radii : ndarray of shape (n_regions,)
        Radius ``r`` of each region ``{c + d : d^T Sigma^-1 d <= r^2}``.
    labels : ndarray of shape (n_regions,)
        Class of each region.
    p_lower : ndarray of shape (n_regions,)
        Lower confidence bound of the certificate that created each region
        (NaN when unknown, e.g. added by hand).
    classes : ndarray
        The distinct classes seen, in order of first appearance.
    n_features : int or None
        Input dimension.
    noise_features : ndarray of int or None
        The columns the regions span (those of the certificates' noise), or
        None for every column.

    See Also
    --------
    CertifiedRegion : data-dependent smoothing, whose certificates this makes sound.

    References
    ----------
    .. [1] M. Alfarra, A. Bibi, P. Torr, B. Ghanem. "Data Dependent Randomized
       Smoothing". UAI 2022.
    .. [2] P. Sukenik, A. Kuvshinov, S. Guennemann. "Intriguing Properties of
       Input-Dependent Randomized Smoothing". ICML 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert import Certificate, CertificateMemory
    >>> cert = Certificate(
    ...     center=np.array([[0.0, 0.0], [1.5, 0.0], [0.2, 0.0]]),
    ...     prediction=np.array([0, 1, 1]), abstained=np.array([False, False, False]),
    ...     covariance=[1.0, 1.0, 1.0],
    ...     mahalanobis_radius=np.array([1.0, 1.0, 1.0]),
    ...     p_lower=np.array([0.9, 0.9, 0.9]), alpha=0.001)
    >>> memory = CertificateMemory()
    >>> sound = memory.process(cert)
    >>> sound.guarantee
    'memory'
    >>> sound.prediction        # the third query lies in the first region
    array([0, 1, 0])
    >>> np.round(sound.mahalanobis_radius, 6)   # the second was shrunk to 0.5
    array([1. , 0.5, 0.8])
    >>> len(memory), memory.query([[0.1, 0.1], [1.6, 0.0], [5.0, 5.0]])
    (2, array([ 0,  1, -1]))
    """

    def __init__(self, n_features=None, *, margin=1e-6):
        if n_features is not None:
            if not isinstance(n_features, numbers.Integral) or n_features < 1:
                raise ValueError(f"n_features must be a positive integer, got {n_features!r}.")
            n_features = int(n_features)
        margin = float(margin)
        if not (0.0 < margin < 1.0):
            raise ValueError(f"margin must be in (0, 1), got {margin!r}.")
        self._margin = margin
        self._n = 0
        self._d = None
        self._classes = []
        self._code_of = {}
        self._label_type = None
        if n_features is not None:
            self._allocate(n_features, 16)

    # ---------------------------------------------------------------- storage
    def add(self, center, covariance, mahalanobis_radius, label, *, p_lower=np.nan):
        """Store one or several regions as they are, after checking them.

        Parameters
        ----------
        center : array-like of shape (n_features,) or (k, n_features)
        covariance : array-like of shape (n_features, n_features) or (k, n_features, n_features)
            SPD shape matrices.
        mahalanobis_radius : float or array-like of shape (k,)
            Strictly positive radii.
        label : label or array-like of shape (k,)
            Class of each region (strings or numbers, one type per memory).
        p_lower : float or array-like of shape (k,), default=nan
            Lower confidence bound of the certificate behind each region, in
            [0, 1], or NaN when unknown.

        Returns
        -------
        self : CertificateMemory

        Raises
        ------
        ValueError
            On invalid input, or when a new region would intersect a stored
            (or another new) region of a different class: the memory is then
            left unchanged.
        """
        center = np.asarray(center, dtype=np.float64)
        single = center.ndim == 1
        centers = np.atleast_2d(center)
        if centers.ndim != 2:
            raise ValueError(f"center must have shape (d,) or (k, d), got {center.shape}.")
        k, d = centers.shape
        covs = np.asarray(covariance, dtype=np.float64)
        if single:
            covs = covs[None]
        s = d if self._features is None or d != self._d else self._features.size
        if covs.shape != (k, s, s):
            raise ValueError(
                f"covariance must have shape ({k}, {s}, {s})"
                + ("" if s == d else f" (the memory's noise_features {self._features.tolist()})")
                + f", got {covs.shape}."
            )
        radii = np.broadcast_to(np.asarray(mahalanobis_radius, dtype=np.float64), (k,)).copy()
        p_low = np.broadcast_to(np.asarray(p_lower, dtype=np.float64), (k,)).copy()
        if single or np.ndim(label) == 0:
            labels = [label] * k
        else:
            labels = list(np.asarray(label, dtype=object).reshape(-1))
        if len(labels) != k:
            raise ValueError(f"label must have {k} entries, got {len(labels)}.")
        if not (np.all(np.isfinite(centers)) and np.all(np.isfinite(covs))):
            raise ValueError("center and covariance must be finite.")
        if not np.all(np.isfinite(radii) & (radii > 0)):
            raise ValueError("mahalanobis_radius must be finite and strictly positive.")
        if np.any(~np.isnan(p_low) & ~((p_low >= 0) & (p_low <= 1))):
            raise ValueError("p_lower must be in [0, 1] or NaN.")
        covs, eigvals, precs = _spd_parts(covs)
        keys = [_label_key(lab) for lab in labels]
        kinds = {kind for _, kind in keys} | ({self._label_type} - {None})
        if len(kinds) > 1:
            raise ValueError("class labels must be all strings or all numbers.")
        self._check_features(d)
        # tentative append, rolled back on conflict
        state = (self._n, list(self._classes), dict(self._code_of), self._label_type)
        codes = np.array([self._code(lab, create=True) for lab in labels], dtype=np.int64)
        self._append(centers, covs, eigvals, precs, radii, codes, p_low)
        bad = self._conflicts(state[0])
        if bad.size:
            self._n, self._classes, self._code_of, self._label_type = state
            i, j = bad[0]
            raise ValueError(
                f"new region {i - state[0]} intersects region {j} of another class; "
                "regions of different classes must be disjoint (use process() to shrink it)."
            )
        return self

    def process(self, certificate):
        """Make a per-covariance certificate sound, row by row, updating the memory.

        Rows are processed in order (row ``i`` sees the regions stored by
        rows ``0..i-1``):

        - a row inside a stored region gets that region's class, covariance
          ``Sigma_j`` and radius ``r_j - ||x - c_j||_{Sigma_j}`` (the largest
          ellipsoid of that shape around ``x`` inside the region); nothing is
          stored;
        - else an abstaining row abstains; a certified row's radius is cut to
          ``min(r, (1 - margin) s*)``, ``s*`` the exact radius at which its
          ellipsoid would touch a stored region of another class, and the
          region is stored (an empty region abstains).

        Parameters
        ----------
        certificate : Certificate
            Certificates of the inputs, in query order (e.g. from
            ``CertifiedRegion.certify``). Not modified.

        Returns
        -------
        certificate : Certificate
            A new certificate with ``guarantee="memory"``; every other field
            of the input is kept. Its covariances are full matrices when some
            row was answered from the memory (else those of the input). Its
            fields ``from_memory`` (answered from a stored region),
            ``memory_index`` (the stored region that answered the row, or the
            index under which the row was stored; -1 for abstentions) and
            ``shrunk`` (the fresh radius was reduced) are set.

        Raises
        ------
        ValueError
            When the certificate's dimension or label type (strings or
            numbers) differs from the memory's; the memory is then unchanged.
        """
        if not isinstance(certificate, Certificate):
            raise TypeError(f"process expects a Certificate, got {type(certificate).__name__}.")
        n, d = len(certificate), certificate.n_features
        if self._d is not None and d != self._d:
            self._check_features(d)  # raises
        # check the label type up front, so that a mismatch leaves the memory unchanged
        kinds = {_label_key(lab)[1] for lab in certificate.prediction.tolist()}
        kinds |= {self._label_type} - {None}
        if len(kinds) > 1:
            raise ValueError(
                "the certificate's predictions and the memory's class labels must be "
                f"all strings or all numbers; found {sorted(kinds)}."
            )
        self._check_features(d)
        self._adopt_features(certificate.noise_features)
        X = certificate.center
        pred = certificate.prediction
        fresh_r = certificate.mahalanobis_radius
        covs_in = certificate.covariances
        out_r = np.where(certificate.abstained, 0.0, fresh_r)
        out_abst = certificate.abstained.copy()
        out_p = certificate.p_lower.copy()
        from_memory = np.zeros(n, dtype=bool)
        shrunk = np.zeros(n, dtype=bool)
        index = np.full(n, -1, dtype=np.int64)
        mem_rows, mem_labels = [], []
        keep = 1.0 - self._margin

        for i in range(n):
            x = X[i]
            if self._n:
                j, dist, sq = self._first_containing(x)
            else:
                j, dist, sq = -1, np.nan, np.zeros(0)
            if j >= 0:
                from_memory[i] = True
                index[i] = j
                out_abst[i] = False
                out_r[i] = max(self._radii[j] - dist, 0.0)
                out_p[i] = self._plow[j]
                mem_rows.append(i)
                mem_labels.append(self._classes[self._codes[j]])
                continue
            if certificate.abstained[i] or not fresh_r[i] > 0:
                out_abst[i], out_r[i] = True, 0.0
                continue
            cov = covs_in.take([i]).matrices()[0]
            cov, eigvals, prec = _spd_parts(cov[None])
            code = self._code(pred[i], create=False)
            radius = fresh_r[i]
            if self._n:
                # regions with a touching radius >= radius / keep need no exact test
                touch = self._touching(x, cov[0], eigvals[0, -1], code, sq, radius / keep)
                radius = min(radius, keep * touch)
                shrunk[i] = radius < fresh_r[i]
            if not radius > 0:
                out_abst[i], out_r[i] = True, 0.0
                continue
            code = self._code(pred[i], create=True)
            index[i] = self._n
            self._append(x[None], cov, eigvals, prec, np.array([radius]), [code], out_p[i])
            out_r[i] = radius

        if mem_rows:
            mats = covs_in.matrices()
            mats[mem_rows] = self._covs[index[mem_rows]]
            covariances = RowCovariances.from_matrices(mats)
            prediction = _set_labels(pred, mem_rows, mem_labels)
        else:
            covariances = covs_in
            prediction = pred.copy()
        return certificate._replace(
            center=X.copy(),
            prediction=prediction,
            abstained=out_abst,
            covariance=covariances,
            mahalanobis_radius=out_r,
            p_lower=out_p,
            guarantee="memory",
            from_memory=from_memory,
            memory_index=index,
            shrunk=shrunk,
        )

    # ------------------------------------------------------------ save / load
    def save(self, path):
        """Write the memory to a numpy ``.npz`` file (no pickle).

        Parameters
        ----------
        path : str or path-like or file-like
            Written as given (no ``.npz`` suffix is appended).
        """
        write_npz(self, path)

    @classmethod
    def load(cls, path):
        """Read a memory written by :meth:`save`, validating everything.

        Parameters
        ----------
        path : str or path-like or file-like

        Returns
        -------
        memory : CertificateMemory

        Raises
        ------
        ValueError
            When the file is not a readable ``.npz`` archive, misses keys, or
            holds arrays of wrong type or shape, non-finite values, radii
            that are not strictly positive, covariances that are not SPD,
            invalid labels, or regions of different classes that intersect.
        """
        data = read_npz(path)
        try:
            return cls._from_arrays(data)
        except ValueError as exc:
            raise ValueError(f"Invalid certificate memory file {path!r}: {exc}") from exc

    @classmethod
    def _from_arrays(cls, data):
        parts = validated_parts(data)
        if parts["n_features"] is None:
            return cls(margin=parts["margin"])
        memory = cls(n_features=parts["n_features"], margin=parts["margin"])
        if parts["noise_features"] is not None:
            memory._allocate(parts["n_features"], 16, parts["noise_features"])
        keys = parts["classes"]
        memory._classes = keys
        memory._code_of = {key: i for i, key in enumerate(keys)}
        memory._label_type = parts["label_type"]
        m = parts["m"]
        if m:
            memory._reserve(m)
            memory._append(
                parts["centers"], parts["covariances"], parts["eigenvalues"],
                parts["precisions"], parts["radii"], parts["codes"], parts["p_lower"],
            )
            bad = memory._conflicts(0)
            if bad.size:
                i, j = bad[0]
                raise ValueError(
                    f"regions {j} and {i} have different classes and intersect "
                    f"({len(bad)} such pair(s)); the memory is inconsistent."
                )
        return memory
