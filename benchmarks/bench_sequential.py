"""Sequential certification through the estimators: base-model calls saved, radius kept.

Counts the rows passed to the base model (a RandomForest whose ``predict_proba``,
which its ``predict`` calls, adds ``len(X)`` to a counter) on the 2-D two-moons
problem, and prints three tables:

1. ``certify(X, radius=R)`` at ``R = 0.5 sigma`` and ``R = sigma`` against
   CERTIFY with a fixed ``N`` (default 100,000): calls, their ratio, and the
   inputs certified at ``R`` by one and not the other.
2. ``GridSearchCV`` over three values of ``sigma`` with ``make_certified_scorer``:
   calls against what the same search costs with fixed-``N`` certificates
   (every scored input ``N0 + N`` calls, counted exactly without running it).
3. ``sampling="sequential"``: calls and mean radius loss against fixed ``N``
   for ``radius_tol`` from 1 % to 10 %.

Run ``python benchmarks/bench_sequential.py`` (about 6 minutes on 2 cores) or
``--quick`` (N = 20,000, fewer inputs: about a minute) or ``--smoke`` (N = 1,000,
5 inputs, 10 trees, one tolerance: seconds).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import environment, limit_threads, print_table  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from smoothcert import SmoothedClassifier, make_certified_scorer  # noqa: E402


class CountingForest(RandomForestClassifier):
    """A RandomForest counting the rows it predicts (``predict`` calls ``predict_proba``)."""

    rows = 0

    def predict_proba(self, X):
        CountingForest.rows += len(X)
        return super().predict_proba(X)


def counted(fn):
    CountingForest.rows = 0
    start = time.perf_counter()
    out = fn()
    return out, CountingForest.rows, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny settings: a few seconds")
    parser.add_argument("--n-samples", type=int, default=None)
    parser.add_argument("--n-inputs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.n_samples, args.n_inputs, args.threads = args.n_samples or 1000, args.n_inputs or 5, args.threads or 1
    if args.threads:
        limit_threads(args.threads)
    n = args.n_samples or (20_000 if args.quick else 100_000)
    n_inputs = args.n_inputs or (80 if args.quick else 200)
    n_trees = 10 if args.smoke else 100
    sigma, n0 = 0.25, 100
    X, y = make_moons(300 + n_inputs, noise=0.15, random_state=0)
    X_train, y_train, X_test = X[:300], y[:300], X[300:]
    print(environment())
    print(f"N = {n}, N0 = {n0}, sigma = {sigma}, alpha = 0.001, {n_inputs} test inputs, "
          f"RandomForest({n_trees}) on two moons (noise 0.15)\n")

    clf = SmoothedClassifier(CountingForest(n_trees, random_state=0), sigma=sigma, n_samples=n,
                             random_state=0).fit(X_train, y_train)
    fixed, calls_fixed, t_fixed = counted(lambda: clf.certify(X_test))
    rows = [dict(what="fixed N", R="", calls=calls_fixed, ratio=1.0, seconds=t_fixed,
                 certified_at_R="", lost="", gained="")]
    for factor in (0.5, 1.0):
        R = factor * sigma
        seq, calls, seconds = counted(lambda: clf.certify(X_test, radius=R))
        rows.append(dict(
            what=f"radius={factor:g} sigma", R=R, calls=calls, ratio=calls_fixed / calls,
            seconds=seconds, certified_at_R=f"{seq.contains_ball(R).sum()}/{fixed.contains_ball(R).sum()}",
            lost=int((fixed.contains_ball(R) & ~seq.contains_ball(R)).sum()),
            gained=int((~fixed.contains_ball(R) & seq.contains_ball(R)).sum()),
        ))
    print_table(rows, ["what", "R", "calls", "ratio", "seconds", "certified_at_R", "lost", "gained"],
                title="1. certify(X, radius=R) vs fixed N (certified_at_R: sequential/fixed)")

    est = SmoothedClassifier(CountingForest(n_trees, random_state=0), n_samples=n, random_state=0)
    sigmas = [0.12, 0.25, 0.5]
    search = GridSearchCV(est, {"sigma": sigmas}, scoring=make_certified_scorer(sigma), cv=2)
    _, calls, seconds = counted(lambda: search.fit(X_train, y_train))
    fit_calls = 0  # fitting the forests predicts nothing
    fixed_calls = len(sigmas) * len(X_train) * (n0 + n) + fit_calls
    print_table(
        [dict(search=f"GridSearchCV sigma in {sigmas}, cv=2, scorer R={sigma}", calls=calls,
              fixed_N_calls=fixed_calls, ratio=fixed_calls / calls, seconds=seconds,
              best_sigma=search.best_params_["sigma"])],
        ["search", "calls", "fixed_N_calls", "ratio", "seconds", "best_sigma"],
        title="2. grid search with the certified scorer",
    )

    rows = []
    for tol in (0.05,) if args.smoke else (0.01, 0.02, 0.03, 0.05, 0.075, 0.1):
        seq_clf = SmoothedClassifier(CountingForest(n_trees, random_state=0), sigma=sigma, n_samples=n,
                                     sampling="sequential", radius_tol=tol,
                                     random_state=0).fit(X_train, y_train)
        seq, calls, seconds = counted(lambda: seq_clf.certify(X_test))
        both = fixed.certified & seq.certified
        loss = 1.0 - seq.radius[both].sum() / fixed.radius[both].sum()
        rows.append(dict(radius_tol=tol, calls=calls, ratio=calls_fixed / calls,
                         mean_radius_loss=f"{100 * loss:.2f} %",
                         abstained=f"{seq.abstained.sum()}/{fixed.abstained.sum()}",
                         seconds=seconds))
    print_table(rows, ["radius_tol", "calls", "ratio", "mean_radius_loss", "abstained", "seconds"],
                title="3. sampling='sequential' vs fixed N (loss over inputs certified by both)")


if __name__ == "__main__":
    main()
