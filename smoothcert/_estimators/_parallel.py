"""Running one call's work over chunks of inputs, in joblib workers.

Every input's result depends only on that input (its noise streams are seeded
from ``random_state``, its own bytes and the stage), so a call can be split into
contiguous chunks of rows, each run from start to end -- covariance search and
certification together -- in one worker, and the chunks joined back: the results
are identical to a serial run. One task per chunk (two per worker, ten at least,
so that the progress bar moves as chunks finish) keeps the cost of shipping the
model to the workers to a few pickles per call (the covariance search alone makes
hundreds of Monte-Carlo calls, and parallelizing each of them separately cost more
than it saved).

Progress with workers: each chunk is counted when it finishes, and comes back
with the seconds its worker spent on it. The bar's rate is the workers'
throughput measured that way (``concurrency * predictions / busy seconds`` of the
finished chunks, the concurrency being the number of workers, at most the
number of chunks): the workers' start-up and the bursts of chunks finishing
together do not distort the remaining time it shows.

Inside a worker, BLAS, OpenMP and torch thread pools are limited to the worker's
share of the cores, so that ``n_jobs`` workers do not oversubscribe them.
"""

import os
import sys
import time

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from .._engine._progress import Progress

__all__ = ["chunk_rows", "run_in_chunks", "worker_threads"]

#: Chunks per worker: enough to balance uneven chunks, few enough to ship the model rarely.
CHUNKS_PER_WORKER = 2

#: Chunks of a parallel call at least (when it has that many rows): the progress bar,
#: which advances as chunks finish, moves in steps of at most a tenth.
MIN_CHUNKS = 10


def worker_threads(n_workers):
    """Threads each of ``n_workers`` workers may use without oversubscribing the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, n_workers))


def _run_chunk(work, X, threads):
    """``work(X, progress)`` with limited thread pools; returns its result and predictions."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    try:
        if torch is not None:
            torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            progress = Progress(0, "", verbose=False)
            result = work(X, progress)
    finally:
        if torch is not None:
            torch.set_num_threads(previous)
    return result, progress.done


def chunk_rows(n, workers):
    """Contiguous chunks of ``range(n)`` for ``workers`` workers.

    At least :data:`CHUNKS_PER_WORKER` per worker and :data:`MIN_CHUNKS` in all
    (when there are that many rows), so that the progress bar advances in steps
    of at most a tenth of the call.
    """
    return np.array_split(np.arange(n), min(n, max(CHUNKS_PER_WORKER * workers, MIN_CHUNKS)))


def run_in_chunks(work, X, n_jobs, progress):
    """Apply ``work(X_chunk, progress)`` to contiguous chunks of rows.

    Parameters
    ----------
    work : callable
        Picklable; returns a list of per-row results (arrays, covariance
        forms, ...) for its chunk, in row order.
    X : ndarray of shape (n, d)
    n_jobs : int or None
        Joblib workers; ``None`` or 1 runs serially in this process.
    progress : Progress
        Counts the predictions: block by block serially; with workers, chunk by
        chunk as each one finishes, in whatever order, the total being revised
        from the predictions per row of the finished chunks and the rate set to
        the workers' measured throughput (:meth:`Progress.set_throughput`).

    Returns
    -------
    parts : list of list
        The results of the chunks, in row order (one list per chunk).
    """
    n = X.shape[0]
    workers = 1 if n_jobs in (None, 1) else effective_n_jobs(n_jobs)
    if workers == 1 or n < 2:
        return [work(X, progress)]
    chunks = chunk_rows(n, workers)
    threads = worker_threads(workers)
    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(_run_indexed)(k, work, X[rows], threads)
        for k, rows in enumerate(chunks)
    )
    parts = [None] * len(chunks)
    rows_done = 0
    concurrency = min(workers, len(chunks))
    counted, busy = 0, 0.0
    for k, (result, count), seconds in results:
        parts[k] = result
        rows_done += len(chunks[k])
        counted += count
        busy += seconds
        if busy > 0:
            # the workers' speed while they work: start-up and shipping excluded
            progress.set_throughput(concurrency * counted / busy)
        progress.update(count)
        # the rows still to run will cost what the finished ones did, per row
        progress.revise_total(progress.done * n / rows_done)
    return parts


def _run_indexed(k, work, X, threads):
    """``(k, _run_chunk(...), seconds)``: chunk ``k``'s result, tagged to be put back in
    order, and the seconds the worker spent on it (measured in the worker)."""
    start = time.perf_counter()
    out = _run_chunk(work, X, threads)
    return k, out, time.perf_counter() - start
