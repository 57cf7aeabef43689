"""Soft-vote bounds and sequential certification, on base models whose vote law is known.

The base models are written so that the law of their votes under the noise
is known exactly, and every number comes from the public
``SmoothedClassifier.certify`` (hard and soft votes, ``certify(X, radius=R)``,
``sampling="sequential"``):

* ``HalfSpace``: the label ``1[x_0 > 0]`` with one-hot ``predict_proba``
  (what a fully grown tree gives). At an input ``x_0 = sigma Phi^-1(p)``
  its votes under ``N(0, sigma^2)`` are Bernoulli(``p``), so a population of
  true top-class probabilities ``p`` is a population of inputs;
* ``BetaScores``: the score of class 1 is ``F^-1(Phi(x_0 / sigma))``,
  ``F`` the Beta(``a``, ``b``) distribution function; at ``x_0 = 0`` the
  scores under the noise are exactly Beta(``a``, ``b``).

Tables:

1. **soft vote on one-hot scores**: radius of ``vote="soft"`` relative to the
   hard-vote Clopper-Pearson radius of the same inputs (same ``random_state``),
   N = 100,000 and 1,000, alpha = 0.001 (target: within 1 %);
2. **soft vote on Beta scores**: ``p_lower`` against two independent
   references at the true mean ``mu`` and variance ``v`` of the scores
   (Hoeffding, ``mu - sqrt(log(1/alpha) / 2N)``, and the empirical-Bernstein
   bound of Maurer and Pontil, ``mu - sqrt(2 v log(2/alpha) / N) - 7 log(2/alpha)
   / (3 (N - 1))``), radius gain over Hoeffding;
3. **cost**: seconds of hard and soft ``certify`` on the same rows;
4. **tests of "certified at R"** (``certify(X, radius=R)``, R = 0.5 sigma and
   sigma): draws to decide (``Certificate.n_draws``), saving against N, and
   agreement with fixed-N CERTIFY of the same inputs, hard and soft;
5. **adaptive sample size** (``sampling="sequential"``, ``radius_tol`` 1-10 %):
   calls saved and radius loss against fixed-N CERTIFY (target: >= 3x at
   <= 5 % mean loss for ``radius_tol = 0.05``);
6. **validity**: how often ``certify(X, radius=R)`` claims R when the true
   ``p`` is just below ``Phi(R / sigma)``, at alpha = 0.1, hard and soft,
   against the naive uncorrected Clopper-Pearson test at every doubling look
   (scipy, simulated counts) and at one look (target: every corrected rate
   <= alpha).

Not measured (not public): the individual soft bounds the library combines
(relative entropy, Bentkus, betting), the choice between alpha spending and
the betting e-process for sequential tests, and the spending schedules; the
tables measure what ``vote="soft"`` and the sequential modes deliver.

Two populations of true ``p``:

* ``forest``: calibrated on a RandomForest(100) on ``_common.dataset(2)`` with
  sigma = 0.25: 15 % of the points never miss (p = 1 here), and ``1 - p`` is
  log-uniform on [1e-5, 1e-4] for 12.5 %, [1e-4, 1e-3] for 20 %, [1e-3, 3e-3]
  for 13.5 %, [3e-3, 1e-2] for 35 % and [1e-2, 1e-1] for 4 %;
* ``spread``: 60 % p = 1, 40 % uniform on [0.5, 1] (many inputs near any target).

Usage::

    python benchmarks/bench_sequential_bounds.py            # about 10 minutes on 2 cores (soft votes cost most)
    python benchmarks/bench_sequential_bounds.py --quick    # fewer rows
    python benchmarks/bench_sequential_bounds.py --smoke    # seconds: every table, tiny settings
    python benchmarks/bench_sequential_bounds.py --tables 46   # some tables only
"""

import argparse
import os
import sys
import time

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import environment, limit_threads, print_table  # noqa: E402

from smoothcert import SmoothedClassifier  # noqa: E402

SIGMA = 0.25
ALPHA = 0.001
PS = [0.6, 0.8, 0.9, 0.99, 0.999, 1.0]
#: Distance (in sigma) standing for p = 1: Phi(40) is 1.0 in float64.
FAR = 40.0


class HalfSpace(ClassifierMixin, BaseEstimator):
    """Label ``1[x_0 > 0]``, one-hot ``predict_proba``."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X):
        return (np.asarray(X)[:, 0] > 0).astype(np.int64)

    def predict_proba(self, X):
        one = self.predict(X).astype(np.float64)
        return np.stack([1.0 - one, one], axis=1)


class BetaScores(ClassifierMixin, BaseEstimator):
    """Score of class 1 ``F^-1(Phi(x_0 / sigma))``, ``F`` the Beta(``a``, ``b``) distribution function."""

    def __init__(self, a=9.0, b=1.0, sigma=SIGMA):
        self.a, self.b, self.sigma = a, b, sigma

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict_proba(self, X):
        s = stats.beta.ppf(stats.norm.cdf(np.asarray(X)[:, 0] / self.sigma), self.a, self.b)
        return np.stack([1.0 - s, s], axis=1)

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(np.int64)


def smoothed(model, **params):
    """A fitted ``SmoothedClassifier`` of ``model`` (sigma, alpha of the module unless given)."""
    params = {"sigma": SIGMA, "alpha": ALPHA, "random_state": 0, **params}
    return SmoothedClassifier(model, **params).fit(np.array([[-1.0, 0.0], [1.0, 0.0]]), np.array([0, 1]))


def distinct(x0):
    """Rows ``(x0_i, i)``: the models read ``x_0`` only; the second feature makes every row
    distinct, hence its own Monte-Carlo stream (identical rows would get identical draws)."""
    x0 = np.asarray(x0, dtype=np.float64)
    return np.column_stack([x0, np.arange(len(x0), dtype=np.float64)])


def inputs(p):
    """Inputs of ``HalfSpace`` whose votes are Bernoulli(``p``)."""
    t = np.where(p >= 1.0, FAR, stats.norm.ppf(np.minimum(p, 1.0)))
    return distinct(SIGMA * t)


def radius_of(p_lower, sigma=SIGMA):
    with np.errstate(invalid="ignore"):
        return np.where(p_lower > 0.5, sigma * stats.norm.ppf(np.clip(p_lower, 0.5, 1.0)), 0.0)


def population(name, size, rng):
    """True top-class probabilities of ``size`` simulated inputs."""
    if name == "spread":
        p = np.ones(size)
        some = rng.random(size) < 0.4
        p[some] = rng.uniform(0.5, 1.0, some.sum())
        return p
    bins = [(0.15, None), (0.125, (1e-5, 1e-4)), (0.20, (1e-4, 1e-3)), (0.135, (1e-3, 3e-3)),
            (0.35, (3e-3, 1e-2)), (0.04, (1e-2, 1e-1))]
    weights = np.array([w for w, _ in bins])
    which = rng.choice(len(bins), size=size, p=weights / weights.sum())
    p = np.ones(size)
    for j, (_, span) in enumerate(bins):
        sel = which == j
        if span is not None:
            p[sel] = 1.0 - 10.0 ** rng.uniform(np.log10(span[0]), np.log10(span[1]), sel.sum())
    return p


# ----------------------------------------------------------------- tables 1-3
def one_hot_table(reps, n_draws):
    rows = []
    for p in PS:
        X = inputs(np.full(reps, p))
        hard = smoothed(HalfSpace(), n_samples=n_draws).certify(X)
        soft = smoothed(HalfSpace(), n_samples=n_draws, vote="soft").certify(X)
        ok = hard.radius > 0
        loss = 1.0 - soft.radius[ok] / hard.radius[ok]
        rows.append({"N": n_draws, "p": p, "CP radius": hard.radius.mean(), "soft radius": soft.radius.mean(),
                     "soft loss": f"{100 * loss.mean():.2f} %" if ok.any() else "-",
                     "within 1 %": bool(ok.any() and loss.mean() <= 0.01)})
    print_table(rows, list(rows[0]), title=f"1. Soft vote on one-hot scores: radius vs hard-vote Clopper-Pearson "
                                           f"(N = {n_draws:,}, alpha = {ALPHA}, {reps} inputs per p)")


def beta_table(reps, n_draws):
    rows = []
    X = distinct(np.zeros(reps))
    for a, b in [(9, 1), (90, 10), (900, 100), (99, 1), (999, 1), (2, 0.2), (0.5, 0.1)]:
        mean, var = stats.beta.mean(a, b), stats.beta.var(a, b)
        soft = smoothed(BetaScores(a, b), n_samples=n_draws, vote="soft").certify(X)
        log_a = np.log(1 / ALPHA)
        hoeffding = mean - np.sqrt(log_a / (2 * n_draws))
        bernstein = mean - np.sqrt(2 * var * np.log(2 / ALPHA) / n_draws) - 7 * np.log(2 / ALPHA) / (3 * (n_draws - 1))
        r_h = radius_of(np.array(hoeffding))
        rows.append({"N": n_draws, "scores": f"Beta({a}, {b})", "mean": mean, "sd": np.sqrt(var),
                     "soft p_lower": soft.p_lower.mean(), "Hoeffding": hoeffding, "Bernstein": bernstein,
                     "soft radius": soft.radius.mean(), "Hoeffding radius": float(r_h),
                     "gain": f"{100 * (soft.radius.mean() / r_h - 1):+.2f} %" if r_h > 0 else "-"})
    print_table(rows, list(rows[0]), title=f"2. Soft vote on Beta scores: p_lower vs Hoeffding and empirical "
                                           f"Bernstein at the true mean / variance (N = {n_draws:,}, alpha = "
                                           f"{ALPHA}, {reps} inputs each)")


def cost_table(n_rows, n_draws, rng):
    X = inputs(population("forest", n_rows, rng))
    rows = []
    for vote in ("hard", "soft"):
        clf = smoothed(HalfSpace(), n_samples=n_draws, vote=vote)
        clf.certify(X[:2])  # warm up
        start = time.perf_counter()
        clf.certify(X)
        seconds = time.perf_counter() - start
        rows.append({"vote": vote, "rows": n_rows, "N": n_draws, "seconds": seconds,
                     "ns per draw": 1e9 * seconds / (n_rows * n_draws)})
    print_table(rows, list(rows[0]), title="3. Cost of certify (HalfSpace: the base model costs almost nothing)")


# -------------------------------------------------------------- tables 4-6
def target_table(n_rows, n_draws, rng, soft_rows):
    rows = []
    for factor in (0.5, 1.0):
        R = factor * SIGMA
        for pop in ("forest", "spread"):
            p = population(pop, n_rows, rng)
            for vote in ("hard", "soft"):
                X = inputs(p if vote == "hard" else p[:soft_rows])
                clf = smoothed(HalfSpace(), n_samples=n_draws, vote=vote)
                seq = clf.certify(X, radius=R)
                fixed = clf.certify(X).contains_ball(R)
                certified = seq.contains_ball(R)
                rows.append({"R/sigma": factor, "population": pop, "vote": vote, "rows": len(X),
                             "mean draws": seq.n_draws.mean(), "median": np.median(seq.n_draws),
                             "saving": n_draws / seq.n_draws.mean(), "certified": certified.mean(),
                             "fixed-N certified": fixed.mean(), "agree": (certified == fixed).mean()})
    print_table(rows, list(rows[0]), title=f"4. certify(X, radius=R) vs fixed-N CERTIFY (budget {n_draws:,}, "
                                           f"alpha = {ALPHA}, same inputs and random_state)")


def tol_table(n_rows, n_draws, rng, tols):
    X = inputs(population("forest", n_rows, rng))
    r_full = smoothed(HalfSpace(), n_samples=n_draws).certify(X).radius
    rows = []
    for tol in tols:
        res = smoothed(HalfSpace(), n_samples=n_draws, sampling="sequential", radius_tol=tol).certify(X)
        ok = r_full > 0
        loss = 1.0 - res.radius[ok] / r_full[ok]
        mean_loss = loss.mean() if ok.any() else np.nan
        rows.append({"radius_tol": tol, "saving": n_draws / res.n_draws.mean(),
                     "mean loss": f"{100 * mean_loss:.2f} %",
                     "loss of mean radius": f"{100 * (1 - res.radius.mean() / max(r_full.mean(), 1e-300)):.2f} %",
                     "p90 loss": f"{100 * np.quantile(loss, 0.9):.2f} %" if ok.any() else "-",
                     "target": ">= 3x at <= 5 %" if tol == 0.05 else "",
                     "met": bool(n_draws / res.n_draws.mean() >= 3 and mean_loss <= 0.05) if tol == 0.05 else ""})
    print_table(rows, list(rows[0]), title=f"5. sampling='sequential' (hard votes, forest population, {n_rows} "
                                           f"rows, budget {n_draws:,}): calls saved and radius loss vs fixed N")


def doubling_looks(first, budget):
    looks = [first]
    while looks[-1] < budget:
        looks.append(min(2 * looks[-1], budget))
    return np.array(looks)


def naive_overclaim(p, p_star, looks, alpha, rng, reps):
    """Uncorrected one-sided Clopper-Pearson (scipy) at each look of a simulated count: any claim."""
    widths = np.diff(np.concatenate([[0], looks]))
    k = np.cumsum(rng.binomial(widths[None, :], p, size=(reps, looks.size)), axis=1)
    with np.errstate(invalid="ignore"):
        lower = np.where(k > 0, stats.beta.ppf(alpha, np.maximum(k, 1), looks[None, :] - k + 1), 0.0)
    return np.any(lower >= p_star, axis=1).mean()


def validity_table(reps, rng, budgets, soft_reps):
    alpha = 0.1
    rows = []
    for p_star, budget in zip((stats.norm.cdf(0.5), stats.norm.cdf(1.0), 0.95), budgets):
        R = SIGMA * stats.norm.ppf(p_star)
        p = p_star - 1e-9
        X = inputs(np.full(reps, p))
        entry = {"p*": round(p_star, 4), "budget": budget}
        for vote in ("hard", "soft"):
            clf = smoothed(HalfSpace(), n_samples=budget, vote=vote, alpha=alpha)
            use = X if vote == "hard" else X[:soft_reps]
            entry[vote] = clf.certify(use, radius=R).contains_ball(R).mean()
        looks = doubling_looks(16, budget)
        entry["naive CP, doubling looks"] = naive_overclaim(p, p_star, looks, alpha, rng, reps)
        entry["CP one look"] = naive_overclaim(p, p_star, looks[-1:], alpha, rng, reps)
        entry["corrected <= alpha"] = bool(entry["hard"] <= alpha and entry["soft"] <= alpha)
        rows.append(entry)
    print_table(rows, list(rows[0]), title=f"6. Over-claim rate of certify(X, radius=R) at true p just below "
                                           f"Phi(R/sigma) (alpha = {alpha}, {reps:,} inputs, soft {min(reps, soft_reps):,})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and repetitions")
    parser.add_argument("--smoke", action="store_true", help="tiny settings, every table: a few seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tables", default="123456", help="which tables to print, e.g. 146")
    parser.add_argument("--threads", type=int, default=None, help="limit BLAS/OpenMP threads")
    args = parser.parse_args(argv)
    limit_threads(args.threads or (1 if args.smoke else None))
    smoke, quick = args.smoke, args.quick
    n = 2000 if smoke else 100_000

    def size(full, fast, tiny):
        return tiny if smoke else fast if quick else full

    print(environment())
    if "1" in args.tables:
        one_hot_table(size(20, 5, 2), n)
        one_hot_table(size(200, 20, 3), 1000)
    if "2" in args.tables:
        beta_table(size(10, 3, 2), n)
    if "3" in args.tables:
        cost_table(size(200, 50, 4), n, np.random.default_rng([args.seed, 3]))
    if "4" in args.tables:
        target_table(size(1000, 200, 6), n, np.random.default_rng([args.seed, 4]), soft_rows=size(100, 30, 3))
    if "5" in args.tables:
        tols = (0.05,) if smoke else (0.01, 0.02, 0.05, 0.10)
        tol_table(size(1000, 300, 6), n, np.random.default_rng([args.seed, 5]), tols)
    if "6" in args.tables:
        validity_table(size(20_000, 4000, 20), np.random.default_rng([args.seed, 6]),
                       budgets=(200, 200, 400) if smoke else (2000, 2000, 4000), soft_reps=size(4000, 1000, 10))


if __name__ == "__main__":
    main()
