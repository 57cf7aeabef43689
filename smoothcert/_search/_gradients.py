"""Gradient estimators of the covariance search, as reducers of the engine loop.

With ``h(x + e) = sum_c weights[c] * F_c(x + e)``, ``e = Sigma^(1/2) z``, the
Fisher-Rao (natural) gradient of ``E[h]`` with respect to ``Sigma``, written
in whitened coordinates ``W = Sigma^(-1/2) grad Sigma^(-1/2)``, is estimated by

* the **score-function** estimator (any black box):
  ``W = mean[(h - mean h) (z z^T - I)]`` -- the covariance update of natural
  evolution strategies, with antithetic pairs ``z``, ``-z`` averaged first and
  the mean as baseline (:class:`ScoreFunctionMoments`);
* the **pathwise** estimator (autograd through a torch base):
  ``W = sym(mean[grad_z h  z^T])`` with ``grad_z h = Sigma^(1/2) grad_x h``
  (:class:`PathwiseMoments`).

Each returns ``W`` projected on the tangent space of the covariance form being
optimized (``tr(W) / d``, ``diag(W)`` or ``W``; see the forms'
``score_moment`` / ``pathwise_moment``), together with the mean smoothed
scores on the same draws. :class:`MeanScores` gives the scores alone. All
three take all of a row's draws at once (they are centred over them).
"""

import numpy as np

from .._engine._loop import sample
from .._engine._reducers import Reducer

__all__ = ["MeanScores", "ScoreFunctionMoments", "PathwiseMoments", "smoothed_scores"]


class MeanScores(Reducer):
    """Mean smoothed scores over antithetic draws, ``(n, n_classes)``."""

    output = "scores"
    whole_rows = True
    antithetic = True

    def __init__(self, n_classes):
        self.n_classes = int(n_classes)

    def begin(self, rows):
        return {"rows": rows}

    def _scores(self, out, active):
        return out.reshape(active.size, -1, self.n_classes)

    def update(self, state, active, out, z, factor):
        state["mean"] = self._scores(out, active).mean(axis=1)

    def end(self, state):
        return (state["mean"],)

    def empty_shapes(self):
        return [(self.n_classes,)]


class ScoreFunctionMoments(MeanScores):
    """Mean scores and the score-function natural gradient of ``sum_c w_c F_c``.

    Parameters
    ----------
    n_classes : int
    weights : ndarray of shape (n, n_classes)
        Weights defining ``h`` for every row of the sampled inputs.
    form : RowCovariances subclass
        The covariance form whose tangent the gradient is projected on.
    """

    keeps_normals = True

    def __init__(self, n_classes, weights, form, n_features):
        super().__init__(n_classes)
        self.weights = weights
        self.form = form
        self.n_features = int(n_features)

    def update(self, state, active, out, z, factor):
        scores = self._scores(out, active)
        state["mean"] = scores.mean(axis=1)
        h = np.einsum("rmc,rc->rm", scores, self.weights[state["rows"][active]])
        half = z.shape[1] // 2
        h = 0.5 * (h[:, :half] + h[:, half:])
        z = z[:, :half].astype(np.float64, copy=False)
        centred = h - h.mean(axis=1, keepdims=True)
        state["grad"] = self.form.score_moment(centred, z)

    def end(self, state):
        return state["mean"], state["grad"]

    def empty_shapes(self):
        return [(self.n_classes,), self.form.tangent_shape(self.n_features)]


class PathwiseMoments(ScoreFunctionMoments):
    """Mean scores and the pathwise natural gradient (torch base models)."""

    output = "scores_and_gradient"

    def extra_inputs(self, state, active, points_per_row):
        return (np.repeat(self.weights[state["rows"][active]], points_per_row, axis=0),)

    def update(self, state, active, out, z, factor):
        scores, grad_x = out
        scores = self._scores(scores, active)
        state["mean"] = scores.mean(axis=1)
        grad_x = grad_x.reshape(active.size, scores.shape[1], -1)
        # grad_z h = Sigma^(1/2) grad_x h (symmetric square root)
        grad_z = factor.apply(grad_x)
        state["grad"] = self.form.pathwise_moment(grad_z, z.astype(np.float64, copy=False))


def smoothed_scores(
    adapter, X, covariances, n_draws, *, seed, stage, weights=None, gradient=None,
    batch_size, n_jobs=None, progress=None,
):
    """Mean smoothed scores and, with ``weights``, a whitened natural-gradient estimate.

    Parameters
    ----------
    adapter, X, covariances, seed, stage, batch_size, n_jobs
        As in :func:`smoothcert._engine._loop.sample`.
    n_draws : int
        Draws per row, rounded up to an even number (antithetic pairs).
    weights : ndarray of shape (n, n_classes), default=None
        Weights defining ``h``; needed for a gradient.
    gradient : {None, "score", "pathwise"}
        The estimator. The gradient is projected on the tangent of the form
        of ``covariances``.

    Returns
    -------
    mean_scores : ndarray of shape (n, n_classes)
    grad : ndarray or None
    """
    n_classes = adapter.n_classes
    if gradient is not None and weights is None:
        raise ValueError("A gradient needs weights.")
    if gradient is None or weights is None:
        reducer = MeanScores(n_classes)
    elif gradient == "pathwise":
        reducer = PathwiseMoments(n_classes, weights, type(covariances), X.shape[1])
    else:
        reducer = ScoreFunctionMoments(n_classes, weights, type(covariances), X.shape[1])
    out = sample(
        adapter, X, covariances, n_draws, reducer, seed=seed, stage=stage,
        batch_size=batch_size, n_jobs=n_jobs, progress=progress,
    )
    return (out[0], None) if len(out) == 1 else out
