"""Estimates of the covariance search, as reducers of the engine loop.

With ``h(x + e) = sum_c weights[c] * F_c(x + e)``, ``e = L z`` (``L`` the noise
factor of the covariance being optimized, possibly tempered), the Fisher-Rao
(natural) gradient of ``E[h]`` with respect to ``Sigma``, written in whitened
coordinates ``W = L^-1 grad L^-T``, is estimated by

* the **score-function** estimator (any black box):
  ``W = mean[(h - mean h) (z z^T - I)]`` -- the covariance update of natural
  evolution strategies, with antithetic pairs ``z``, ``-z`` averaged first and
  the mean as baseline;
* the **pathwise** estimator (autograd through a torch base):
  ``W = sym(mean[grad_z h  z^T])`` with ``grad_z h = L^T grad_x h``.

``F_c`` is the base model's ``predict_proba`` (soft votes) or, for hard votes,
the indicator ``1[f(x + e) = c]`` of its predicted label (what hard-vote
CERTIFY counts; a forest's soft score, a fraction of its trees, stays away
from 0 and 1 where all its votes agree).

The ``d x d`` matrix ``W`` costs ``O(d^2)`` per draw; the search mostly needs
less (:class:`SearchMoments`): its trace, its action ``W B`` on a few
directions ``B`` (the estimated boundary normal, the low-rank form's
directions), its diagonal, and the **first moment** ``v``, the whitened
gradient of ``E[h]`` with respect to ``x`` (``mean[(h(z) - h(-z)) / 2 z]``
for the score function -- Stein's lemma --, ``mean[grad_z h]`` pathwise),
all ``O(d)`` per draw. :class:`SearchScores` gives the scores alone. Both
take all of a row's draws at once (they are centred over them).
"""

import numpy as np

from .._engine._loop import noise_dimension, sample
from .._engine._reducers import Reducer
from ._stages import STAGES

__all__ = ["SearchScores", "SearchMoments", "search_statistics", "smoothed_scores"]


class SearchScores(Reducer):
    """Mean scores (or vote frequencies) over antithetic draws, ``(n, n_classes)``.

    Parameters
    ----------
    n_classes : int
    votes : {"soft", "hard"}
        ``predict_proba`` scores, or one-hot predicted labels.
    """

    whole_rows = True
    antithetic = True

    def __init__(self, n_classes, votes="soft"):
        self.n_classes = int(n_classes)
        self.votes = votes
        self.output = "labels" if votes == "hard" else "scores"

    def begin(self, rows):
        return {"rows": rows}

    def _scores(self, out, active):
        if self.votes == "hard":
            labels = np.asarray(out).reshape(active.size, -1)
            return (labels[:, :, None] == np.arange(self.n_classes)).astype(np.float64)
        return np.asarray(out).reshape(active.size, -1, self.n_classes)

    def update(self, state, active, out, z, factor):
        state["mean"] = self._scores(out, active).mean(axis=1)

    def end(self, state):
        return (state["mean"],)

    def empty_shapes(self):
        return [(self.n_classes,)]


class SearchMoments(SearchScores):
    """Mean scores and the moments of the natural gradient of ``E[sum_c w_c F_c]``.

    Returns, per row: the mean scores ``psi`` (n_classes,), the first moment
    ``v`` (d,), ``tr W``, and on request ``W B`` (d, m) for the row's basis
    ``B``, ``diag W`` (d,) and the projection of ``W`` on a search stage's
    tangent (``projection.score_moment`` / ``projection.pathwise_moment``).
    Absent ones come back
    with a zero-length last axis.

    Parameters
    ----------
    n_classes : int
    weights : ndarray of shape (n, n_classes)
        Weights defining ``h`` for every row of the sampled inputs.
    n_features : int
    gradient : {"score", "pathwise"}
    votes : {"soft", "hard"}
        Score-function estimates only (pathwise ones differentiate the soft scores).
    basis : ndarray of shape (n, d, m), default=None
    diagonal : bool, default=False
    projection : SearchStage, default=None
        The stage (``smoothcert._search._stages``) whose tangent ``W`` is
        projected on.
    """

    keeps_normals = True

    def __init__(self, n_classes, weights, n_features, gradient="score", votes="soft", basis=None,
                 diagonal=False, projection=None):
        if gradient == "pathwise" and votes == "hard":
            raise ValueError("pathwise gradients differentiate soft scores, not hard votes")
        super().__init__(n_classes, votes)
        self.weights = weights
        self.n_features = int(n_features)
        self.gradient = gradient
        self.basis = basis
        self.diagonal = bool(diagonal)
        self.projection = projection
        if gradient == "pathwise":
            self.output = "scores_and_gradient"

    def extra_inputs(self, state, active, points_per_row):
        if self.gradient != "pathwise":
            return ()
        return (np.repeat(self.weights[state["rows"][active]], points_per_row, axis=0),)

    def update(self, state, active, out, z, factor):
        rows = state["rows"][active]
        z = z.astype(np.float64, copy=False)
        if self.gradient == "pathwise":
            scores, grad_x = out
            scores = self._scores(scores, active)
            grad_x = np.asarray(grad_x, dtype=np.float64).reshape(active.size, scores.shape[1], -1)
            # grad_z h = L^T grad_x h (the chain rule of z -> x + L z)
            g = factor.apply_transpose(grad_x)
            m = z.shape[1]
            state["v"] = g.mean(axis=1)
            state["tr"] = np.einsum("rmd,rmd->r", g, z) / m
            if self.diagonal:
                state["diag"] = np.einsum("rmd,rmd->rd", g, z) / m
            if self.basis is not None:
                B = self.basis[rows]
                state["WB"] = 0.5 * (np.swapaxes(g, 1, 2) @ (z @ B) + np.swapaxes(z, 1, 2) @ (g @ B)) / m
            if self.projection is not None:
                state["moment"] = self.projection.pathwise_moment(g, z)
        else:
            scores = self._scores(out, active)
            h = np.einsum("rmc,rc->rm", scores, self.weights[rows])
            half = z.shape[1] // 2
            plus, minus = h[:, :half], h[:, half:]
            z = z[:, :half]
            centred = 0.5 * (plus + minus)
            centred = centred - centred.mean(axis=1, keepdims=True)
            state["v"] = np.einsum("rm,rmd->rd", 0.5 * (plus - minus), z) / half
            state["tr"] = np.einsum("rm,rm->r", centred, np.square(z).sum(axis=2)) / half
            if self.diagonal:
                state["diag"] = np.einsum("rm,rmd->rd", centred, np.square(z)) / half
            if self.basis is not None:
                B = self.basis[rows]
                state["WB"] = np.swapaxes(z * centred[:, :, None], 1, 2) @ (z @ B) / half
            if self.projection is not None:
                state["moment"] = self.projection.score_moment(centred, z)
        state["mean"] = scores.mean(axis=1)

    def _absent(self, n):
        return np.zeros((n, 0))

    def end(self, state):
        n = state["mean"].shape[0]
        return (
            state["mean"],
            state["v"],
            state["tr"],
            state.get("WB", self._absent(n)),
            state.get("diag", self._absent(n)),
            state.get("moment", self._absent(n)),
        )

    def empty_shapes(self):
        d = self.n_features
        m = 0 if self.basis is None else self.basis.shape[2]
        moment = (0,) if self.projection is None else self.projection.tangent_shape(d)
        return [(self.n_classes,), (d,), (), (d, m) if m else (0,), (d,) if self.diagonal else (0,), moment]


def search_statistics(adapter, X, covariances, n_draws, *, seed, stage, weights, gradient, votes,
                      basis=None, diagonal=False, projection=None, batch_size, progress=None):
    """Run :class:`SearchMoments` on every row of ``X``.

    Returns
    -------
    stats : dict
        ``psi``, ``v``, ``tr`` and, when asked for, ``WB``, ``diag``, ``moment``.
    """
    reducer = SearchMoments(adapter.n_classes, weights, noise_dimension(adapter, X), gradient, votes, basis, diagonal,
                            projection)
    out = sample(
        adapter, X, covariances, n_draws, reducer, seed=seed, stage=stage,
        batch_size=batch_size, progress=progress,
    )
    keys = ("psi", "v", "tr", "WB", "diag", "moment")
    stats = dict(zip(keys, out))
    if basis is None:
        stats.pop("WB")
    if not diagonal:
        stats.pop("diag")
    if projection is None:
        stats.pop("moment")
    return stats


def smoothed_scores(
    adapter, X, covariances, n_draws, *, seed, stage, weights=None, gradient=None, votes="soft",
    batch_size, progress=None,
):
    """Mean smoothed scores and, with ``weights``, the whitened natural gradient on the form's tangent.

    Parameters
    ----------
    adapter, X, covariances, seed, stage, batch_size
        As in :func:`smoothcert._engine._loop.sample`.
    n_draws : int
        Draws per row, rounded up to an even number (antithetic pairs).
    weights : ndarray of shape (n, n_classes), default=None
        Weights defining ``h``; needed for a gradient.
    gradient : {None, "score", "pathwise"}
        The estimator. The gradient is projected on the tangent of the search
        stage of the form of ``covariances`` (``tr(W) / d``, ``diag(W)`` or
        ``W``).
    votes : {"soft", "hard"}, default="soft"

    Returns
    -------
    mean_scores : ndarray of shape (n, n_classes)
    grad : ndarray or None
    """
    if gradient is not None and weights is None:
        raise ValueError("A gradient needs weights.")
    if gradient is None:
        (psi,) = sample(
            adapter, X, covariances, n_draws, SearchScores(adapter.n_classes, votes), seed=seed,
            stage=stage, batch_size=batch_size, progress=progress,
        )
        return psi, None
    stats = search_statistics(
        adapter, X, covariances, n_draws, seed=seed, stage=stage, weights=weights, gradient=gradient,
        votes=votes, projection=STAGES[covariances.kind](), batch_size=batch_size, progress=progress,
    )
    return stats["psi"], stats["moment"]
