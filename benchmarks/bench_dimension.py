"""Certified regions in dimension: problems with a known boundary normal, and digits at d = 784.

Part ``hyperplane`` (``--dims``, default 2, 16, 64): fixed / isotropic /
diagonal / riemannian (``CertifiedRegion``) on

(i)   ``rotated``: a hyperplane boundary with a random normal,
(ii)  ``axis``: the same problem unrotated (normal along a coordinate axis),
      with the same inputs (paired),

each with a forest (score-function gradients) and a skorch MLP (pathwise),
and

(iii) ``linear``: a LogisticRegression on the rotated problem, whose smoothed
      hard vote is exactly ``Phi(|w.x + b| / sqrt(w^T Sigma w))``: the best
      covariance is known in closed form (``_dimproblems.LinearOracle``).
      ``frac`` is the median fraction of its log-volume gain over the best
      isotropic covariance that a search reaches *within the library's own
      bounds* (floor at the isotropic optimum, ``floor="isotropic"``, the
      default); ``fracG`` the same against the optimum with the global floor
      ``sigma_bounds[0] * sigma`` (``floor="bounds"``); ``fracS`` against the
      optimum floored at the scale the isotropic search actually found for
      each input (the floor the anisotropic stages then use: ``frac`` floors
      at the exact isotropic optimum, which the search only estimates).

Models: ``forest_eq`` is the axis problem's RandomForest composed with the
rotation, ``x -> forest(Q^T x)``, and ``mlp_eq`` the axis problem's MLP with
its first layer rotated: on the rotated problem they are exactly the axis
models in another basis, so the two problems differ only for the search (the
rotation-invariance test). ``forest`` and ``mlp`` are trained on each
problem's own coordinates (a forest on rotated data is a staircase, not a
plane: its best covariance is not the hyperplane's).

Part ``digits`` (d = 784): ``load_digits`` upsampled to 28 x 28
(``_dimproblems.digits784``), a skorch MLP and a RandomForest, the four
methods (riemannian optimizes the low-rank form above 512 features) and
``riemannian / floor="bounds"``.

Part ``time784``: the search's seconds for 100 digits x 100 iterations x 256
draws (three stages) at d = 784, per method, on the MLP, and the seconds per
iteration of the low-rank stage.

Columns: median certified log-volume (``d log r + 1/2 log det Sigma + log
V_d``; abstentions and misclassified inputs count as ``-inf``), its gain over
the isotropic row, the fraction of inputs whose ball ``B2(x, R)`` lies inside
the certified region and is correctly classified, the median ``|cos|``
between the certified ellipsoid's smallest axis and the boundary normal, the
median condition number, and the search's seconds (from
``Certificate.search_info``).

Usage::

    python benchmarks/bench_dimension.py --dims 2 16             # ~4 min
    python benchmarks/bench_dimension.py --dims 64 --models forest_eq
    python benchmarks/bench_dimension.py --dims 64 --models mlp_eq --problems rotated axis
    python benchmarks/bench_dimension.py --parts digits
    python benchmarks/bench_dimension.py --parts time784
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
    digits784,
    fit_region,
)

METHODS = ("fixed", "isotropic", "diagonal", "riemannian")


def _is_net(region):
    return region.estimator_.__class__.__name__ == "NeuralNetClassifier" or hasattr(region.estimator_, "module_")


def _inputs(region, X):
    return X.astype(np.float32) if _is_net(region) else X


def _search_seconds(cert, n_iter):
    info = cert.search_info or {}
    return sum(float(np.sum(v)) for v in info.get("seconds_per_iteration", {}).values()) * n_iter


def _equivariant_mlp(problem, params):
    """The axis problem's MLP with its first layer rotated (``x -> mlp(Q^T x)``), frozen."""
    import torch
    from sklearn.frozen import FrozenEstimator

    from smoothcert import CertifiedRegion

    axis = Problem(problem.d, "axis", len(problem.X_train), len(problem.X_test), seed=0)
    net = fit_region("mlp", axis, method="fixed").estimator_
    with torch.no_grad():
        first = net.module_[0]
        first.weight.copy_(first.weight @ torch.as_tensor(problem.rotation.T, dtype=torch.float32))
    region = CertifiedRegion(FrozenEstimator(net), sigma=SIGMA, sigma_bounds=SIGMA_BOUNDS, method="fixed", **params)
    return region.fit(problem.X_train.astype(np.float32), problem.y_train)


def run_problem(kind, model, d, args):
    problem = Problem(d, kind, n_train=args.n_train, n_test=max(200, 4 * args.n_inputs), seed=args.seed)
    X, y, dist = problem.inputs(args.n_inputs)
    normal = problem.normal
    params = dict(n_iter=args.n_iter, n_samples_optim=args.n_draws, n_samples=args.n_samples, random_state=0)
    start = time.perf_counter()
    if model == "mlp_eq":
        region = _equivariant_mlp(problem, params)
    else:
        region = fit_region("forest_eq" if model == "forest_eq" else model, problem, method="fixed", **params)
    fit_s = time.perf_counter() - start
    oracle = None
    if model == "logreg":
        w, b = region.estimator_.coef_[0], region.estimator_.intercept_[0]
        normal = w / np.linalg.norm(w)
        dist = np.abs(X @ w + b) / np.linalg.norm(w)
        oracle = LinearOracle(d, args.n_samples, region.alpha, SIGMA * SIGMA_BOUNDS[0], SIGMA * SIGMA_BOUNDS[1])
    rows, logvols, certs = [], {}, {}
    variants = [(m, {}) for m in args.methods]
    if args.floor_bounds:
        variants.append(("riemannian/bounds", {"floor": "bounds"}))
    for label, extra in variants:
        method = label.split("/")[0]
        region.set_params(method=method, floor=extra.get("floor", "isotropic"))
        start = time.perf_counter()
        cert = region.certify(_inputs(region, X))
        total = time.perf_counter() - start
        met, lv = cert_metrics(cert, y, normal, args.radii)
        logvols[label], certs[label] = lv, cert
        rows.append(dict(problem=kind, model=model, d=d, method=label, **met,
                         search_s=_search_seconds(cert, args.n_iter), total_s=total, fit_s=fit_s))
    region.set_params(floor="isotropic")
    base = logvols.get("isotropic")
    if oracle is not None:
        best = oracle.best(dist)
        own = oracle.best(dist, floor=best["s_iso"])
        searched = None
        if "isotropic" in certs:  # the floor the search actually uses: its own isotropic optimum
            s_search = np.sqrt(certs["isotropic"].covariances.min_eigenvalue())
            searched = oracle.best(dist, floor=np.maximum(s_search, oracle.lo))
        rows.append(dict(problem=kind, model=model, d=d, method="oracle", logvol=float(np.median(own["logvol_ani"])),
                         expected=float(np.median(own["logvol_ani"]))))
    for row in rows:
        lv = logvols.get(row["method"])
        if base is not None and "logvol" in row:
            row["gain"] = row["logvol"] - float(np.median(base))
        if oracle is not None and lv is not None:
            row["frac"] = _fraction(own, lv)
            row["fracG"] = _fraction(best, lv)
            if searched is not None:
                row["fracS"] = _fraction(searched, lv)
    return rows


def _fraction(best, lv):
    """Median over inputs of the fraction of the oracle's gain over isotropic."""
    gain = best["logvol_ani"] - best["logvol_iso"]
    frac = (lv - best["logvol_iso"]) / np.where(gain > 0, gain, np.nan)
    frac = np.where(np.isfinite(lv), frac, -np.inf)
    return float(np.nanmedian(frac))


def targets(rows, d_list):
    """The issue's acceptance targets, per model and dimension."""
    table = []

    def get(problem, model, d, method):
        for r in rows:
            if (r["problem"], r["model"], r["d"], r["method"]) == (problem, model, d, method):
                return r
        return None

    for model in sorted({r["model"] for r in rows if r["problem"] != "linear"}):
        axis_model = {"forest": "forest_eq", "mlp": "mlp_eq"}.get(model, model)
        for d in d_list:
            ax_iso, ax_diag = get("axis", axis_model, d, "isotropic"), get("axis", axis_model, d, "diagonal")
            ro_iso, ro_diag = get("rotated", model, d, "isotropic"), get("rotated", model, d, "diagonal")
            ro_riem = get("rotated", model, d, "riemannian")
            if None in (ax_iso, ax_diag, ro_iso, ro_diag, ro_riem):
                continue
            balls = [k for k in ro_riem if k.startswith("ball@")]
            table.append(dict(
                model=model, d=d,
                axis_diag_gain=ax_diag["logvol"] - ax_iso["logvol"],
                rot_riem_over_diag=ro_riem["logvol"] - ro_diag["logvol"],
                rot_cos=ro_riem.get("cos"),
                rot_minus_axis=ro_riem["logvol"] - ax_diag["logvol"],
                gain_rot_minus_axis=(ro_riem["logvol"] - ro_iso["logvol"]) - (ax_diag["logvol"] - ax_iso["logvol"]),
                ball_ok=all(ro_riem[k] >= ro_iso[k] for k in balls) and all(ax_diag[k] >= ax_iso[k] for k in balls),
            ))
    for r in rows:
        if r["problem"] == "linear" and r["method"] == "riemannian":
            table.append(dict(model="logreg", d=r["d"], oracle_frac=r.get("frac"), oracle_fracS=r.get("fracS"),
                                  oracle_fracG=r.get("fracG")))
    return table


def part_hyperplane(args):
    rows = []
    for d in args.dims:
        for kind in args.problems:
            models = ["logreg"] if kind == "linear" else args.models
            for model in models:
                if kind == "axis" and model in ("forest", "mlp"):
                    continue  # the axis problem's models are the *_eq ones
                rows += run_problem(kind, model, d, args)
                print(f"  {kind} {model} d={d} done", flush=True)
        cols = ["problem", "model", "d", "method", "logvol", "gain", "frac", "fracS", "fracG", "abstain"]
        cols += [f"ball@{R:g}" for R in args.radii] + ["cos", "cond", "search_s", "total_s"]
        print_table([r for r in rows if r["d"] == d], cols, title=f"d = {d}")
    print_table(
        targets(rows, args.dims),
        ["model", "d", "axis_diag_gain", "rot_riem_over_diag", "rot_cos", "rot_minus_axis", "gain_rot_minus_axis",
         "ball_ok", "oracle_frac", "oracle_fracS", "oracle_fracG"],
        title="Targets: axis_diag_gain >= 2, rot_riem_over_diag >= 2, rot_cos >= 0.8, |rot_minus_axis| <= 1 "
        "(*_eq models: absolute log-volume), |gain_rot_minus_axis| <= 1 (forest), ball_ok, "
        "oracle_frac >= 0.9 at d = 16 (axis models for the rotated forest / mlp rows)",
    )


def _digits_models(n_classes):
    import torch
    from sklearn.ensemble import RandomForestClassifier
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, n_classes))
    mlp = NeuralNetClassifier(module, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3,
                              max_epochs=20, batch_size=64, train_split=None, verbose=0)
    return {"mlp": mlp, "forest": RandomForestClassifier(100, random_state=0, n_jobs=1)}


def part_digits(args):
    from smoothcert import CertifiedRegion

    X, y, Xt, yt = digits784()
    rows = []
    for name, base in _digits_models(10).items():
        if name not in args.digit_models:
            continue
        region = CertifiedRegion(base, method="fixed", sigma=SIGMA, sigma_bounds=SIGMA_BOUNDS, n_iter=args.n_iter,
                                 n_samples_optim=args.n_draws, n_samples=args.n_samples, noise_augmentation=1,
                                 random_state=0)
        region.fit(_cast(name, X), y)
        Xi = _cast(name, Xt[: args.n_inputs])
        variants = [(m, {}) for m in args.methods] + [("riemannian/bounds", {"floor": "bounds"})]
        for label, extra in variants:
            region.set_params(method=label.split("/")[0], floor=extra.get("floor", "isotropic"))
            start = time.perf_counter()
            cert = region.certify(Xi)
            met, _ = cert_metrics(cert, yt[: args.n_inputs], None, args.radii)
            rows.append(dict(model=name, d=784, method=label, form=cert.covariances.kind, **met,
                             search_s=_search_seconds(cert, args.n_iter), total_s=time.perf_counter() - start))
            print(f"  digits {name} {label}: {rows[-1]['logvol']:.1f}", flush=True)
    print_table(rows, ["model", "d", "method", "form", "logvol", "abstain"] + [f"ball@{R:g}" for R in args.radii]
                + ["cond", "search_s", "total_s"], title="Digits upsampled to 28 x 28 (d = 784), ten classes")


def _cast(name, X):
    return X.astype(np.float32) if name == "mlp" else X


def part_time784(args):
    from smoothcert import CertifiedRegion

    X, y, Xt, _ = digits784()
    base = _digits_models(10)["mlp"]
    region = CertifiedRegion(base, method="fixed", sigma=SIGMA, n_iter=100, n_samples_optim=256, n_samples=1000,
                             random_state=0).fit(X.astype(np.float32), y)
    rows = []
    for method in args.methods[1:]:
        region.set_params(method=method)
        start = time.perf_counter()
        cert = region.certify(Xt[:100].astype(np.float32))
        total = time.perf_counter() - start
        info = cert.search_info
        per_stage = {k: float(np.sum(v)) for k, v in info["seconds_per_iteration"].items()}
        rows.append(dict(method=method, d=784, n_inputs=100, n_iter=100, draws=256, search_s=sum(per_stage.values()) * 100,
                         total_s=total, stages=" ".join(f"{k}:{v:.2f}" for k, v in per_stage.items()),
                         preds_per_input=info["n_base_predictions"]))
        print(f"  {method}: {rows[-1]['search_s']:.0f} s", flush=True)
    print_table(rows, ["method", "d", "n_inputs", "n_iter", "draws", "search_s", "total_s", "stages", "preds_per_input"],
                title="Search time at d = 784: 100 digits x 100 iterations x 256 draws per stage, skorch MLP "
                "(stages: seconds per iteration of each stage, all 100 inputs)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["hyperplane"], choices=["hyperplane", "digits", "time784"])
    parser.add_argument("--dims", nargs="+", type=int, default=list(DEFAULT_DIMS))
    parser.add_argument("--problems", nargs="+", default=["rotated", "axis", "linear"], choices=["rotated", "axis", "linear"])
    parser.add_argument("--models", nargs="+", default=["forest_eq", "mlp_eq"], choices=["forest_eq", "forest", "mlp_eq", "mlp"])
    parser.add_argument("--digit-models", nargs="+", default=["mlp", "forest"], choices=["mlp", "forest"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--floor-bounds", action="store_true", help="add riemannian with floor='bounds'")
    parser.add_argument("--n-inputs", type=int, default=20)
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-iter", type=int, default=100, help="iterations per stage")
    parser.add_argument("--n-draws", type=int, default=256, help="n_samples_optim")
    parser.add_argument("--n-samples", type=int, default=10_000, help="certification draws N")
    parser.add_argument("--radii", nargs="+", type=float, default=[0.25, 0.5, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    limit_threads(args.threads)
    print(environment())
    print(f"sigma={SIGMA}, sigma_bounds={SIGMA_BOUNDS}, n_iter={args.n_iter}, n_samples_optim={args.n_draws}, "
          f"N={args.n_samples}, {args.n_inputs} inputs")
    start = time.perf_counter()
    for part in args.parts:
        {"hyperplane": part_hyperplane, "digits": part_digits, "time784": part_time784}[part](args)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
