"""``SmoothedClassifier.certify`` against a straightforward per-input loop.

The loop is written here in the style of the reference implementation of
Cohen et al. (2019): one input at a time, noise drawn in batches of 1,000,
vote counts from the base model's predictions, then a one-sided
Clopper-Pearson bound from ``scipy.stats.beta``. It calls the same base model
through its fastest path (``predict``; for skorch nets the bare torch module on
float32 under ``torch.inference_mode``, as the reference code calls its
network), so the comparison measures the engine, not the adapter.

Same models, inputs, ``sigma``, ``N``, ``N0`` and ``alpha`` on both sides; the
noise differs, so ``agree`` is the fraction of inputs with the same decision
(class or abstention) and ``max_dr`` the largest radius difference, a sanity
check only. Targets: >= 3x faster for small models (LogisticRegression, the
skorch MLP) and never slower.

Usage::

    python benchmarks/bench_vs_loop.py           # N = 100,000
    python benchmarks/bench_vs_loop.py --quick   # N = 10,000
    python benchmarks/bench_vs_loop.py --smoke   # seconds: d = 2, N = 1,000, tiny settings
"""

import argparse
import os

import numpy as np
from _common import (
    MODEL_NAMES,
    SIGMA,
    available_models,
    bare_predict,
    dataset,
    environment,
    limit_threads,
    make_model,
    print_table,
    throughput,
    timed,
    workload,
)
from scipy import stats

from smoothcert import SmoothedClassifier

SMALL_MODELS = ("logreg", "skorch_mlp")


def loop_certify(predict, X, *, sigma, n_samples, n_selection, alpha, n_classes, batch=1000, seed=0):
    """Per-input CERTIFY in the style of Cohen et al.'s reference code."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]

    def sample_counts(x, num):
        counts = np.zeros(n_classes, dtype=np.int64)
        remaining = num
        while remaining > 0:
            size = min(batch, remaining)
            remaining -= size
            noisy = np.tile(x, (size, 1)) + sigma * rng.standard_normal((size, d))
            labels = np.asarray(predict(noisy)).astype(np.intp)
            counts += np.bincount(labels, minlength=n_classes)
        return counts

    top = np.empty(len(X), dtype=np.intp)
    radius = np.zeros(len(X))
    abstained = np.zeros(len(X), dtype=bool)
    for i, x in enumerate(X):
        top[i] = sample_counts(x, n_selection).argmax()
        k = sample_counts(x, n_samples)[top[i]]
        p_lower = stats.beta.ppf(alpha, k, n_samples - k + 1) if k > 0 else 0.0
        if p_lower < 0.5:
            abstained[i] = True
        else:
            radius[i] = sigma * stats.norm.ppf(p_lower)
    return top, radius, abstained


def measure(name, d, args):
    X, y = dataset(d, n_train=args.n_train)
    n_classes = len(np.unique(y))
    clf = SmoothedClassifier(
        make_model(name, d, n_classes),
        sigma=SIGMA,
        n_samples=args.n_samples,
        n_samples_selection=args.n_selection,
        alpha=args.alpha,
        random_state=0,
    ).fit(X, y)
    predict = bare_predict(clf.estimator_)
    rate = throughput(predict, X[:1], d)
    n_inputs, n_samples = workload(rate, d, args.n_samples, args.n_selection, args.budget, args.max_inputs)
    clf.set_params(n_samples=n_samples)
    Xc = X[:n_inputs]
    common = dict(sigma=SIGMA, n_samples=n_samples, n_selection=args.n_selection, alpha=args.alpha)

    t_loop = t_ours = np.full(2, np.inf)
    for _ in range(args.repeat):  # interleaved, best of ``repeat``
        t_loop = np.minimum(
            t_loop, timed(lambda: loop_certify(predict, Xc, n_classes=n_classes, **common))
        )
        t_ours = np.minimum(t_ours, timed(lambda: clf.certify(Xc)))
    top, radius, abstained = loop_certify(predict, Xc, n_classes=n_classes, **common)
    cert = clf.certify(Xc)
    same = np.where(abstained, cert.abstained, ~cert.abstained & (clf.classes_[top] == cert.prediction))
    return dict(
        model=name,
        d=d,
        n_inputs=n_inputs,
        N=n_samples,
        loop_s=t_loop[0],
        smoothcert_s=t_ours[0],
        speedup=t_loop[0] / t_ours[0],
        cpu_speedup=t_loop[1] / t_ours[1],
        agree=float(np.mean(same)),
        max_dr=float(np.max(np.abs(radius - cert.radius))),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (N = 10,000)")
    parser.add_argument("--smoke", action="store_true", help="tiny settings (d = 2, N = 1,000): a few seconds")
    parser.add_argument("--n-train", type=int, default=None, help="training points (d != 64)")
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--dims", nargs="+", type=int, default=[2, 64, 784])
    parser.add_argument("--n-samples", type=int, default=None, help="N (default 100,000)")
    parser.add_argument("--n-selection", type=int, default=100, help="N0")
    parser.add_argument("--alpha", type=float, default=0.001)
    parser.add_argument("--budget", type=float, default=None, help="seconds of model time per case")
    parser.add_argument("--max-inputs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="limit BLAS/OpenMP/torch threads")
    args = parser.parse_args(argv)
    if args.smoke:
        args.dims, args.max_inputs, args.n_train = [2], 3, args.n_train or 300
        args.threads = args.threads or 1
        args.n_samples = args.n_samples or 1000
        args.budget, args.repeat = args.budget or 0.01, args.repeat or 1
    limit_threads(args.threads)
    args.models = available_models(args.models)
    if args.n_samples is None:
        args.n_samples = 10_000 if args.quick else 100_000
    if args.budget is None:
        args.budget = 0.3 if args.quick else 1.0
    if args.repeat is None:
        args.repeat = 1 if args.quick else 2

    print(environment())
    print(f"load average at start: {os.getloadavg()}")
    rows = []
    for d in args.dims:
        for name in args.models:
            row = measure(name, d, args)
            small = name in SMALL_MODELS
            row["target"] = ">= 3x" if small else ">= 1x"
            row["met"] = row["speedup"] >= (3.0 if small else 1.0)
            row["cpu_met"] = row["cpu_speedup"] >= (3.0 if small else 1.0)
            rows.append(row)
            print(f"  {name:>10s} d={d:<4d} speedup {row['speedup']:.2f} (cpu {row['cpu_speedup']:.2f})", flush=True)
    print_table(
        rows,
        [
            "model", "d", "n_inputs", "N", "loop_s", "smoothcert_s", "speedup", "cpu_speedup",
            "target", "met", "cpu_met", "agree", "max_dr",
        ],
        title="certify vs a per-input loop (batches of 1,000 draws, Clopper-Pearson from scipy)",
    )


if __name__ == "__main__":
    main()
