"""Certified regions in dimension on problems with a known boundary normal.

For fixed / isotropic / diagonal / riemannian (``CertifiedRegion``) at
d = 2, 16, 64 (``--dims 784`` is the hook for later: the library refuses the
riemannian method above 512 features, so that row is skipped there), on

(i)   ``rotated``: a hyperplane boundary with a random normal,
(ii)  ``axis``: the same problem unrotated (normal along a coordinate axis),
      with the same inputs (paired),

each with a forest (score-function gradients) and a skorch MLP (pathwise),
trained on data from that problem, and

(iii) ``linear``: a LogisticRegression on the rotated problem, whose smoothed
      hard vote is exactly ``Phi(|w.x + b| / sqrt(w^T Sigma w))``: the best
      covariance within the library's bounds is known in closed form
      (``_dimproblems.LinearOracle``), and the table gives the fraction of its
      log-volume gain over the best isotropic covariance that each search
      reaches (median over inputs).

Columns: median certified log-volume (``d log r + 1/2 log det Sigma + log
V_d``; abstentions and misclassified inputs count as ``-inf``), its gain over
the isotropic row, the fraction of inputs whose ball ``B2(x, R)`` lies inside
the certified region and is correctly classified, the median ``|cos|``
between the certified ellipsoid's smallest axis and the boundary normal, the
median condition number, and the search's seconds (from
``Certificate.search_info``).

Models: ``forest_eq`` (default forest) is the axis problem's RandomForest
composed with the rotation, ``x -> forest(Q^T x)``: on the rotated problem it
is exactly the axis model expressed in another basis, so the two problems
differ only for the search (the rotation-invariance test). ``forest`` is a
forest trained on the rotated coordinates themselves (a staircase
approximation of an oblique plane: its best covariance is not the
hyperplane's). ``mlp`` is trained on each problem's own coordinates.

``--prototype`` adds the rows of the prototype search of ``_searchlab.py``
(``diagonal*`` / ``riemannian*``: the "volume" recipe; ``riemannian*S``: the
"superset" recipe that keeps the isotropic floor), certified by the
library's own CERTIFY on fresh draws.

A final table checks the issue's acceptance targets.

Usage::

    python benchmarks/bench_dimension.py                       # d = 2, 16, 64
    python benchmarks/bench_dimension.py --dims 16 64 --prototype
    python benchmarks/bench_dimension.py --dims 784 --methods fixed isotropic diagonal
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # measure the working tree's package
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from _common import environment, limit_threads, print_table  # noqa: E402
from _dimproblems import (  # noqa: E402
    DEFAULT_DIMS,
    SIGMA,
    SIGMA_BOUNDS,
    LinearOracle,
    Problem,
    cert_metrics,
    fit_region,
)

METHODS = ("fixed", "isotropic", "diagonal", "riemannian")
RIEMANNIAN_MAX_D = 512


def _inputs(region, X):
    return X.astype(np.float32) if region.estimator_.__class__.__name__ == "NeuralNetClassifier" else X


def run_problem(kind, model, d, args):
    problem = Problem(d, kind, n_train=args.n_train, n_test=max(200, 4 * args.n_inputs), seed=args.seed)
    X, y, dist = problem.inputs(args.n_inputs)
    normal = problem.normal
    rows, logvols = [], {}
    oracle = None
    params = dict(
        n_iter=args.n_iter,
        n_samples_optim=args.n_draws,
        n_samples=args.n_samples,
        random_state=0,
    )
    start = time.perf_counter()
    region = fit_region(model, problem, method="fixed", **params)  # one fitted base for every method
    fit_s = time.perf_counter() - start
    if model == "logreg":
        w, b = region.estimator_.coef_[0], region.estimator_.intercept_[0]
        normal = w / np.linalg.norm(w)
        dist = np.abs(X @ w + b) / np.linalg.norm(w)
        oracle = LinearOracle(d, args.n_samples, region.alpha, SIGMA * SIGMA_BOUNDS[0], SIGMA * SIGMA_BOUNDS[1])
    for method in args.methods:
        if method == "riemannian" and d > RIEMANNIAN_MAX_D:
            continue
        region.set_params(method=method)
        start = time.perf_counter()
        cert = region.certify(_inputs(region, X))
        total = time.perf_counter() - start
        info = cert.search_info or {}
        search_s = sum(float(np.sum(v)) for v in info.get("seconds_per_iteration", {}).values()) * args.n_iter
        met, lv = cert_metrics(cert, y, normal, args.radii)
        logvols[method] = lv
        rows.append(dict(problem=kind, model=model, d=d, method=method, **met, search_s=search_s, total_s=total, fit_s=fit_s))
    if args.prototype:
        rows += _prototype_rows(region, problem, X, y, normal, kind, model, d, args, logvols)
    if oracle is not None:
        rows += _oracle_rows(oracle, region, problem, X, y, dist, normal, kind, d, args, logvols)
    base = logvols.get("isotropic")
    for row in rows:
        lv = logvols.get(row["method"])
        if base is not None and lv is not None:
            row["gain"] = row["logvol"] - float(np.median(base))
        if oracle is not None and lv is not None and "frac" not in row:
            row["frac"] = _fraction(oracle.best(dist), lv)
    return rows


def _fraction(best, lv):
    """Median over inputs of the fraction of the oracle's gain over isotropic."""
    gain = best["logvol_ani"] - best["logvol_iso"]
    frac = (lv - best["logvol_iso"]) / np.where(gain > 0, gain, np.nan)
    frac = np.where(np.isfinite(lv), frac, -np.inf)
    return float(np.nanmedian(frac))


def _prototype_rows(region, problem, X, y, normal, kind, model, d, args, logvols):
    from _searchlab import Lab, certify_covariances, method_config

    gradient = "pathwise" if model == "mlp" else "score"
    lab = Lab(
        region._adapter(), _inputs(region, X), gradient=gradient, sigma=SIGMA, sigma_bounds=SIGMA_BOUNDS,
        n_samples=args.n_samples, alpha=region.alpha, seed=0, normal=normal,
    )
    out = []
    wanted = [("diagonal*", "volume", "diagonal"), ("riemannian*", "volume", "riemannian"), ("riemannian*S", "superset", "riemannian")]
    for label, preset, method in wanted:
        if method == "riemannian" and d > RIEMANNIAN_MAX_D:
            continue
        cfg = method_config(preset, method).but(n_iter=args.n_iter, n_draws=args.n_draws)
        start = time.perf_counter()
        S, _ = lab.run(cfg)
        search_s = time.perf_counter() - start
        cert = certify_covariances(region, _inputs(region, X), S)
        met, lv = cert_metrics(cert, y, normal, args.radii)
        logvols[label] = lv
        out.append(dict(problem=kind, model=model, d=d, method=label, **met, search_s=search_s, total_s=time.perf_counter() - start))
    return out


def _oracle_rows(oracle, region, problem, X, y, dist, normal, kind, d, args, logvols):
    """Closed-form optimum: expected values, and the same covariances certified."""
    from _searchlab import certify_covariances

    best = oracle.best(dist)
    out = []
    for label, key, s_key in (("oracle-iso", "logvol_iso", "s_iso"), ("oracle", "logvol_ani", "s_ani")):
        if key == "logvol_iso":
            S = (best[s_key] ** 2)[:, None, None] * np.eye(d)[None]
        else:
            S = oracle.covariance(normal, best[s_key])
        cert = certify_covariances(region, _inputs(region, X), S)
        met, lv = cert_metrics(cert, y, normal, args.radii)
        logvols[label] = lv
        out.append(dict(problem=kind, model="logreg", d=d, method=label, **met, expected=float(np.median(best[key])), frac=_fraction(best, lv)))
    return out


def targets(rows, d_list):
    """The issue's acceptance targets, per model and dimension."""
    table = []

    def get(problem, model, d, method):
        for r in rows:
            if (r["problem"], r["model"], r["d"], r["method"]) == (problem, model, d, method):
                return r
        return None

    models = sorted({r["model"] for r in rows if r["problem"] != "linear"})
    for suffix in ("", "*"):
        for model in models:
            for d in d_list:
                ax_iso, ax_diag = get("axis", model, d, "isotropic"), get("axis", model, d, "diagonal" + suffix)
                ro_iso, ro_diag = get("rotated", model, d, "isotropic"), get("rotated", model, d, "diagonal" + suffix)
                ro_riem = get("rotated", model, d, "riemannian" + suffix)
                if None in (ax_iso, ax_diag, ro_iso, ro_diag, ro_riem):
                    continue
                if model == "mlp":
                    same = abs(ro_riem["logvol"] - ax_diag["logvol"])
                else:
                    same = abs((ro_riem["logvol"] - ro_iso["logvol"]) - (ax_diag["logvol"] - ax_iso["logvol"]))
                balls = [k for k in ro_riem if k.startswith("ball@")]
                table.append(
                    dict(
                        search="library" if not suffix else "prototype",
                        model=model,
                        d=d,
                        axis_diag_gain=ax_diag["logvol"] - ax_iso["logvol"],
                        rot_riem_over_diag=ro_riem["logvol"] - ro_diag["logvol"],
                        rot_cos=ro_riem["cos"],
                        rot_vs_axis=same,
                        ball_ok=all(ro_riem[k] >= ro_iso[k] and ax_diag[k] >= ax_iso[k] for k in balls),
                    )
                )
    for r in rows:
        if r["problem"] == "linear" and r["method"] in ("riemannian", "riemannian*", "riemannian*S"):
            table.append(dict(search=r["method"], model="logreg", d=r["d"], oracle_frac=r.get("frac")))
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", nargs="+", type=int, default=list(DEFAULT_DIMS))
    parser.add_argument("--problems", nargs="+", default=["rotated", "axis", "linear"], choices=["rotated", "axis", "linear"])
    parser.add_argument("--models", nargs="+", default=["forest_eq", "mlp"], choices=["forest_eq", "forest", "mlp"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--n-inputs", type=int, default=20)
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-iter", type=int, default=100, help="iterations per stage")
    parser.add_argument("--n-draws", type=int, default=256, help="n_samples_optim")
    parser.add_argument("--n-samples", type=int, default=10_000, help="certification draws N")
    parser.add_argument("--radii", nargs="+", type=float, default=[0.25, 0.5, 1.0])
    parser.add_argument("--prototype", action="store_true", help="add the prototype search's rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    limit_threads(args.threads)
    print(environment())
    print(
        f"sigma={SIGMA}, sigma_bounds={SIGMA_BOUNDS}, n_iter={args.n_iter}, n_samples_optim={args.n_draws}, "
        f"N={args.n_samples}, {args.n_inputs} inputs"
    )
    start = time.perf_counter()
    rows = []
    for d in args.dims:
        for kind in args.problems:
            models = ["logreg"] if kind == "linear" else args.models
            for model in models:
                rows += run_problem(kind, model, d, args)
        cols = ["problem", "model", "d", "method", "logvol", "gain", "frac", "expected", "abstain"]
        cols += [f"ball@{R:g}" for R in args.radii] + ["cos", "cond", "search_s", "total_s"]
        print_table([r for r in rows if r["d"] == d], cols, title=f"d = {d}")
    print_table(
        targets(rows, args.dims),
        ["search", "model", "d", "axis_diag_gain", "rot_riem_over_diag", "rot_cos", "rot_vs_axis", "ball_ok", "oracle_frac"],
        title="Targets: axis_diag_gain >= 2, rot_riem_over_diag >= 2, rot_cos >= 0.8, rot_vs_axis <= 1 "
        "(mlp: absolute log-volume, forest: gain over isotropic), ball_ok, oracle_frac >= 0.9 at d = 16",
    )
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
