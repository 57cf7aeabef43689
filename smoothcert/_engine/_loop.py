"""The Monte-Carlo engine: the only place where noise is drawn and the base model called.

Noise streams (DESIGN.md section 2, rule 6). Every row gets its own standard
normal stream, seeded from the estimator's ``random_state``, a hash of the row's
bytes and a *stage* tag (selection, estimation, prediction, each optimization
step). Draws are consumed from that stream in order and turned into noise by the
row's covariance square root. Hence

* the result of a row does not depend on the batch size, the chunking, the
  other rows, their order or ``n_jobs``;
* the noise of two different rows, and of two stages of one row, is independent.

Chunking. Rows are processed in groups and draws in blocks so that at most
``batch_size`` noisy points exist at once; each block is sent to the base model
in one call and reduced immediately (vote counts, score sums, gradient moments).
With ``batch_size="auto"`` the block size is tuned on the first blocks.

Precision. Base models that compute in float32 (torch nets) get float32 noise
from numpy's float32 sampler. Its ziggurat tail reaches ``|z|`` of about 8.2,
so the law it samples differs from N(0, 1) by about 2e-16 in total variation
per draw, far below anything a certificate at ``alpha`` can notice. (torch's
``normal_`` is faster but draws float32 Box-Muller normals capped at
``|z| <= 5.77``: 8e-9 per draw, hence up to 8e-4 over 100,000 draws, which is
not negligible against ``alpha = 0.001``; it is not used.)

Linear route. When the base model sees its input only through ``u = A x + b``
with fewer outputs than inputs (adapter ``input_map``), :func:`count_votes`
samples the noise of ``u``, ``A e ~ N(0, A Sigma A^T)``, directly.
"""

import hashlib
import numbers
import time

import numpy as np
from joblib import Parallel, delayed

from .._geometry._forms import RowCovariances

__all__ = [
    "STAGE_SELECTION",
    "STAGE_ESTIMATION",
    "STAGE_PREDICTION",
    "optimization_stage",
    "resolve_seed",
    "resolve_batch_size",
    "AutoBatchSize",
    "row_keys",
    "count_votes",
    "score_moments",
]

STAGE_SELECTION = 1
STAGE_ESTIMATION = 2
STAGE_PREDICTION = 3
_STAGE_OPTIM_BASE = 1_000_000

#: Memory budget (bytes) of the noise block when ``batch_size="auto"``. Within
#: it the engine times blocks of 1/8, 1/4, 1/2 and all of the budget and keeps
#: the fastest (see :class:`_BlockTuner`): models with a cost per call (tree
#: ensembles) want large blocks, cache-bound ones (histogram boosting at
#: d = 784) small ones.
AUTO_BATCH_BYTES = 32 * 2**20


def optimization_stage(phase, iteration):
    """Stage tag of one optimization step (``phase`` = 0, 1, 2, ... per search stage).

    Distinct for every ``(phase, iteration)`` with ``iteration < 2**32``.
    """
    return _STAGE_OPTIM_BASE + (int(phase) << 32) + int(iteration)


def resolve_seed(random_state):
    """Turn ``random_state`` into a tuple of 32-bit words seeding every stream.

    * int: used as is, so results are reproducible;
    * None: fresh entropy from the operating system (no global RNG is touched);
    * :class:`numpy.random.RandomState` or :class:`numpy.random.Generator`:
      four words are drawn from it, so successive calls differ.
    """
    if random_state is None:
        entropy = np.random.SeedSequence().entropy
        return tuple(int(w) for w in np.random.SeedSequence(entropy).generate_state(4))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        value = int(random_state)
        if value < 0:
            raise ValueError(f"random_state must be non-negative, got {value}.")
        return (value & 0xFFFFFFFF, value >> 32)
    if isinstance(random_state, np.random.RandomState):
        return tuple(int(w) for w in random_state.randint(0, 2**32, size=4, dtype=np.uint64))
    if isinstance(random_state, np.random.Generator):
        return tuple(int(w) for w in random_state.integers(0, 2**32, size=4, dtype=np.uint64))
    raise TypeError(
        "random_state must be None, an int, a numpy RandomState or Generator, "
        f"got {type(random_state).__name__}."
    )


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


def row_keys(X):
    """Four 32-bit words per row from a BLAKE2 hash of the row's float64 bytes.

    ``-0.0`` is hashed as ``0.0``. Identical rows get identical keys, hence the
    same noise and the same certificate: they are the same input.
    """
    X = np.ascontiguousarray(X, dtype=np.float64) + 0.0
    keys = np.empty((X.shape[0], 4), dtype=np.uint64)
    for i, row in enumerate(X):
        digest = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
        keys[i] = np.frombuffer(digest, dtype=np.uint32)
    return keys


def _generators(seed, keys, stage):
    return [
        np.random.Generator(np.random.PCG64(np.random.SeedSequence([*seed, *map(int, k), stage])))
        for k in keys
    ]


def _normals(gens, n_draws, n_features):
    z = np.empty((len(gens), n_draws, n_features))
    for i, gen in enumerate(gens):
        gen.standard_normal(out=z[i])
    return z


def _row_groups(n_rows, rows_per_group):
    return [np.arange(s, min(s + rows_per_group, n_rows)) for s in range(0, n_rows, rows_per_group)]


def _map_groups(func, groups, n_jobs, verbose, desc):
    """Run ``func`` on each group of rows, serially or with joblib, in order.

    With ``verbose``, a progress bar (tqdm, if installed) counts the inputs done.
    """
    if n_jobs is None or n_jobs == 1 or len(groups) == 1:
        results = (func(g) for g in groups)
    else:
        results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(func)(g) for g in groups)
    bar = _progress_bar(sum(len(g) for g in groups), desc) if verbose else None
    out = []
    for group, result in zip(groups, results):
        out.append(result)
        if bar is not None:
            bar.update(len(group))
    if bar is not None:
        bar.close()
    return out


def _progress_bar(total, desc):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return None
    return tqdm(total=total, desc=desc, unit="input", leave=False)


def _split_for_jobs(n_rows, rows_per_group, n_jobs):
    """Rows per group: bounded by memory, and enough groups to feed the workers."""
    if n_jobs not in (None, 1):
        from joblib import effective_n_jobs

        workers = effective_n_jobs(n_jobs)
        rows_per_group = max(1, min(rows_per_group, -(-n_rows // (4 * workers))))
    return max(1, rows_per_group)


#: Draws summed together before being added, in order, to a running soft-vote sum.
_SUM_BLOCK = 256


def _ordered_sum(acc, values):
    """``acc + values.sum(axis=1)`` with a summation order fixed by the draw index.

    ``values`` (r, m, C) are summed in consecutive blocks of ``_SUM_BLOCK``
    draws, and the block sums are added to ``acc`` left to right, so the float
    result is the same however the draws were split into chunks (chunks hold
    whole blocks).
    """
    r, m, c = values.shape
    full = m - m % _SUM_BLOCK
    parts = [acc[:, None, :]]
    if full:
        parts.append(values[:, :full].reshape(r, -1, _SUM_BLOCK, c).sum(axis=2))
    if m > full:
        parts.append(values[:, full:].sum(axis=1, keepdims=True))
    return np.cumsum(np.concatenate(parts, axis=1), axis=1)[:, -1]


def _noisy_points(gens, x, factor, z):
    """Fill ``z`` (r, m, d) with ``x + Sigma^(1/2) z`` in place; return it as (r*m, d).

    The standard normals are drawn in ``z``'s dtype: float32 for base models
    that compute in float32 (half the memory traffic, and numpy's float32
    sampler is faster), float64 otherwise. ``x`` and ``factor`` are expected
    in that dtype already (cast once per group, not per block).
    """
    for i, gen in enumerate(gens):
        gen.standard_normal(out=z[i], dtype=z.dtype)
    RowCovariances.apply_factor(factor, z, out=z)
    z += x[:, None, :]
    return z.reshape(-1, z.shape[2])


def _cast(points, adapter):
    return points.astype(np.float32) if adapter.float32 else points


def _noise_dtype(adapter):
    return np.float32 if adapter.float32 else np.float64


def count_votes(
    adapter,
    X,
    covariances,
    n_draws,
    *,
    seed,
    stage,
    vote="hard",
    batch_size=10_000,
    n_jobs=None,
    verbose=False,
):
    """Monte-Carlo statistics of the smoothed classifier at each row.

    Parameters
    ----------
    adapter : base-model adapter (see ``_base_models``)
    X : ndarray of shape (n, d), float64
    covariances : RowCovariances
        One noise covariance per row of ``X``.
    n_draws : int
        Draws per row.
    seed : tuple of int
        From :func:`resolve_seed`.
    stage : int
        Stage tag; different stages draw independent noise.
    vote : {"hard", "soft"}
        Hard: count the predicted labels. Soft: sum the predicted scores and
        their squares.
    batch_size : int
        Largest number of noisy points that exist at once. An
        :class:`AutoBatchSize` (from ``"auto"``) lets the engine time smaller
        blocks and keep the fastest.
    n_jobs : int or None
        Joblib workers over groups of rows.
    verbose : bool
        Show a progress bar (tqdm) over groups of rows.

    Returns
    -------
    counts : ndarray of shape (n, n_classes)
        Vote counts (int64) for hard votes; score sums (float64) for soft votes.
    sq_sums : ndarray of shape (n, n_classes) or None
        Sums of squared scores (soft votes only).
    """
    n, d = X.shape
    n_classes = adapter.n_classes
    keys = row_keys(X)
    draws_per_block = max(1, min(n_draws, batch_size))
    # soft votes: blocks of whole summation blocks (at least one, even past
    # batch_size), so that float sums do not depend on batch_size
    granularity = _SUM_BLOCK if vote == "soft" and n_draws > _SUM_BLOCK else 1
    if granularity > 1:
        draws_per_block = max(granularity, draws_per_block - draws_per_block % granularity)
    rows_per_group = _split_for_jobs(n, max(1, batch_size // draws_per_block), n_jobs)

    # Exact shortcut: when the base model sees its input only through an affine
    # map u = A x + b with fewer outputs than inputs (a linear classifier, a
    # net opening with a narrowing linear layer), sample u's noise A e ~
    # N(0, A Sigma A^T) directly: same votes in law, fewer normals and flops.
    mapped = getattr(adapter, "input_map", lambda vote: None)(vote)
    if mapped is None:
        centers, predict = X, adapter.labels if vote == "hard" else adapter.scores
    else:
        projection, offset, predict = mapped
        centers = X @ projection.T + offset
    d_eff = centers.shape[1]
    dtype = _noise_dtype(adapter)
    tuner = _BlockTuner(_block_sizes(draws_per_block, n_draws, batch_size, granularity))

    def run(rows):
        gens = _generators(seed, keys[rows], stage)
        if mapped is None:
            kind, root = covariances.factor(rows)
        else:
            kind, root = covariances.projected_factor(rows, projection)
        factor = (kind, root.astype(dtype, copy=False))
        x = centers[rows].astype(dtype, copy=False)
        r = len(rows)
        if vote == "hard":
            acc = np.zeros(r * n_classes, dtype=np.int64)
        else:
            acc = np.zeros((r, n_classes))
            acc_sq = np.zeros((r, n_classes))
        offsets = np.arange(r) * n_classes
        # one noise buffer reused by every block
        block = np.empty(r * draws_per_block * d_eff, dtype=dtype)
        done = 0
        while done < n_draws:
            size = tuner.next_size()
            m = min(size, n_draws - done)
            start = time.perf_counter()
            points = _noisy_points(gens, x, factor, block[: r * m * d_eff].reshape(r, m, d_eff))
            if vote == "hard":
                labels = predict(points).reshape(r, m)
                acc += np.bincount(
                    (labels + offsets[:, None]).ravel(), minlength=r * n_classes
                )
            else:
                scores = predict(points).reshape(r, m, n_classes)
                acc = _ordered_sum(acc, scores)
                acc_sq = _ordered_sum(acc_sq, np.square(scores))
            tuner.record(size, m, time.perf_counter() - start)
            done += m
        if vote == "hard":
            return acc.reshape(r, n_classes), None
        return acc, acc_sq

    groups = _row_groups(n, rows_per_group)
    results = _map_groups(run, groups, n_jobs, verbose, "smoothcert: sampling")
    counts = np.concatenate([res[0] for res in results]) if results else np.zeros((0, n_classes))
    if vote == "hard":
        return counts, None
    return counts, np.concatenate([res[1] for res in results])


def score_moments(
    adapter,
    X,
    covariances,
    n_draws,
    *,
    seed,
    stage,
    weights=None,
    gradient=None,
    moment="full",
    antithetic=True,
    batch_size=10_000,
    n_jobs=None,
):
    """Mean smoothed scores and, optionally, a whitened natural-gradient estimate.

    With ``h(x + e) = sum_c weights[c] * F_c(x + e)``, ``e = Sigma^(1/2) z``,
    the Fisher-Rao (natural) gradient of ``E[h]`` with respect to ``Sigma``,
    written in whitened coordinates ``W = Sigma^(-1/2) grad Sigma^(-1/2)``, is
    estimated by

    * ``gradient="score"``:    ``W = mean[(h - mean h) (z z^T - I)]`` (black box);
    * ``gradient="pathwise"``: ``W = sym(mean[grad_z h  z^T])`` with
      ``grad_z h = Sigma^(1/2) grad_x h`` (autograd through a torch base).

    Parameters
    ----------
    adapter, X, covariances, seed, stage, batch_size, n_jobs
        As in :func:`count_votes`.
    n_draws : int
        Draws per row; rounded up to an even number with antithetic pairs.
    weights : ndarray of shape (n, n_classes), optional
        Weights defining ``h``; needed for a gradient.
    gradient : {None, "score", "pathwise"}
    moment : {"isotropic", "diagonal", "full"}
        Which projection of ``W`` to return: ``tr(W) / d`` (n,), ``diag(W)``
        (n, d) or ``W`` (n, d, d).
    antithetic : bool
        Use the pairs ``z`` and ``-z``.

    Returns
    -------
    mean_scores : ndarray of shape (n, n_classes)
    grad : ndarray or None
    """
    n, d = X.shape
    n_classes = adapter.n_classes
    keys = row_keys(X)
    half = -(-n_draws // 2) if antithetic else n_draws
    per_row = 2 * half if antithetic else half
    rows_per_group = _split_for_jobs(n, max(1, batch_size // per_row), n_jobs)
    if gradient is not None and weights is None:
        raise ValueError("A gradient needs weights.")

    def run(rows):
        gens = _generators(seed, keys[rows], stage)
        kind, root = covariances.factor(rows)
        r = len(rows)
        z = _normals(gens, half, d)
        if antithetic:
            z = np.concatenate([z, -z], axis=1)
        e = RowCovariances.apply_factor((kind, root), z)
        points = (X[rows][:, None, :] + e).reshape(r * per_row, d)
        points = _cast(points, adapter)
        if gradient == "pathwise":
            w_points = np.repeat(weights[rows], per_row, axis=0)
            scores, grad_x = adapter.scores_and_gradient(points, w_points)
            grad_x = grad_x.reshape(r, per_row, d)
            # grad_z h = Sigma^(1/2) grad_x h (symmetric square root)
            grad_z = RowCovariances.apply_factor((kind, root), grad_x)
        else:
            scores = adapter.scores(points)
        scores = scores.reshape(r, per_row, n_classes)
        mean_scores = scores.mean(axis=1)
        if gradient is None:
            return mean_scores, None
        if gradient == "pathwise":
            if moment == "isotropic":
                g = np.einsum("rmd,rmd->r", grad_z, z) / (per_row * d)
            elif moment == "diagonal":
                g = np.einsum("rmd,rmd->rd", grad_z, z) / per_row
            else:
                g = np.swapaxes(grad_z, 1, 2) @ z / per_row
                g = 0.5 * (g + g.transpose(0, 2, 1))
            return mean_scores, g
        h = np.einsum("rmc,rc->rm", scores, weights[rows])
        if antithetic:
            h = 0.5 * (h[:, :half] + h[:, half:])
            z = z[:, :half]
        centred = h - h.mean(axis=1, keepdims=True)
        m = z.shape[1]
        if moment == "isotropic":
            g = np.einsum("rm,rm->r", centred, np.square(z).sum(axis=2) - d) / (m * d)
        elif moment == "diagonal":
            g = np.einsum("rm,rmd->rd", centred, np.square(z) - 1.0) / m
        else:
            g = np.swapaxes(z * centred[:, :, None], 1, 2) @ z / m
        return mean_scores, g

    groups = _row_groups(n, rows_per_group)
    results = _map_groups(run, groups, n_jobs, False, "")
    mean_scores = np.concatenate([res[0] for res in results])
    if gradient is None:
        return mean_scores, None
    return mean_scores, np.concatenate([res[1] for res in results])
