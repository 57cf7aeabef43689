"""The covariance family and the smoothed selector of ``guarantee="deployed"``.

A :class:`CertifiedRegion` with ``guarantee="deployed"`` smooths each input
with one covariance of a finite *family* fitted in ``fit``; which one is
chosen by a *selector*, a classifier from inputs to family members that is
itself randomized-smoothed with isotropic noise. This module builds the family
(prototypes of the covariances the search finds on training inputs), labels
training inputs with their best member, and fits the selector. It draws
nothing itself: the search and the Monte-Carlo counts run through the one
engine, with the stream tag :data:`~smoothcert._engine._streams.STAGE_FAMILY`.
"""

import numpy as np
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestClassifier

from .._certify._procedures import count_votes
from .._certify._stats import clopper_pearson_lower, mahalanobis_radius
from .._engine._streams import row_keys
from .._geometry._forms import RowCovariances

__all__ = [
    "BASE_SHARE",
    "LABEL_MARGIN",
    "SELECTION_QUANTILE",
    "SELECTION_SHARE",
    "base_member",
    "base_prototype",
    "choose_prototypes",
    "default_selector",
    "family_ratios",
    "fit_selector",
    "label_inputs",
    "member_levels",
    "training_subset",
]

#: Share of ``alpha`` spent on the selector's certificates (split evenly over
#: its ``K - 1`` thresholds); the members' class certificates get the rest
#: (see :data:`BASE_SHARE`). Union bound: the region fails with probability
#: at most ``alpha``.
SELECTION_SHARE = 0.1

#: Share of ``alpha`` of the base member ``sigma^2 I``'s class certificate;
#: the other members split ``1 - SELECTION_SHARE - BASE_SHARE`` evenly. The
#: base member certifies most inputs near decision boundaries, where the
#: deployed certificate is held to Cohen et al.'s at the same ``sigma``.
BASE_SHARE = 0.8


def member_levels(prototypes, sigma, alpha):
    """The level of each member's class certificate (they sum to ``alpha (1 - SELECTION_SHARE)``)."""
    K = len(prototypes)
    if K == 1:
        return np.array([float(alpha)])
    base = base_member(prototypes, sigma)
    levels = np.full(K, float(alpha) * (1.0 - SELECTION_SHARE - BASE_SHARE) / (K - 1))
    levels[base] = float(alpha) * BASE_SHARE
    return levels


def base_member(prototypes, sigma):
    """Index of the member ``sigma^2 I`` (the member nearest to it in smallest eigenvalue)."""
    return int(np.argmin(np.abs(np.log(prototypes.min_eigenvalue()) - 2.0 * np.log(sigma))))

#: The deployed member is the lower ``SELECTION_QUANTILE``-quantile of the
#: smoothed selector's members (ordered by smallest eigenvalue): the smallest
#: ``k`` with ``P(h <= k) >= SELECTION_QUANTILE``. Below 1/2 it favours the
#: least noise, left only where the selector is confident, which widens the
#: certified selection balls of the small members near decision boundaries.
SELECTION_QUANTILE = 0.1

#: A training input is labelled with the member ``sigma^2 I`` unless another
#: member's expected certified l2 radius beats it by more than this relative
#: margin (then with the best member). Near ties (most inputs close to a
#: decision boundary) thus keep the labels of a region constant, which is what
#: lets the smoothed selector certify balls there.
LABEL_MARGIN = 0.05


def training_subset(X, n_rows):
    """Indices of at most ``n_rows`` distinct rows of ``X``, chosen by their content.

    The rows are ordered by a hash of their bytes, so the subset does not
    depend on the order of the training rows; duplicates are taken once.
    """
    keys = row_keys(X)
    _, first = np.unique(keys, axis=0, return_index=True)
    order = first[np.lexsort(keys[first].T[::-1])]
    return np.sort(order[:n_rows])


def base_prototype(form, sigma, n_features):
    """``sigma^2 I`` written in the compact form of ``form`` (one row)."""
    variance = float(sigma) ** 2
    kind = form.kind
    if kind == "isotropic":
        return RowCovariances.isotropic([variance], n_features)
    if kind == "diagonal":
        return RowCovariances.create("diagonal", np.full((1, n_features), variance), n_features)
    if kind == "lowrank":
        values = np.zeros((1, n_features, form.values.shape[2]))
        values[:, :, 0] = variance
        return RowCovariances.create("lowrank", values, n_features)
    return RowCovariances.from_matrices(variance * np.eye(n_features)[None])


def _features(covariances):
    """One feature vector per row, on which the prototypes are clustered."""
    kind = covariances.kind
    if kind == "isotropic":
        return np.log(covariances.values)[:, None]
    if kind == "diagonal":
        return np.log(covariances.values)
    d = covariances.n_features
    if kind == "full" and d <= 32:
        # the matrix logarithm (log-Euclidean coordinates), upper triangle
        w, v = np.linalg.eigh(covariances.matrices())
        log = (v * np.log(w)[:, None, :]) @ np.swapaxes(v, 1, 2)
        rows, cols = np.triu_indices(d)
        return log[:, rows, cols]
    return np.column_stack([
        np.log(covariances.min_eigenvalue()),
        covariances.logdet() / d,
        np.log(covariances.max_eigenvalue()),
    ])


def choose_prototypes(covariances, n_prototypes, sigma, random_state):
    """The family: ``sigma^2 I`` and up to ``n_prototypes - 1`` searched covariances.

    The searched covariances are clustered (k-means on their log-scales, or
    log-Euclidean coordinates for small full matrices) and each cluster is
    represented by its medoid, the member nearest to its mean: a covariance
    the search actually found, in the search's own compact form.

    Returns
    -------
    prototypes : RowCovariances
        ``sigma^2 I`` and the medoids, ordered by smallest eigenvalue (the
        order of the selector's median).
    """
    d = covariances.n_features
    base = base_prototype(covariances, sigma, d)
    n_clusters = min(int(n_prototypes) - 1, len(covariances))
    if n_clusters < 1:
        return base
    features = _features(covariances)
    distinct = np.unique(np.round(features, 12), axis=0).shape[0]
    n_clusters = min(n_clusters, distinct)
    km = KMeans(n_clusters=n_clusters, n_init=4, random_state=random_state).fit(features)
    medoids = []
    for c in range(n_clusters):
        members = np.flatnonzero(km.labels_ == c)
        dist = np.square(features[members] - km.cluster_centers_[c]).sum(axis=1)
        medoids.append(members[np.argmin(dist)])
    family = RowCovariances.concatenate([base, covariances.take(np.asarray(medoids))])
    return family.take(np.argsort(family.min_eigenvalue(), kind="stable"))


def label_inputs(adapter, X, prototypes, *, sigma, n_draws, n_samples, alpha, vote, seed, stage,
                 batch_size):
    """Index of the best family member for each row of ``X``.

    Each member is scored by the l2 radius CERTIFY would give with
    ``n_samples`` draws at level ``alpha`` if their top-class frequency were
    ``p_top``, read on ``n_draws`` draws of that member at the row:
    ``sqrt(lambda_min) * Phi^-1(CP_alpha(p_top n_samples, n_samples))``
    (the Clopper-Pearson bound costs more at a moderate ``p_top``, so large
    noise wins only where it pays).
    The label is the best-scoring member where it beats the member
    ``sigma^2 I`` by more than :data:`LABEL_MARGIN` (relative), else that
    member.

    Returns
    -------
    labels : ndarray of int, shape (n,)
    scores : ndarray of shape (n, n_members)
    """
    n, k = X.shape[0], len(prototypes)
    members = np.tile(np.arange(k), n)
    rows = np.repeat(np.arange(n), k)
    counts, _ = count_votes(
        adapter, X[rows], prototypes.take(members), n_draws, seed=seed, stage=stage,
        vote=vote, batch_size=batch_size,
    )
    freq = counts / float(n_draws)
    p_top = freq.max(axis=1)
    # the bound CERTIFY would give if its n_samples draws had the frequency p_top
    p_cert = clopper_pearson_lower(np.rint(p_top * n_samples), n_samples, alpha)
    scores = mahalanobis_radius(p_cert) * np.sqrt(prototypes.min_eigenvalue()[members])
    scores = scores.reshape(n, k)
    base = base_member(prototypes, sigma)
    best = np.argmax(scores, axis=1)
    rows = np.arange(n)
    switch = scores[rows, best] > (1.0 + LABEL_MARGIN) * scores[:, base]
    labels = np.where(switch, best, base)
    return labels, scores


def default_selector(random_state):
    """The selector used when ``selector=None``: a small random forest."""
    return RandomForestClassifier(n_estimators=25, min_samples_leaf=5, random_state=random_state)


def fit_selector(selector, X, labels, random_state):
    """A fitted clone of ``selector`` (``None``: :func:`default_selector`) on ``(X, labels)``."""
    model = default_selector(random_state) if selector is None else clone(selector)
    return model.fit(X, labels)


def family_ratios(family):
    """``ratio[j, k] = lambda_max(Sigma_k^-1 Sigma_j)`` for every pair of members.

    ``t`` times the ellipsoid ``(Sigma_j, r_j)`` lies inside ``(Sigma_k, r_k)``
    exactly when ``t r_j sqrt(ratio[j, k]) <= r_k``.
    """
    K = len(family)
    if family.kind == "isotropic":
        v = family.values
        return v[:, None] / v[None, :]
    if family.kind == "diagonal":
        v = family.values
        return (v[:, None, :] / v[None, :, :]).max(axis=2)
    from scipy.linalg import eigh

    matrices = family.matrices()
    ratio = np.ones((K, K))
    for j in range(K):
        for k in range(K):
            if j != k:
                ratio[j, k] = eigh(matrices[j], matrices[k], eigvals_only=True)[-1]
    return ratio
