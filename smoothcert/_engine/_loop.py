"""The Monte-Carlo engine: the one loop where noise is drawn and the base model called.

:func:`sample` is the only place where noise is drawn and the base model is
called. Every Monte-Carlo quantity of the library (vote counts, score sums,
the search's gradient moments, sequential tests) is a *reducer* plugged into
it (:class:`~smoothcert._engine._reducers.Reducer`): the loop groups rows,
seeds their streams (:mod:`._streams`), draws noise, calls the adapter and
hands each block to the reducer, which accumulates and may finish rows early.

Chunking. Rows are processed in groups and draws in blocks so that at most
``batch_size`` noisy points exist at once; each block is sent to the base model
in one call and reduced immediately. With ``batch_size="auto"`` the block size
is tuned on the first blocks (:class:`_BlockTuner`). Reducers that need all
draws of a row at once (the search's centred gradient estimates over a few
hundred draws) ask for whole rows: rows are then grouped by ``batch_size`` and
their draws come in one block.

Stopping. A reducer may look at a row's statistics at fixed draw counts (the
same for every row) and finish it there; the loop then stops drawing for that
row. Blocks end exactly at the looks, so a row's stopping time depends only on
its own stream, never on the batch size, the chunking or the other rows.

Precision. Base models that compute in float32 (torch nets) get float32 noise
from numpy's float32 sampler. Its ziggurat tail reaches ``|z|`` of about 8.2,
so the law it samples differs from N(0, 1) by about 2e-16 in total variation
per draw, far below anything a certificate at ``alpha`` can notice. (torch's
``normal_`` is faster but draws float32 Box-Muller normals capped at
``|z| <= 5.77``: 8e-9 per draw, hence up to 8e-4 over 100,000 draws, which is
not negligible against ``alpha = 0.001``; it is not used.)

Noise on some features. An adapter with ``noise_features`` (an index array
``S``) has its noise in the coordinates ``S`` only: ``covariances`` are then
``len(S)``-dimensional, the standard normals (and whatever a reducer sees of
them) live in that subspace, and each noisy point is the row of ``X`` with
``x_S + L z`` in the columns ``S`` and the other columns unchanged. Row keys
still hash the whole row. Input gradients are read on the columns ``S``.

Linear route. When the base model sees its input only through ``u = A x + b``
with fewer outputs than inputs (adapter ``input_map``) and the reducer needs
neither the normals nor input gradients, the loop samples the noise of ``u``,
``A e ~ N(0, A Sigma A^T)``, directly: the same votes in law, fewer normals
and flops.
"""

import time

import numpy as np

from . import _streams

__all__ = ["sample", "noise_dimension", "resolve_batch_size", "AutoBatchSize", "AUTO_BATCH_BYTES"]

#: Memory budget (bytes) of the noise block when ``batch_size="auto"``. Within
#: it the engine times blocks of 1/8, 1/4, 1/2 and all of the budget and keeps
#: the fastest (see :class:`_BlockTuner`): models with a cost per call (tree
#: ensembles) want large blocks, cache-bound ones (histogram boosting at
#: d = 784) small ones.
AUTO_BATCH_BYTES = 32 * 2**20


class AutoBatchSize(int):
    """A batch size chosen by ``"auto"``: an upper bound the engine may tune below."""


def resolve_batch_size(batch_size, n_features):
    """Number of noisy points per base-model call (an upper bound when ``"auto"``)."""
    if batch_size == "auto":
        points = np.clip(AUTO_BATCH_BYTES // (8 * max(n_features, 1)), 1024, 100_000)
        return AutoBatchSize(points)
    return int(batch_size)


class _BlockTuner:
    """Picks the block size (draws per base-model call) with the lowest time per draw.

    Each candidate is timed on real blocks (the smallest twice, the first call
    warming the model up), then the fastest is used for the rest. Only speed
    depends on the choice: results do not depend on how draws are split.
    """

    def __init__(self, candidates):
        self.candidates = sorted(set(candidates))
        self._plan = [self.candidates[0], *self.candidates]
        self._best = {}

    def next_size(self):
        if self._plan:
            return self._plan[0]
        return min(self._best, key=self._best.get)

    def record(self, size, n_draws, seconds):
        if self._plan and self._plan[0] == size:
            self._plan.pop(0)
            if n_draws == size:  # a full block: a fair timing
                per_draw = seconds / max(n_draws, 1)
                self._best[size] = min(self._best.get(size, np.inf), per_draw)
        if not self._plan and not self._best:
            self._best[self.candidates[-1]] = 0.0


def _block_sizes(draws_per_block, n_draws, batch_size, granularity):
    """Candidate draws per block: the largest, and 1/2, 1/4, 1/8 of it for "auto"."""
    if not isinstance(batch_size, AutoBatchSize) or draws_per_block >= n_draws:
        return [draws_per_block]
    sizes = {draws_per_block}
    for divisor in (2, 4, 8):
        size = draws_per_block // divisor // granularity * granularity
        if size >= max(granularity, 256):
            sizes.add(size)
    return sorted(sizes)


def _row_groups(n_rows, rows_per_group):
    return [np.arange(s, min(s + rows_per_group, n_rows)) for s in range(0, n_rows, rows_per_group)]


def _plan(reducer, n_draws, batch_size):
    """Normals per row, normals per row and block, rows per group, block-size candidates.

    With antithetic pairs each standard normal ``z`` gives two points (``z``
    and ``-z``), so ``ceil(n_draws / 2)`` normals are drawn per row.
    """
    if reducer.antithetic:
        n_draws = -(-n_draws // 2)
    if reducer.whole_rows:
        points = 2 * n_draws if reducer.antithetic else n_draws
        rows_per_group = max(1, batch_size // points)
        return n_draws, n_draws, rows_per_group, [n_draws]
    per_block = max(1, min(n_draws, batch_size))
    granularity = reducer.granularity(n_draws)
    if granularity > 1:
        # whole summation blocks (at least one, even past batch_size), so
        # that float sums do not depend on batch_size
        per_block = max(granularity, per_block - per_block % granularity)
    rows_per_group = max(1, batch_size // per_block)
    return n_draws, per_block, rows_per_group, _block_sizes(per_block, n_draws, batch_size, granularity)


def noise_dimension(adapter, X):
    """Dimension of the noise of ``sample(adapter, X, ...)``: the adapter's
    ``noise_features`` count, else every column of ``X``."""
    columns = getattr(adapter, "noise_features", None)
    return X.shape[1] if columns is None else len(columns)


def _gradient_on(predict, columns):
    """``scores_and_gradient`` whose input gradient keeps the columns ``columns``."""

    def call(points, *extra):
        scores, grad = predict(points, *extra)
        return scores, np.asarray(grad)[:, columns]

    return call


def sample(
    adapter,
    X,
    covariances,
    n_draws,
    reducer,
    *,
    seed,
    stage,
    batch_size=10_000,
    progress=None,
):
    """Draw ``n_draws`` noisy copies of each row, call the base model, reduce.

    Parameters
    ----------
    adapter : base-model adapter
        ``labels(points)``, ``scores(points)``, ``scores_and_gradient(points,
        weights)``, ``input_map(vote)`` and ``float32`` (see
        ``smoothcert._estimators._adapters``).
    X : ndarray of shape (n, d), float64
    covariances : RowCovariances
        One noise covariance per row of ``X`` (of the columns
        ``adapter.noise_features`` when the adapter has them).
    n_draws : int
        Draws per row (at most: a reducer may finish a row earlier; with
        antithetic pairs, rounded up to an even number).
    reducer : Reducer
        What to compute from the base model's outputs.
    seed : tuple of int
        From :func:`~smoothcert._engine._streams.resolve_seed`.
    stage : int
        Stage tag; different stages draw independent noise.
    batch_size : int
        Largest number of noisy points that exist at once. An
        :class:`AutoBatchSize` (from ``"auto"``) lets the engine time smaller
        blocks and keep the fastest.
    progress : Progress, default=None
        Counts the base-model predictions (and shows them as a bar).

    Returns
    -------
    result : tuple of ndarray
        The reducer's result, one entry per row of ``X`` in each array.
    """
    n = X.shape[0]
    keys = _streams.row_keys(X)
    subspace = getattr(adapter, "noise_features", None)
    n_normals, per_block, rows_per_group, sizes = _plan(reducer, n_draws, batch_size)
    mapped = None
    if reducer.output != "scores_and_gradient" and not reducer.keeps_normals:
        input_map = getattr(adapter, "input_map", lambda vote: None)
        mapped = input_map("hard" if reducer.output == "labels" else "soft")
    if mapped is None:
        centers = X
        predict = {
            "labels": adapter.labels,
            "scores": adapter.scores,
            "scores_and_gradient": getattr(adapter, "scores_and_gradient", None),
        }[reducer.output]
        if subspace is not None and reducer.output == "scores_and_gradient":
            predict = _gradient_on(predict, subspace)
        d_eff = covariances.n_features
    else:
        projection, offset, predict = mapped
        centers = X @ projection.T + offset
        d_eff = centers.shape[1]
        if subspace is not None:
            # u = A x + b moves only through the noisy columns: A e = A[:, S] e_S
            projection = projection[:, subspace]
            subspace = None
    dtype = np.float32 if adapter.float32 else np.float64
    tuner = _BlockTuner(sizes)

    def run(rows):
        gens = _streams.generators(seed, keys[rows], stage)
        if mapped is None:
            exact = covariances.factor(rows)
        else:
            exact = covariances.projected_factor(rows, projection)
        factor = exact.astype(dtype)
        x = centers[rows].astype(dtype, copy=False)
        state = reducer.begin(rows)
        active = np.arange(len(rows))
        everyone = True
        # one noise buffer reused by every block
        buffer = np.empty(len(rows) * per_block * d_eff, dtype=dtype)
        done = 0
        while done < n_normals and active.size:
            size = tuner.next_size()
            m = min(size, n_normals - done)
            look = reducer.next_look(state, done)
            if look is not None:
                m = min(m, look - done)
            start = time.perf_counter()
            if everyone:
                sub_gens, sub_x, sub_factor, sub_exact = gens, x, factor, exact
            else:
                sub_gens = [gens[i] for i in active]
                sub_x, sub_factor, sub_exact = x[active], factor.take(active), exact.take(active)
            z = buffer[: active.size * m * d_eff].reshape(active.size, m, d_eff)
            for i, gen in enumerate(sub_gens):
                gen.standard_normal(out=z[i], dtype=dtype)
            if reducer.antithetic:
                z = np.concatenate([z, -z], axis=1)
            if subspace is not None:
                # the row, with noise added in the columns S only
                points = np.repeat(sub_x[:, None, :], z.shape[1], axis=1)
                points[:, :, subspace] += sub_factor.apply(z)
            elif reducer.keeps_normals:
                points = sub_factor.apply(z)
                points += sub_x[:, None, :]
            else:
                points = sub_factor.apply(z, out=z)
                points += sub_x[:, None, :]
            flat = points.reshape(-1, points.shape[2])
            out = predict(flat, *reducer.extra_inputs(state, active, z.shape[1]))
            reducer.update(
                state, active, out, z if reducer.keeps_normals else None, sub_exact
            )
            tuner.record(size, m, time.perf_counter() - start)
            if progress is not None:
                progress.update(flat.shape[0])
            done += m
            if look is not None and done == look:
                remaining = reducer.decide(state, active, done)
                everyone = everyone and remaining.size == active.size
                active = remaining
        return reducer.end(state)

    return reducer.combine([run(rows) for rows in _row_groups(n, rows_per_group)])
