"""``n_jobs=1`` against ``n_jobs=2`` for both estimators (2 cores).

Each estimator certifies the same inputs with one and two joblib workers; the
certificates are checked identical and the wall times of the best of
``--repeat`` runs (interleaved) are printed. With workers, whole chunks of inputs
(covariance search and certification together) run in each worker, whose BLAS /
OpenMP / torch pools are limited to its share of the cores.

Run ``python benchmarks/bench_jobs.py`` (about 4 minutes on 2 cores),
``--quick``, or ``--smoke`` (N = 500, 2 iterations x 16 draws, 4 inputs, one
run: seconds, most of them starting the workers).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import environment, print_table, timed  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier  # noqa: E402

from smoothcert import CertifiedRegion, SmoothedClassifier  # noqa: E402


def _cases(quick, smoke=False):
    n_samples = 500 if smoke else 10_000 if quick else 50_000
    n_iter = 2 if smoke else 10 if quick else 30
    draws = 16 if smoke else 128
    if smoke:  # one case per estimator, small forests
        return [
            ("SmoothedClassifier", "RandomForest(10)",
             SmoothedClassifier(RandomForestClassifier(10, random_state=0), n_samples=n_samples, random_state=0)),
            ("CertifiedRegion riemannian", "RandomForest(10)",
             CertifiedRegion(RandomForestClassifier(10, random_state=0), method="riemannian", n_iter=n_iter,
                             n_samples_optim=draws, n_samples=n_samples, random_state=0)),
        ]
    return [
        ("SmoothedClassifier", "RandomForest(100)",
         SmoothedClassifier(RandomForestClassifier(100, random_state=0), n_samples=n_samples,
                            random_state=0)),
        ("SmoothedClassifier", "HistGradientBoosting",
         SmoothedClassifier(HistGradientBoostingClassifier(random_state=0), n_samples=n_samples,
                            random_state=0)),
        ("CertifiedRegion riemannian", "RandomForest(100)",
         CertifiedRegion(RandomForestClassifier(100, random_state=0), method="riemannian",
                         n_iter=n_iter, n_samples_optim=draws, n_samples=n_samples, random_state=0)),
        ("CertifiedRegion diagonal", "HistGradientBoosting",
         CertifiedRegion(HistGradientBoostingClassifier(random_state=0), method="diagonal",
                         n_iter=n_iter, n_samples_optim=draws, n_samples=n_samples, random_state=0)),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny settings: a few seconds")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--n-inputs", type=int, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.repeat, args.n_inputs = 1, args.n_inputs or 4
    n_inputs = args.n_inputs or (20 if args.quick else 40)
    X, y = make_moons(300 + n_inputs, noise=0.15, random_state=0)
    X_train, y_train, X_test = X[:300], y[:300], X[300:]
    print(environment())
    # start the worker processes once (joblib reuses them): their start-up is a
    # one-off cost of a session, not of each call
    warm = SmoothedClassifier(n_samples=100, n_jobs=2).fit(X_train, y_train)
    warm.certify(X_test)
    rows = []
    for name, model, est in _cases(args.quick, args.smoke):
        est.fit(X_train, y_train)
        best = {1: np.full(2, np.inf), 2: np.full(2, np.inf)}
        certs = {}
        for _ in range(args.repeat):
            for jobs in (1, 2):
                est.set_params(n_jobs=jobs)

                def run(jobs=jobs):
                    certs[jobs] = est.certify(X_test)

                best[jobs] = np.minimum(best[jobs], timed(run))
        same = all(
            np.array_equal(getattr(certs[1], f), getattr(certs[2], f))
            for f in ("p_lower", "radius", "covariance")
        )
        rows.append(dict(estimator=name, base=model, inputs=n_inputs,
                         seconds_1_job=best[1][0], seconds_2_jobs=best[2][0],
                         speedup=best[1][0] / best[2][0], identical=same))
    print_table(rows, ["estimator", "base", "inputs", "seconds_1_job", "seconds_2_jobs", "speedup",
                       "identical"], title="n_jobs=1 vs n_jobs=2 (best wall time)")


if __name__ == "__main__":
    main()
