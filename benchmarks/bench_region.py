"""Cost of ``CertifiedRegion.certify`` per input, per method and dimension.

Three tables:

1. ``fixed`` / ``isotropic`` / ``diagonal`` / ``riemannian`` at d = 2, 16, 64
   (``make_classification`` for 2 and 16, ``load_digits`` for 64) on a
   RandomForest(100): seconds per input, the search's own seconds per
   iteration (``Certificate.search_info["seconds_per_iteration"]``, summed over
   the stages of the chain) and the base-model predictions per input.
2. How the Riemannian search at d = 64 grows with the number of inputs.
3. The issue's target: ``method="riemannian"`` at d = 64 for 100 inputs x 100
   iterations x 256 draws on a RandomForest in under 5 minutes on 2 cores.
   Measured in the default run; ``--quick`` extrapolates it from table 2 and
   says so.

Usage::

    python benchmarks/bench_region.py           # n_iter = 100 grid + measured target
    python benchmarks/bench_region.py --quick   # n_iter = 10, extrapolated target
    python benchmarks/bench_region.py --smoke   # seconds: d = 2, 2 iterations x 16 draws, N = 200

The searches are the default ones of each ``method`` (``smoothcert.search``).
"""

import argparse
import os
import time

import numpy as np
from _common import SIGMA, dataset, environment, limit_threads, make_model, print_table

from smoothcert import CertifiedRegion

METHODS = ("fixed", "isotropic", "diagonal", "riemannian")


def run_case(method, d, n_inputs, n_iter, n_draws, n_samples, n_jobs=None, model="forest"):
    X, y = dataset(d)
    region = CertifiedRegion(
        make_model(model, d, len(np.unique(y))),
        method=method,
        sigma=SIGMA,
        n_iter=n_iter,
        n_samples_optim=n_draws,
        n_samples=n_samples,
        n_jobs=n_jobs,
        random_state=0,
    ).fit(X, y)
    Xc = X[:n_inputs]
    start_cpu, start = time.process_time(), time.perf_counter()
    cert = region.certify(Xc)
    total = time.perf_counter() - start
    cpu = time.process_time() - start_cpu
    info = getattr(cert, "search_info", None) or {}
    per_stage = {k: float(np.sum(v)) for k, v in info.get("seconds_per_iteration", {}).items()}
    search = sum(per_stage.values()) * n_iter
    row = dict(
        method=method,
        d=d,
        n_inputs=n_inputs,
        n_iter=n_iter,
        draws=n_draws,
        N=n_samples,
        total_s=total,
        cpu_s=cpu,
        search_s=search,
        certify_s=total - search,
        s_per_input=total / n_inputs,
        s_per_iter=sum(per_stage.values()),
        stages=" ".join(f"{k}:{v:.3g}" for k, v in per_stage.items()) or "-",
        preds_per_input=info.get("n_base_predictions", 0) + n_samples + region.n_samples_selection,
        abstain=float(np.mean(cert.abstained)),
    )
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny settings, extrapolated target: a few seconds")
    parser.add_argument("--dims", nargs="+", type=int, default=[2, 16, 64])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--n-inputs", type=int, default=None)
    parser.add_argument("--n-iter", type=int, default=None)
    parser.add_argument("--draws", type=int, default=256)
    parser.add_argument("--n-samples", type=int, default=None, help="certification draws N")
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--target-n-samples", type=int, default=100_000)
    parser.add_argument("--no-target", action="store_true", help="only extrapolate the target run")
    parser.add_argument("--only-target", action="store_true", help="measure the target run only")
    parser.add_argument("--threads", type=int, default=None, help="limit BLAS/OpenMP/torch threads")
    args = parser.parse_args(argv)
    if args.smoke:
        args.dims, args.n_inputs, args.n_iter, args.draws = [2], 2, 2, 16
        args.n_samples, args.threads = 200, args.threads or 1
    limit_threads(args.threads)
    quick = args.quick or args.smoke
    n_inputs = args.n_inputs or (5 if quick else 10)
    n_iter = args.n_iter if args.n_iter is not None else (10 if quick else 100)
    n_samples = args.n_samples or (1_000 if quick else 10_000)

    print(environment())
    print(f"load average at start: {os.getloadavg()}")
    if args.only_target:
        print_target(measure_target(args), args)
        return
    rows = []
    for d in args.dims:
        for method in args.methods:
            row = run_case(method, d, n_inputs, n_iter, args.draws, n_samples, args.n_jobs)
            rows.append(row)
            print(f"  {method:>10s} d={d:<3d} {row['total_s']:.2f}s ({row['s_per_iter']:.4f} s/iter)", flush=True)
    print_table(
        rows,
        ["method", "d", "n_inputs", "n_iter", "draws", "N", "total_s", "s_per_input", "s_per_iter", "stages", "preds_per_input"],
        title="CertifiedRegion.certify on RandomForest(100): seconds per input and per search iteration",
    )

    # Growth with the number of inputs (Riemannian, d = 64, short searches).
    scale_iter = 2 if args.smoke else 5 if quick else 10
    scale_rows = []
    for n in ([2, 3] if args.smoke else [5, 10, 20] if quick else [10, 25, 50, 100]):
        row = run_case("riemannian", 64, n, scale_iter, args.draws, n_samples if args.smoke else 1_000, args.n_jobs)
        scale_rows.append(row)
        print(f"  riemannian d=64 n_inputs={n}: {row['s_per_iter']:.4f} s/iter", flush=True)
    for row in scale_rows:
        row["s_per_iter_per_input"] = row["s_per_iter"] / row["n_inputs"]
    print_table(
        scale_rows,
        ["method", "d", "n_inputs", "n_iter", "draws", "s_per_iter", "s_per_iter_per_input", "stages"],
        title="Growth with n_inputs: riemannian, d = 64 (seconds per iteration of the 3-stage chain)",
    )

    # The target.
    if quick or args.no_target:
        largest = max(scale_rows, key=lambda r: r["n_inputs"])
        per_iter_100 = largest["s_per_iter"] * 100 / largest["n_inputs"]
        cert_rate = largest["certify_s"] / (largest["n_inputs"] * (largest["N"] + 100))
        search = per_iter_100 * 100
        target = _target_row(args)
        target.update(
            search_s=search,
            total_s=search + cert_rate * 100 * (args.target_n_samples + 100),
            how="EXTRAPOLATED from the n_inputs table (linear in n_inputs and n_iter)",
        )
    else:
        target = measure_target(args)
    print_target(target, args)


def _target_row(args):
    return dict(method="riemannian", d=64, n_inputs=100, n_iter=100, draws=args.draws, N=args.target_n_samples)


def measure_target(args):
    target = _target_row(args)
    row = run_case("riemannian", 64, 100, 100, args.draws, args.target_n_samples, args.n_jobs)
    target.update(
        search_s=row["search_s"], total_s=row["total_s"], stages=row["stages"], how="measured"
    )
    return target


def print_target(target, args):
    target["search_under_5min"] = target["search_s"] < 300
    target["total_under_5min"] = target["total_s"] < 300
    print_table(
        [target],
        [
            "method", "d", "n_inputs", "n_iter", "draws", "N", "search_s", "total_s",
            "search_under_5min", "total_under_5min", "how",
        ],
        title="Target: riemannian, d = 64, 100 inputs x 100 iterations x 256 draws, RandomForest(100)",
    )
    if "stages" in target:
        print(f"seconds per iteration by stage: {target['stages']}")


if __name__ == "__main__":
    main()
