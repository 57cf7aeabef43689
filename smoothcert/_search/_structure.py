"""The structured natural gradient and the split step of the covariance search.

Near a decision boundary that is locally flat, the natural gradient of the
smoothed probability is, in whitened coordinates, ``c_par u u^T + c_perp
(I - u u^T)``: one direction ``u`` (the whitened boundary normal) and an
isotropic rest. A Monte-Carlo estimate ``W`` of the full ``d x d`` matrix
from a few hundred draws is mostly noise in the ``d (d + 1) / 2 - 2`` other
coordinates, and its eigenvectors do not find ``u`` once few draws fail. So
the search

* estimates the normal by a **path**: the running sum, over iterations and
  stages, of the first-moment estimates of ``grad_x psi_A`` (an ``O(d)``
  statistic with signal wherever a draw fails; the analogue of CMA-ES's
  evolution path), mapped to whitened coordinates ``u = L^T p / |L^T p|``;
* projects ``W`` on that structure, ``W_s = c_perp I + (c_par - c_perp) u u^T``
  with ``c_par = u^T W u`` and ``c_perp = (tr W - c_par) / (d - 1)`` (both
  ``O(d)`` per draw), and follows ``W_s + blend (W - W_s)``;
* **splits** each step: the part along ``u`` (where the gap and the
  inscribed-ball terms pull in opposite directions and would take the whole
  Fisher-Rao length) and the rest are normalized separately.

The functions here are the per-form pieces of that: the tangent of each form
(a scalar, a vector of log-variance moves, a symmetric matrix, or a
:class:`~smoothcert._geometry._forms.LowRankTangent`), its linear
combinations, and its split.
"""

import numpy as np

from .._geometry._forms import LowRankTangent

__all__ = ["path_direction", "step_basis", "structured_tangent", "combine", "split_step"]

_TINY = 1e-300
#: Smallest part (of a unit vector) off the span of the previous basis columns
#: for a shrink direction of the low-rank form to enter the step's basis.
LIVE_DIRECTION = 0.3
# Reductions are written as matrix products or two-operand sums: a
# three-operand einsum reduces a batch of one row in another order than the
# same row among others, and results must not depend on the batch.


def _unit(vectors):
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.where(norm > _TINY, vectors / np.where(norm > _TINY, norm, 1.0), 0.0)


def path_direction(covariances, path):
    """Whitened unit direction ``u = L^T p / |L^T p|`` of the x-space path ``p`` (n, d).

    Rows with no path yet (no failing draw so far) get the first axis; their
    structured estimate then carries no direction information, only the trace.
    """
    u = _unit(covariances.factor_transpose(path))
    empty = ~np.any(u != 0, axis=1)
    if np.any(empty):
        u = u.copy()
        u[empty, 0] = 1.0
    return u


def step_basis(covariances, u):
    """Per-row orthonormal basis on which the search measures ``W B`` (n, d, m), or None.

    ``u`` alone for the diagonal and full forms; ``[u, P]`` for the low-rank
    form (``P`` its current shrink directions, in the whitened frame of its
    factor), orthonormalized with ``u`` first.
    """
    kind = covariances.kind
    if kind == "isotropic":
        return None
    if kind != "lowrank":
        return u[:, :, None]
    P, s = covariances._svd()
    q, r = np.linalg.qr(np.concatenate([u[:, :, None], P], axis=2))
    # a column whose direction is (nearly) spanned by the previous ones, or a
    # dead direction of P, is zeroed: its new part would be a direction of
    # noise (an old shrink direction a few degrees off u), and the W estimated
    # along it would take the step's length
    live = np.abs(np.diagonal(r, axis1=1, axis2=2)) > LIVE_DIRECTION
    return q * live[:, None, :]


def structured_tangent(covariances, stats, basis, blend):
    """``W_s + blend (W - W_s)`` on the form's tangent, from the search statistics.

    ``W_s`` keeps ``B^T W B`` on the basis and the mean of the rest of the
    spectrum, ``c_perp = (tr W - tr B^T W B) / (d - m)``, on its complement.
    """
    kind, d = covariances.kind, covariances.n_features
    tr = stats["tr"]
    blend = np.broadcast_to(np.asarray(blend, dtype=np.float64), tr.shape)
    mixed = bool(np.any(blend > 0))
    if kind == "isotropic":
        return tr / d
    B = basis
    block = np.swapaxes(B, 1, 2) @ stats["WB"]
    block = 0.5 * (block + np.swapaxes(block, 1, 2))
    m_eff = np.einsum("ndm,ndm->n", B, B)  # live columns
    c_perp = (tr - np.einsum("nii->n", block)) / np.maximum(d - m_eff, 1.0)
    rest = block - c_perp[:, None, None] * np.eye(block.shape[1])[None]
    rest = rest * (np.einsum("ndm->nm", B * B)[:, :, None] * np.einsum("ndm->nm", B * B)[:, None, :])
    if kind == "diagonal":
        diag_s = c_perp[:, None] + ((B @ rest) * B).sum(axis=2)
        if mixed:
            diag_s = diag_s + blend[:, None] * (stats["diag"] - diag_s)
        return diag_s
    if kind == "full":
        Ws = c_perp[:, None, None] * np.eye(d)[None] + B @ rest @ np.swapaxes(B, 1, 2)
        if mixed:
            Ws = Ws + blend[:, None, None] * (stats["moment"] - Ws)
        return Ws
    if kind == "lowrank":
        diag = np.repeat(c_perp[:, None], d, axis=1)
        if mixed:
            diag_s = c_perp[:, None] + ((B @ rest) * B).sum(axis=2)
            diag = diag + blend[:, None] * (stats["diag"] - diag_s)
        return LowRankTangent(diag, B, rest)
    raise ValueError(f"no structured tangent for the {kind} form")


def combine(a, first, b, second):
    """``a * first + b * second`` per row (``a``, ``b`` of shape (n,))."""
    if isinstance(first, LowRankTangent):
        return first.scaled(a) + second.scaled(b)
    expand = (slice(None),) + (None,) * (np.ndim(first) - 1)
    return a[expand] * first + b[expand] * second


def _fr_norm(kind, tangent, d):
    if kind == "isotropic":
        return np.sqrt(0.5 * d) * np.abs(tangent)
    if kind == "diagonal":
        return np.sqrt(0.5 * np.square(tangent).sum(axis=1))
    if kind == "full":
        return np.sqrt(0.5 * np.einsum("nij,nij->n", tangent, tangent))
    return tangent.norm()


def split_step(kind, tangent, u, d, length, split=True):
    """The step of Fisher-Rao length ``length`` (n,) along ``tangent``.

    With ``split``, the part along ``u`` and the rest are first normalized
    separately (each to unit Fisher-Rao length) and added: the direction of
    the boundary normal (a balance between the gap and the inscribed ball)
    no longer takes the length the other ``d - 1`` directions need. The
    diagonal form's part along ``u`` is the coordinate where ``|u_i|`` is
    largest; the isotropic form has a single direction.
    """
    if split and kind != "isotropic":
        if kind == "diagonal":
            mask = np.zeros_like(tangent, dtype=bool)
            mask[np.arange(len(tangent)), np.argmax(np.abs(u), axis=1)] = True
            par, perp = np.where(mask, tangent, 0.0), np.where(mask, 0.0, tangent)
        elif kind == "full":
            along = (u[:, None, :] @ tangent @ u[:, :, None])[:, 0, 0]
            par = along[:, None, None] * u[:, :, None] * u[:, None, :]
            perp = tangent - par
        else:
            # the basis' first column is +-u: the tangent's u-u component is
            # its block entry plus what the diagonal part does along u
            along = tangent.block[:, 0, 0] + (tangent.diag * np.square(u)).sum(axis=1)
            first = np.zeros(tangent.block.shape[1:])
            first[0, 0] = 1.0
            par = LowRankTangent(np.zeros_like(tangent.diag), tangent.basis, along[:, None, None] * first)
            perp = LowRankTangent(tangent.diag, tangent.basis, tangent.block - along[:, None, None] * first)
        n_par, n_perp = _fr_norm(kind, par, d), _fr_norm(kind, perp, d)
        tangent = combine(
            np.where(n_par > _TINY, 1.0 / np.maximum(n_par, _TINY), 0.0), par,
            np.where(n_perp > _TINY, 1.0 / np.maximum(n_perp, _TINY), 0.0), perp,
        )
    norm = _fr_norm(kind, tangent, d)
    factor = np.where(norm > _TINY, length / np.maximum(norm, _TINY), 0.0)
    return combine(factor, tangent, np.zeros_like(factor), tangent)
