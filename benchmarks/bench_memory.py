"""Peak memory of ``SmoothedClassifier.certify``: bounded by ``batch_size``, not by N.

Each measurement runs in a fresh subprocess (so that ``ru_maxrss``, a high-water
mark, starts clean): the base model is fitted, then one input is certified with
N draws at d = 784 and the given ``batch_size``. Two numbers:

* ``traced_MiB``: peak of the Python/numpy allocations during ``certify``
  (``tracemalloc``, started after fitting);
* ``rss_MiB``: growth of the process's peak resident set (``ru_maxrss``)
  during ``certify``, which also sees allocations outside tracemalloc
  (BLAS, torch).

``block_MiB`` is the size of one block of noisy inputs,
``batch_size * d * 8`` bytes (4 for torch nets; ``batch_size="auto"`` bounds
a block by 32 MiB, its documented bound); ``traced / block`` shows how many
block-sized arrays exist at once. For a model that sees its input only
through a narrowing linear map (LogisticRegression) the engine may sample
in the map's output space, with far fewer normals: its ``traced / block``
is then well below 1 (which route was taken is not public, so the table
does not name it). The claim checked: for each ``batch_size`` the peak does
not grow with N. The default models are HistGradientBoosting and
LogisticRegression.

Usage::

    python benchmarks/bench_memory.py           # N = 50,000 and 100,000
    python benchmarks/bench_memory.py --quick   # N = 20,000 and 50,000
    python benchmarks/bench_memory.py --smoke   # seconds: d = 64, LogisticRegression, N = 2,000
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def child(model_name, d, n_samples, batch_size):
    """Runs in the subprocess: fit, then certify one input under tracemalloc."""
    import tracemalloc

    sys.path.insert(0, HERE)
    from _common import SIGMA, dataset, is_skorch, make_model

    from smoothcert import SmoothedClassifier

    X, y = dataset(d, n_train=300 if n_samples <= 10_000 else None)
    clf = SmoothedClassifier(
        make_model(model_name, d, len(np.unique(y))),
        sigma=SIGMA,
        n_samples=n_samples,
        batch_size=batch_size,
        random_state=0,
    ).fit(X, y)
    x = np.ascontiguousarray(X[:1])
    clf.set_params(n_samples=100).certify(x)  # warm up lazy imports and caches
    clf.set_params(n_samples=n_samples)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    clf.certify(x)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1024 if sys.platform != "darwin" else 1  # ru_maxrss: KiB on Linux, bytes on macOS
    print(
        json.dumps(
            dict(
                traced=peak / 2**20,
                rss=(rss_after - rss_before) * scale / 2**20,
                rss_peak=rss_after * scale / 2**20,
                seconds=elapsed,
                itemsize=4 if is_skorch(clf.estimator_) else 8,
            )
        )
    )


def measure(model_name, d, n_samples, batch_size, threads=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", model_name, str(d), str(n_samples), str(batch_size)]
    env = dict(os.environ)
    if threads:
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        name, d, n, batch = argv[1], int(argv[2]), int(argv[3]), argv[4]
        child(name, d, n, int(batch) if batch != "auto" else "auto")
        return
    sys.path.insert(0, HERE)
    from _common import environment, print_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny settings: a few seconds")
    parser.add_argument("--d", type=int, default=784)
    parser.add_argument("--models", nargs="+", default=["hgb", "logreg"], help="base models (see _common)")
    parser.add_argument("--batch-sizes", nargs="+", default=None, help="ints or 'auto'")
    parser.add_argument("--n-samples", nargs="+", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="OpenMP / BLAS threads of the measured processes")
    args = parser.parse_args(argv)
    if args.smoke:
        args.d, args.models, args.threads = 64, ["logreg"], args.threads or 1
        args.n_samples, args.batch_sizes = args.n_samples or [2000], args.batch_sizes or ["1000", "auto"]
    # N >= 2 x every batch size: each run holds two blocks at some point (steady state).
    ns = args.n_samples or ([20_000, 50_000] if args.quick else [50_000, 100_000])
    batches = args.batch_sizes or (["1000", "5000", "auto"] if args.quick else ["1000", "5000", "20000", "auto"])

    print(environment())
    rows = []
    for model_name in args.models:
        for batch in batches:
            for n in ns:
                res = measure(model_name, args.d, n, batch, args.threads)
                if batch == "auto":  # documented bound: 32 MiB of noise
                    points = max(1, 32 * 2**20 // (args.d * res["itemsize"]))
                    label = f"auto (<= {points})"
                else:
                    points = int(batch)
                    label = batch
                block = min(points, n) * args.d * res["itemsize"] / 2**20
                rows.append(
                    dict(
                        model=model_name,
                        d=args.d,
                        batch_size=label,
                        N=n,
                        block_MiB=block,
                        traced_MiB=res["traced"],
                        traced_per_block=res["traced"] / block,
                        rss_MiB=res["rss"],
                        seconds=res["seconds"],
                    )
                )
                print(f"  {model_name} batch={label} N={n}: traced {res['traced']:.1f} MiB, rss +{res['rss']:.1f} MiB", flush=True)
    # Independence of N: the peak at the largest N over the peak at the smallest.
    by_batch = {}
    for row in rows:
        by_batch.setdefault((row["model"], row["batch_size"]), []).append(row)
    for group in by_batch.values():
        small, large = group[0], group[-1]
        for row in group:
            grows = large["traced_MiB"] > 1.1 * small["traced_MiB"] + 1.0
            row["grows_with_N"] = "YES" if grows else "no"
    print_table(
        rows,
        ["model", "d", "batch_size", "N", "block_MiB", "traced_MiB", "traced_per_block", "rss_MiB", "grows_with_N", "seconds"],
        title=f"Peak memory of certify (one input, d = {args.d}); block = batch_size x d x itemsize",
    )


if __name__ == "__main__":
    main()
