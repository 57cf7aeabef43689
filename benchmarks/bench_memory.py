"""Peak memory of ``SmoothedClassifier.certify``: bounded by ``batch_size``, not by N.

Each measurement runs in a fresh subprocess (so that ``ru_maxrss``, a high-water
mark, starts clean): the base model is fitted, then one input is certified with
N draws at d = 784 and the given ``batch_size``. Two numbers:

* ``traced_MiB``: peak of the Python/numpy allocations during ``certify``
  (``tracemalloc``, started after fitting);
* ``rss_MiB``: growth of the process's peak resident set (``ru_maxrss``)
  during ``certify``, which also sees allocations outside tracemalloc
  (BLAS, torch).

``block_MiB`` is the size of one noise block as the engine samples it
(``batch_size * dims * bytes``: ``dims = d`` and 8 bytes on the general
route, 4 bytes for torch nets; on the linear route, ``dims`` is the number
of outputs of the model's linear map); ``traced / block`` shows how many
block-sized arrays exist at once. The claim checked: for each ``batch_size``
the peak does not grow with N. The default models are HistGradientBoosting
(general route, float64) and LogisticRegression (linear route).

Usage::

    python benchmarks/bench_memory.py           # N = 50,000 and 100,000
    python benchmarks/bench_memory.py --quick   # N = 20,000 and 50,000
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
    from _common import SIGMA, dataset, make_model

    from smoothcert import SmoothedClassifier

    X, y = dataset(d)
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
    adapter = clf._adapter()
    mapped = adapter.input_map("hard")
    dims = d if mapped is None else mapped[0].shape[0]
    scale = 1024 if sys.platform != "darwin" else 1  # ru_maxrss: KiB on Linux, bytes on macOS
    print(
        json.dumps(
            dict(
                traced=peak / 2**20,
                rss=(rss_after - rss_before) * scale / 2**20,
                rss_peak=rss_after * scale / 2**20,
                seconds=elapsed,
                route="input" if mapped is None else "linear",
                dims=dims,
                itemsize=4 if adapter.float32 else 8,
            )
        )
    )


def measure(model_name, d, n_samples, batch_size):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", model_name, str(d), str(n_samples), str(batch_size)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
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
    parser.add_argument("--d", type=int, default=784)
    parser.add_argument("--models", nargs="+", default=["hgb", "logreg"], help="base models (see _common)")
    parser.add_argument("--batch-sizes", nargs="+", default=None, help="ints or 'auto'")
    parser.add_argument("--n-samples", nargs="+", type=int, default=None)
    args = parser.parse_args(argv)
    # N >= 2 x every batch size: each run holds two blocks at some point (steady state).
    ns = args.n_samples or ([20_000, 50_000] if args.quick else [50_000, 100_000])
    batches = args.batch_sizes or (["1000", "5000", "auto"] if args.quick else ["1000", "5000", "20000", "auto"])

    print(environment())
    rows = []
    for model_name in args.models:
        for batch in batches:
            for n in ns:
                res = measure(model_name, args.d, n, batch)
                if batch == "auto":
                    from smoothcert._engine._loop import resolve_batch_size

                    points = resolve_batch_size("auto", args.d)
                    label = f"auto ({points})"
                else:
                    points = int(batch)
                    label = batch
                block = min(points, n) * res["dims"] * res["itemsize"] / 2**20
                rows.append(
                    dict(
                        model=model_name,
                        d=args.d,
                        route=res["route"],
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
        ["model", "d", "route", "batch_size", "N", "block_MiB", "traced_MiB", "traced_per_block", "rss_MiB", "grows_with_N", "seconds"],
        title=f"Peak memory of certify (one input, d = {args.d}); block = batch_size x dims x itemsize",
    )


if __name__ == "__main__":
    main()
