"""The progress bar's time estimate with workers: its projected total against the real time.

With ``verbose=1`` a call shows a tqdm bar; with joblib workers or a Dask
cluster it advances chunk by chunk. This script reads the bar as a user does
(the text written to stderr) and takes, at the first update with at least 10 %
done, the projected total time: the seconds since the call started plus the
remaining time the bar shows. The ratio to the call's real wall time should
be within 2 (the issue's target). Four cases, each with cold workers (the
loky workers are shut down before each case, the Dask cluster is started
before its timing): SmoothedClassifier and CertifiedRegion (diagonal, per
covariance, so that the search runs in ``certify``), on a random forest,
with ``n_jobs=2`` and on a local Dask cluster of 2 single-threaded workers
(``joblib.parallel_config(backend="dask")``).

Run ``python benchmarks/bench_progress.py`` (about a minute on 2 cores),
``--quick``, or ``--smoke`` (tiny settings, an in-process cluster: seconds).
The bar shows whole seconds, so ratios of short runs are coarse.
"""

import argparse
import io
import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import environment, print_table  # noqa: E402
from joblib import parallel_config  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402

from smoothcert import CertifiedRegion, SmoothedClassifier  # noqa: E402

#: ``  10%|...| 2.00M/20.0M [00:04<00:33, ...`` -> percent, elapsed, remaining.
BAR = re.compile(r"(\d+)%\|.*?\[([\d:]+)<([\d:]+|\?)")


class _Recorder(io.TextIOBase):
    """Stands in for stderr: keeps each write with the time it was made."""

    def __init__(self):
        self.writes = []

    def write(self, text):
        self.writes.append((time.perf_counter(), text))
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def _seconds(interval):
    total = 0
    for part in interval.split(":"):
        total = 60 * total + int(part)
    return total


def first_projection(writes, start, at=10):
    """(percent, projected total seconds) at the bar's first update with >= ``at`` % done."""
    for when, text in writes:
        for line in re.split(r"[\r\n]", text):
            match = BAR.search(line)
            if match and int(match.group(1)) >= at and match.group(3) != "?":
                return int(match.group(1)), (when - start) + _seconds(match.group(3))
    return None, float("nan")


def _estimators(args):
    forest = RandomForestClassifier(args.trees, random_state=0)
    smoothed = SmoothedClassifier(forest, n_samples=args.n_samples, random_state=0, verbose=1)
    region = CertifiedRegion(
        forest, method="diagonal", guarantee="per-covariance", n_iter=args.n_iter,
        n_samples_optim=64, n_samples=args.region_samples, random_state=0, verbose=1,
    )
    return [("SmoothedClassifier", smoothed), ("CertifiedRegion diagonal", region)]


def _cold_loky():
    """Shut the reusable loky workers down: the next call starts them, as a first call does."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def _timed_with_bar(est, X):
    recorder = _Recorder()
    saved, sys.stderr = sys.stderr, recorder
    start = time.perf_counter()
    try:
        cert = est.certify(X)
    finally:
        sys.stderr = saved
    real = time.perf_counter() - start
    percent, projected = first_projection(recorder.writes, start)
    return cert, real, percent, projected


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny settings: a few seconds")
    parser.add_argument("--n-inputs", type=int, default=None)
    parser.add_argument("--no-dask", action="store_true", help="leave the Dask cases out")
    args = parser.parse_args()
    args.trees = 10 if args.smoke else 50
    args.n_samples = 2_000 if args.smoke else 30_000 if args.quick else 100_000
    args.region_samples = 500 if args.smoke else 5_000 if args.quick else 10_000
    args.n_iter = 2 if args.smoke else 10 if args.quick else 20
    n_inputs = args.n_inputs or (20 if args.smoke else 200)
    X, y = make_moons(300 + n_inputs, noise=0.15, random_state=0)
    X_train, y_train, X_test = X[:300], y[:300], X[300:]
    print(environment())
    rows = []
    certs = {}
    for name, est in _estimators(args):
        est.fit(X_train, y_train)
        est.set_params(n_jobs=2)
        _cold_loky()
        cert, real, percent, projected = _timed_with_bar(est, X_test)
        certs[name, "joblib"] = cert
        rows.append(dict(estimator=name, workers="joblib n_jobs=2", inputs=n_inputs,
                         real_s=real, first_update_pct=percent, projected_s=projected,
                         ratio=projected / real))
    if not args.no_dask:
        try:
            import distributed
        except ImportError:
            distributed = None
            print("distributed is not installed: the Dask rows are left out")
        if distributed is not None:
            with (
                distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                         processes=not args.smoke,
                                         dashboard_address=None) as cluster,
                distributed.Client(cluster),
                parallel_config(backend="dask"),
            ):
                for name, est in _estimators(args):
                    est.fit(X_train, y_train)
                    est.set_params(n_jobs=-1)
                    cert, real, percent, projected = _timed_with_bar(est, X_test)
                    same = np.array_equal(cert.radius, certs[name, "joblib"].radius)
                    rows.append(dict(estimator=name, workers="dask 2 workers" + ("" if same else
                                     " (certificates differ!)"), inputs=n_inputs, real_s=real,
                                     first_update_pct=percent, projected_s=projected,
                                     ratio=projected / real))
    print_table(rows, ["estimator", "workers", "inputs", "real_s", "first_update_pct",
                       "projected_s", "ratio"],
                title="projected total time at the bar's first update with >= 10 % done "
                      "vs the real time (target: ratio within 2)")


if __name__ == "__main__":
    main()
