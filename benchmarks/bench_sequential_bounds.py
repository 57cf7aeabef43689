"""Sequential certification and soft-vote bounds, on simulated vote streams.

No base model: each input is a true top-class probability ``p`` and its votes
are Bernoulli(``p``) draws (hard votes, or one-hot scores for soft votes), or
Beta-distributed scores. Tables:

1. **fixed-N soft bounds on one-hot scores** (what a fully grown tree's
   ``predict_proba`` gives): radius of each soft bound relative to the
   hard-vote Clopper-Pearson radius on the same draws, N = 100,000,
   alpha = 0.001;
2. **fixed-N soft bounds on Beta-distributed scores**, against the current
   Hoeffding / empirical-Bernstein union;
3. **cost** of each soft bound (seconds for a few thousand rows);
4. **tests of "certified at p*"** for ``p* = Phi(0.5)`` and ``Phi(1)``: draws
   to decide and agreement with the fixed-N Clopper-Pearson test, for alpha
   spending over doubling looks and for the betting e-process, hard and soft;
5. **adaptive sample size** (``radius_tol``): calls saved and mean radius loss
   against fixed-N CERTIFY, for tolerances 1-10 % and several spending schedules;
6. **validity**: how often "certified at p*" is claimed when the true ``p`` is
   just below ``p*``, at alpha = 0.1, for each method and for the naive
   uncorrected Clopper-Pearson at every look.

Two populations of true ``p``:

* ``forest``: calibrated on a RandomForest(100) on ``_common.dataset(2)`` with
  sigma = 0.25 (200 test points, 30,000 draws each): 15 % of the points never
  miss (p = 1 here), and ``1 - p`` is log-uniform on [1e-5, 1e-4] for 12.5 %,
  [1e-4, 1e-3] for 20 %, [1e-3, 3e-3] for 13.5 %, [3e-3, 1e-2] for 35 % and
  [1e-2, 1e-1] for 4 %;
* ``spread``: 60 % p = 1, 40 % uniform on [0.5, 1] (many inputs near any target).

Usage::

    python benchmarks/bench_sequential_bounds.py            # about 45 s on 2 cores
    python benchmarks/bench_sequential_bounds.py --quick    # about 25 s
    python benchmarks/bench_sequential_bounds.py --tables 46   # some tables only
"""

import argparse
import os
import sys
import time

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import environment, print_table  # noqa: E402

from smoothcert._certify._looks import geometric_looks  # noqa: E402
from smoothcert._certify._sequential import SequentialCertifier  # noqa: E402
from smoothcert._certify._soft_bounds import (  # noqa: E402
    betting_lower_bound,
    combined_soft_lower_bound,
)
from smoothcert._certify._stats import (  # noqa: E402
    bentkus_lower_bound,
    clopper_pearson_lower,
    kl_lower_bound,
    mahalanobis_radius,
    soft_lower_bound,
)

N = 100_000
ALPHA = 0.001
PS = [0.6, 0.8, 0.9, 0.99, 0.999, 1.0]


# ----------------------------------------------------------------- populations


def population(name, size, rng):
    """True top-class probabilities of ``size`` simulated inputs."""
    if name == "spread":
        p = np.ones(size)
        some = rng.random(size) < 0.4
        p[some] = rng.uniform(0.5, 1.0, some.sum())
        return p
    bins = [
        (0.15, None),
        (0.125, (1e-5, 1e-4)),
        (0.20, (1e-4, 1e-3)),
        (0.135, (1e-3, 3e-3)),
        (0.35, (3e-3, 1e-2)),
        (0.04, (1e-2, 1e-1)),
    ]
    weights = np.array([w for w, _ in bins])
    which = rng.choice(len(bins), size=size, p=weights / weights.sum())
    p = np.ones(size)
    for j, (_, span) in enumerate(bins):
        sel = which == j
        if span is not None:
            lo, hi = np.log10(span[0]), np.log10(span[1])
            p[sel] = 1.0 - 10.0 ** rng.uniform(lo, hi, sel.sum())
    return p


def radius(p_lower):
    return mahalanobis_radius(p_lower)


# ----------------------------------------------------------- table 1, 2, 3


def soft_bounds(scores):
    n = scores.shape[1]
    mean = scores.mean(axis=1)
    var = scores.var(axis=1, ddof=1)
    return {
        "union (current)": soft_lower_bound(mean, var, n, ALPHA),
        "KL": kl_lower_bound(mean, n, ALPHA),
        "Bentkus": bentkus_lower_bound(mean, n, ALPHA),
        "betting": betting_lower_bound(scores, ALPHA),
        "Bentkus|betting": combined_soft_lower_bound(scores, ALPHA),
    }


def one_hot_table(reps, rng, n_draws=N):
    rows = []
    for p in PS:
        votes = (rng.random((reps, n_draws)) < p).astype(np.float64)
        k = votes.sum(axis=1)
        r_cp = radius(clopper_pearson_lower(k, n_draws, ALPHA))
        bounds = soft_bounds(votes)
        row = {"N": n_draws, "p": p, "CP radius": r_cp.mean()}
        for name, lower in bounds.items():
            loss = 1.0 - radius(lower) / np.where(r_cp > 0, r_cp, np.nan)
            row[name] = f"{100 * np.nanmean(loss):.2f} %"
        rows.append(row)
    print_table(
        rows,
        list(rows[0]),
        title=f"1. Soft bounds on one-hot scores: radius loss vs hard-vote "
        f"Clopper-Pearson on the same draws (N = {n_draws:,}, alpha = {ALPHA}, {reps} streams per p; "
        "Bentkus|betting = the larger of Bentkus at 0.8 alpha and betting at 0.2 alpha)",
    )


def beta_table(reps, rng, n_draws=N):
    rows = []
    for a, b in [(9, 1), (90, 10), (900, 100), (99, 1), (999, 1), (2, 0.2), (0.5, 0.1)]:
        scores = rng.beta(a, b, (reps, n_draws))
        mean = scores.mean(axis=1)
        var = scores.var(axis=1, ddof=1)
        bounds = soft_bounds(scores)
        ref = radius(bounds["union (current)"])
        row = {
            "N": n_draws,
            "scores": f"Beta({a}, {b})",
            "mean": mean.mean(),
            "sd": np.sqrt(var.mean()),
            "union radius": ref.mean(),
        }
        for name in ("KL", "Bentkus", "betting", "Bentkus|betting"):
            gain = radius(bounds[name]) / ref - 1.0
            row[name] = f"{100 * gain.mean():+.2f} %"
        rows.append(row)
    print_table(
        rows,
        list(rows[0]),
        title=f"2. Soft bounds on Beta scores: radius vs the current "
        f"Hoeffding / Bernstein union (N = {n_draws:,}, alpha = {ALPHA}, {reps} streams each)",
    )


def cost_table(n_rows, rng):
    p = population("forest", n_rows, rng)
    rows = []
    block = 4096
    # betting: per-draw one-hot scores fed in blocks, as the engine would
    start = time.perf_counter()
    convert = 0.0
    from smoothcert._certify._betting import BettingConfidenceSequence

    cs = BettingConfidenceSequence(n_rows, geometric_looks(1, N), ALPHA, horizon=N)
    idx = np.arange(n_rows)
    sums = np.zeros(n_rows)
    for s in range(0, N, block):
        m = min(block, N - s)
        scores = (rng.random((n_rows, m)) < p[:, None]).astype(np.float64)
        sums += scores.sum(axis=1)
        t0 = time.perf_counter()
        cs.update(idx, scores)
        convert += time.perf_counter() - t0
    total_bet = convert
    mean = sums / N
    t0 = time.perf_counter()
    kl_lower_bound(mean, N, ALPHA)
    t_kl = time.perf_counter() - t0
    t0 = time.perf_counter()
    bentkus_lower_bound(mean, N, ALPHA)
    t_bk = time.perf_counter() - t0
    t0 = time.perf_counter()
    cs2 = BettingConfidenceSequence(n_rows, geometric_looks(1, N), ALPHA, horizon=N)
    looks = geometric_looks(1, N)
    prev = 0
    for look in looks:
        k = rng.binomial(look - prev, p)
        cs2.update_counts(idx, k, look - prev)
        prev = look
    t_counts = time.perf_counter() - t0
    del start
    rows.append({"bound": "KL (sums only)", "seconds": t_kl})
    rows.append({"bound": "Bentkus (sums only)", "seconds": t_bk})
    rows.append({"bound": "betting, per-draw scores fed in blocks of 4096", "seconds": total_bet})
    rows.append({"bound": "betting, from counts at the 18 looks", "seconds": t_counts})
    print_table(
        rows,
        ["bound", "seconds"],
        title=f"3. Cost: {n_rows:,} rows x N = {N:,} draws "
        "(betting includes converting the scores to exact sums)",
    )


# --------------------------------------------------------------- simulation


def simulate(cert, p, rng, soft=False):
    """Drive a certifier with Bernoulli(p) votes; returns the full-budget counts too.

    The increments between looks are drawn once for all looks, so that the
    fixed-N count (their sum) uses the same draws as the sequential run.
    """
    looks = cert.looks()
    widths = np.diff(np.concatenate([[0], looks]))
    increments = rng.binomial(widths[None, :], p[:, None])
    rows = np.arange(p.size)
    j = np.zeros(p.size, dtype=np.int64)
    while rows.size:
        look = cert.next_look(rows)
        k = np.searchsorted(looks, look)
        counts = increments[rows, k]
        if soft:
            width = int(widths[k[0]])
            assert np.all(widths[k] == width)
            block = (np.arange(width)[None, :] < counts[:, None]).astype(np.float64)
            block = rng.permuted(block, axis=1)
            cert.update(rows, block)
        else:
            cert.update(rows, counts, widths[k])
        rows = rows[~cert.decide(rows, look)]
        j[:] = 0
    return cert.result(), increments.sum(axis=1)


def target_table(n_rows, rng, soft_rows):
    rows = []
    for radius_target in (0.5, 1.0):
        p_star = stats.norm.cdf(radius_target)
        for pop in ("forest", "spread"):
            p = population(pop, n_rows, rng)
            for vote, method in (
                ("hard", "spending"),
                ("hard", "betting"),
                ("soft", "spending"),
                ("soft", "betting"),
            ):
                use = p if vote == "hard" else p[:soft_rows]
                cert = SequentialCertifier(
                    use.size, budget=N, alpha=ALPHA, vote=vote, target_p=p_star, method=method
                )
                res, k_full = simulate(cert, use, rng, soft=vote == "soft")
                fixed = clopper_pearson_lower(k_full, N, ALPHA) >= p_star
                rows.append(
                    {
                        "R/sigma": radius_target,
                        "population": pop,
                        "vote": vote,
                        "method": method,
                        "rows": use.size,
                        "mean draws": res.n_draws.mean(),
                        "median": np.median(res.n_draws),
                        "saving": N / res.n_draws.mean(),
                        "certified": res.certified.mean(),
                        "fixed-N certified": fixed.mean(),
                        "agree": (res.certified == fixed).mean(),
                    }
                )
    print_table(
        rows,
        list(rows[0]),
        title=f"4. Tests of 'certified at p* = Phi(R/sigma)' (budget {N:,}, "
        f"alpha = {ALPHA}; fixed-N = Clopper-Pearson on all {N:,} draws of the same stream)",
    )


def tol_table(n_rows, rng, schedules):
    p = population("forest", n_rows, rng)
    rows = []
    for label, kwargs in schedules:
        for tol in (0.01, 0.02, 0.05, 0.10):
            cert = SequentialCertifier(p.size, budget=N, alpha=ALPHA, radius_tol=tol, **kwargs)
            res, k_full = simulate(cert, p, rng)
            r_full = radius(clopper_pearson_lower(k_full, N, ALPHA))
            loss = 1.0 - res.radius / np.where(r_full > 0, r_full, np.nan)
            rows.append(
                {
                    "schedule": label,
                    "tol": tol,
                    "saving": N / res.n_draws.mean(),
                    "mean loss": f"{100 * np.nanmean(loss):.2f} %",
                    "loss of mean radius": f"{100 * (1 - res.radius.mean() / r_full.mean()):.2f} %",
                    "p90 loss": f"{100 * np.nanquantile(loss, 0.9):.2f} %",
                }
            )
    print_table(
        rows,
        list(rows[0]),
        title=f"5. Adaptive sample size (hard votes, forest population, "
        f"{n_rows} rows): calls saved and radius loss vs fixed-N CERTIFY",
    )


def naive_overclaim(p, p_star, looks, alpha, rng, reps):
    widths = np.diff(np.concatenate([[0], looks]))
    k = np.cumsum(rng.binomial(widths[None, :], p, size=(reps, looks.size)), axis=1)
    lower = clopper_pearson_lower(k, looks[None, :], alpha)
    return np.any(lower >= p_star, axis=1).mean()


def validity_table(reps, rng):
    alpha = 0.1
    rows = []
    for p_star, budget, first in (
        (stats.norm.cdf(0.5), 2000, 16),
        (stats.norm.cdf(1.0), 2000, 16),
        (0.95, 4000, 32),
    ):
        p = p_star - 1e-9
        looks = geometric_looks(first, budget)
        truth = np.full(reps, p)
        entry = {"p*": round(p_star, 4), "budget": budget, "looks": looks.size}
        for vote, method in (
            ("hard", "spending"),
            ("hard", "betting"),
            ("soft", "spending"),
            ("soft", "betting"),
        ):
            if vote == "soft" and reps > 4000:
                use = truth[:4000]
            else:
                use = truth
            cert = SequentialCertifier(
                use.size,
                budget=budget,
                alpha=alpha,
                vote=vote,
                target_p=p_star,
                method=method,
                first_look=first,
            )
            res, _ = simulate(cert, use, rng, soft=vote == "soft")
            entry[f"{vote} {method}"] = res.certified.mean()
        entry["naive CP every look"] = naive_overclaim(p, p_star, looks, alpha, rng, reps)
        entry["CP one look"] = naive_overclaim(p, p_star, looks[-1:], alpha, rng, reps)
        rows.append(entry)
    print_table(
        rows,
        list(rows[0]),
        title=f"6. Over-claim rate at true p just below p* (alpha = {alpha}, "
        f"{reps:,} repetitions; soft columns {min(reps, 4000):,})",
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and repetitions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tables", default="123456", help="which tables to print, e.g. 146")
    args = parser.parse_args(argv)
    quick = args.quick
    print(environment())
    if "1" in args.tables:
        rng = np.random.default_rng([args.seed, 1])  # each table reproducible alone
        one_hot_table(5 if quick else 20, rng)
        one_hot_table(20 if quick else 200, rng, n_draws=1000)
    if "2" in args.tables:
        rng = np.random.default_rng([args.seed, 2])  # each table reproducible alone
        beta_table(3 if quick else 10, rng)
        beta_table(20 if quick else 200, rng, n_draws=1000)
    if "3" in args.tables:
        rng = np.random.default_rng([args.seed, 3])  # each table reproducible alone
        cost_table(500 if quick else 2000, rng)
    if "4" in args.tables:
        rng = np.random.default_rng([args.seed, 4])  # each table reproducible alone
        target_table(2000 if quick else 10_000, rng, soft_rows=300 if quick else 1000)
    if "5" in args.tables:
        rng = np.random.default_rng([args.seed, 5])  # each table reproducible alone
        schedules = [
            ("spending, uniform (alpha/K)", dict(method="spending", spending="uniform")),
            ("spending, sqrt(n_k) (default)", dict(method="spending", spending="sqrt")),
            ("spending, proportional to n_k", dict(method="spending", spending="proportional")),
            ("spending, half at the last look", dict(method="spending", spending=0.5)),
            (
                "spending, uniform, looks x sqrt(2)",
                dict(method="spending", spending="uniform", ratio=2**0.5),
            ),
            ("betting", dict(method="betting")),
        ]
        tol_table(1000 if quick else 4000, rng, schedules)
    if "6" in args.tables:
        rng = np.random.default_rng([args.seed, 6])  # each table reproducible alone
        validity_table(4000 if quick else 20_000, rng)


if __name__ == "__main__":
    main()
