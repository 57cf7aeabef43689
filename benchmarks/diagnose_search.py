"""Why the covariance search fails in dimension, in numbers, and prototype fixes.

Problems of ``_dimproblems.py`` (hyperplane boundary, known normal, N = 10,000
certification draws, sigma = 0.25, sigma_bounds = (0.25, 4)); searches of
``_searchlab.py`` (a vectorized re-implementation of the library's search with
switches for each fix), certified by the library's CERTIFY on fresh draws.

Parts (``--parts``; each fits in a few minutes on one core):

``replica``
    The library's ``CertifiedRegion(method="riemannian")`` against the lab with
    the library's settings: the re-implementation reproduces the library.
``instrument``
    The library's search, instrumented, per stage: fraction of (input,
    iteration) where ``psi_A`` is clipped at ``p_max``, fraction of inputs ever
    clipped, median failing draws (of 256) at the current point, acceptance
    rate, rows reverted by the end-of-stage validation, eigenvalues at the
    cap / floor, the accepted step length (sum of Fisher-Rao lengths), the
    variance along the normal and across it at the stage's start and end,
    and the share of the squared step norm that touches the normal direction.
``snr``
    Alignment with the true normal of one score-function (and pathwise)
    estimate from 256 antithetic draws, over repeated independent estimates,
    as a function of the margin ``t = delta / sigma`` (hence of the number of
    failing draws): the ``d x d`` natural gradient ``W`` (smallest
    eigenvector), its first moment ``v = mean[(h(z) - h(-z)) / 2 z]``, the sum of
    10 such first moments (re-using draws across iterations), soft vs hard
    votes, and tempered draws (``tau = 3``).
``ablation``
    The fixes, added one at a time to the library's search (a ladder), and the
    two recipes (``volume``, ``superset``), on the rotated problem with the
    equivariant forest and the MLP: median certified log-volume, fraction of
    the closed-form optimum's gain over isotropic, ``|cos|``, condition
    number, ball fractions, seconds.
``linear``
    The linear oracle (LogisticRegression): fraction of the closed-form gain.
``forest``
    A forest trained on the rotated coordinates (a staircase, not a plane):
    where the hyperplane-based fixes (tempering, rank-one structure) stop
    helping.

Usage::

    python benchmarks/diagnose_search.py --parts replica instrument --dims 16 64
    python benchmarks/diagnose_search.py --parts snr
    python benchmarks/diagnose_search.py --parts ablation --dims 16
    python benchmarks/diagnose_search.py --parts ablation --dims 64
    python benchmarks/diagnose_search.py --parts linear forest
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
from _dimproblems import SIGMA, SIGMA_BOUNDS, LinearOracle, Problem, cert_metrics, certify_covariances, fit_region  # noqa: E402
from _searchlab import PRESETS, RECIPE, Config, Lab  # noqa: E402

RADII = (0.25, 0.5)


class Case:
    """One fitted model on one problem, its inputs, oracle and lab."""

    def __init__(self, model, d, kind, args):
        self.model, self.d, self.kind = model, d, kind
        self.problem = Problem(d, kind, n_train=4000, n_test=max(200, 4 * args.n_inputs), seed=0)
        X, self.y, self.dist = self.problem.inputs(args.n_inputs)
        self.region = fit_region(model, self.problem, method="riemannian", n_iter=args.n_iter,
                                 n_samples_optim=args.n_draws, n_samples=args.n_samples, random_state=0)
        self.X = X.astype(np.float32) if model == "mlp" else X
        self.normal = self.problem.normal
        if model == "logreg":
            w, b = self.region.estimator_.coef_[0], self.region.estimator_.intercept_[0]
            self.normal = w / np.linalg.norm(w)
            self.dist = np.abs(X @ w + b) / np.linalg.norm(w)
        self.oracle = LinearOracle(d, args.n_samples, self.region.alpha, SIGMA * SIGMA_BOUNDS[0], SIGMA * SIGMA_BOUNDS[1])
        self.best = self.oracle.best(self.dist)
        self.gradient = "pathwise" if model == "mlp" else "score"
        self.lab = Lab(self.region._adapter(), self.X, gradient=self.gradient, sigma=SIGMA, sigma_bounds=SIGMA_BOUNDS,
                       n_samples=args.n_samples, alpha=self.region.alpha, seed=0, normal=self.normal)

    def certify(self, S):
        return certify_covariances(self.region, self.X, S)

    def summary(self, cert, seconds, label):
        met, lv = cert_metrics(cert, self.y, self.normal, RADII)
        gain = self.best["logvol_ani"] - self.best["logvol_iso"]
        frac = np.where(np.isfinite(lv), (lv - self.best["logvol_iso"]) / gain, -np.inf)
        return dict(model=self.model, d=self.d, search=label, logvol=met["logvol"],
                    oracle=float(np.median(self.best["logvol_ani"])), frac=float(np.median(frac)),
                    cos=met["cos"], cond=met["cond"], **{k: v for k, v in met.items() if k.startswith("ball")},
                    seconds=seconds)

    def run(self, cfg, record=False):
        start = time.perf_counter()
        S, logs = self.lab.run(cfg, record=record)
        return S, logs, time.perf_counter() - start


# ---------------------------------------------------------------- parts
def part_replica(args):
    rows = []
    for d in args.dims:
        for model in args.models:
            case = Case(model, d, "rotated", args)
            start = time.perf_counter()
            cert = case.region.certify(case.X)
            rows.append(case.summary(cert, time.perf_counter() - start, "library"))
            S, _, sec = case.run(PRESETS["library"].but(n_iter=args.n_iter, n_draws=args.n_draws))
            rows.append(case.summary(case.certify(S), sec, "lab(library settings)"))
    print_table(rows, ["model", "d", "search", "logvol", "oracle", "frac", "cos", "cond", "ball@0.25", "ball@0.5", "seconds"],
                title="Replica: the library's riemannian search vs its re-implementation (rotated problem)")


def part_instrument(args):
    rows = []
    for d in args.dims:
        for model in args.models:
            case = Case(model, d, "rotated", args)
            S, logs, sec = case.run(PRESETS["library"].but(n_iter=args.n_iter, n_draws=args.n_draws), record=True)
            for stage, info in logs["stages"].items():
                row = dict(model=model, d=d, stage=stage)
                row["clip_frac"] = float(info["clipped"].mean())
                row["ever_clip"] = float(info["clipped"].any(axis=0).mean())
                row["fails_med"] = float(np.median(info["fails"]))
                row["fails0"] = float(np.mean(info["fails"] == 0))
                row["accept"] = info["accept_rate"]
                row["reverted"] = float(info["reverted"].mean())
                row["at_cap"] = float(np.median(info["at_cap"]))
                row["at_floor"] = float(np.median(info["at_floor"]))
                row["path_FR"] = float(np.median(info["eta"].sum(axis=0)))
                row["sd_n0"] = float(np.median(np.sqrt(info["normal_var_start"])))
                row["sd_n1"] = float(np.median(np.sqrt(info["normal_var_end"])))
                row["sd_t0"] = float(np.median(np.sqrt(info["tangent_var_start"])))
                row["sd_t1"] = float(np.median(np.sqrt(info["tangent_var_end"])))
                if len(info.get("normal_share", [])):
                    row["normal_share"] = float(np.median(info["normal_share"]))
                if len(info.get("cos_W", [])):
                    row["cos_W"] = float(np.median(info["cos_W"]))
                    row["cos_path"] = float(np.median(info["cos_u"][-1]))
                row["s_per_iter"] = info["seconds"] / max(args.n_iter, 1)
                rows.append(row)
            best = case.best
            print(f"{model} d={d}: oracle optimum s_n* median {np.median(best['s_ani']):.3f} "
                  f"(ideal kink delta/r_max {np.median(best['s_star_ideal']):.3f}), tangent scales at the cap "
                  f"{SIGMA * SIGMA_BOUNDS[1]:g}; median distance {np.median(case.dist):.2f}; "
                  f"search's own radius cap r_max {case.lab.r_max:.2f}, best certified margin t* {case.lab.r_target:.2f}")
    print_table(rows, ["model", "d", "stage", "clip_frac", "ever_clip", "fails_med", "fails0", "accept", "reverted", "at_cap",
                       "at_floor", "path_FR", "sd_n0", "sd_n1", "sd_t0", "sd_t1", "normal_share", "cos_W", "cos_path", "s_per_iter"],
                title="The library's search, instrumented (rotated problem; sd_n / sd_t: noise scale along / across the normal, "
                      "start -> end of stage; path_FR: sum of accepted Fisher-Rao step lengths)")


def part_snr(args, reps=20, n_inputs=8, m=256, tau=3.0):
    rows = []
    for d in args.dims:
        for model in args.models:
            problem = Problem(d, "rotated", 4000, 200, seed=0)
            region = fit_region(model, problem, method="fixed", n_samples=1000, random_state=0)
            ad = region._adapter()
            X, y, dist = problem.inputs(n_inputs, min_distance=0.4)
            n = problem.normal
            rng = np.random.default_rng(0)
            for t in (1.25, 1.5, 2.0, 2.5, 3.0, 4.0):
                s = dist / t
                acc = {}
                for rep in range(reps):
                    for label, scale in (("", 1.0), ("tau", tau)):
                        if label == "tau" and t < 2.5:
                            continue
                        z = rng.standard_normal((n_inputs, m // 2, d))
                        z = np.concatenate([z, -z], axis=1)
                        pts = (X[:, None, :] + (scale * s)[:, None, None] * z).reshape(-1, d)
                        if model == "mlp":
                            w = np.zeros((len(pts), 2))
                            w[np.arange(len(pts)), np.repeat(y, m)] = 1
                            sc, gx = ad.scores_and_gradient(pts.astype(np.float32), w)
                            gz = gx.reshape(n_inputs, m, d)
                        else:
                            sc = ad.scores(pts)
                        sc = sc.reshape(n_inputs, m, 2)
                        variants = {"soft": sc[np.arange(n_inputs), :, y]}
                        if model != "mlp":
                            variants["hard"] = (np.argmax(sc, axis=2) == y[:, None]).astype(float)
                        for vote, h in variants.items():
                            key = f"{vote}{'/' + label if label else ''}"
                            half = m // 2
                            hp = 0.5 * (h[:, :half] + h[:, half:])
                            c = hp - hp.mean(axis=1, keepdims=True)
                            zc = z[:, :half]
                            W = np.einsum("rm,rmi,rmj->rij", c, zc, zc) / half
                            cosW = np.abs(np.linalg.eigh(W)[1][:, :, 0] @ n)
                            hd = 0.5 * (h[:, :half] - h[:, half:])
                            v = np.einsum("rm,rmi->ri", hd, zc) / half
                            nv = np.linalg.norm(v, axis=1)
                            # no failing draw: no direction at all (counted as |cos| = 0)
                            cosv = np.where(nv > 0, np.abs(v @ n) / np.maximum(nv, 1e-300), 0.0)
                            acc.setdefault(key, {"fails": [], "W": [], "v": [], "vsum": []})
                            acc[key]["fails"].append((h < 0.5).sum(axis=1))
                            acc[key]["W"].append(cosW)
                            acc[key]["v"].append(cosv)
                            acc[key].setdefault("_v", []).append(v)
                        if model == "mlp":
                            key = f"pathwise{'/' + label if label else ''}"
                            Wp = np.swapaxes(gz, 1, 2) @ z / m
                            Wp = 0.5 * (Wp + np.swapaxes(Wp, 1, 2))
                            vp = gz.mean(axis=1)
                            acc.setdefault(key, {"fails": [], "W": [], "v": [], "vsum": []})
                            acc[key]["fails"].append((sc[np.arange(n_inputs), :, y] < 0.5).sum(axis=1))
                            acc[key]["W"].append(np.abs(np.linalg.eigh(Wp)[1][:, :, 0] @ n))
                            acc[key]["v"].append(np.abs(vp @ n) / np.linalg.norm(vp, axis=1))
                            acc[key].setdefault("_v", []).append(vp)
                for key, a in acc.items():
                    vs = np.array(a["_v"])  # reps x inputs x d
                    sums = vs.reshape(-1, 10, n_inputs, d).sum(axis=1) if reps % 10 == 0 else vs.sum(axis=0, keepdims=True)
                    ns = np.linalg.norm(sums, axis=2)
                    cos_sum = np.where(ns > 0, np.abs(sums @ n) / np.maximum(ns, 1e-300), 0.0)
                    rows.append(dict(model=model, d=d, t=t, estimate=key,
                                     fails=float(np.mean(a["fails"])), W=float(np.median(a["W"])),
                                     first=float(np.nanmedian(a["v"])), first_x10=float(np.nanmedian(cos_sum)),
                                     random=float(np.sqrt(2 / (np.pi * d)))))
    print_table(rows, ["model", "d", "t", "estimate", "fails", "W", "first", "first_x10", "random"],
                title="Alignment |cos| with the normal of one estimate (256 draws; t = delta / sigma; fails = mean failing "
                      "draws; W: smallest eigenvector of the d x d estimate; first: first moment; first_x10: sum of 10 "
                      "first moments; /tau: tempered draws, tau = 3; random: |cos| of a random direction)")


def ladder():
    steps = [("library", {}), ("+floor=global", {"floor": "global"}), ("+cap=cert", {"cap": "cert"}),
             ("+tau=auto", {"tau": "auto"}), ("+votes=hard", {"votes": "hard"}), ("+struct", {"estimator": "struct"}),
             ("+split step", {"step": "split"}), ("+lr=0.6", {"lr": 0.6}), ("+validation=same", {"validation": "same"}),
             ("+kappa=0.5 (volume)", {"kappa": 0.5})]
    out, acc = [], {}
    for label, change in steps:
        acc.update(change)
        out.append((label, Config(name=label, **acc)))
    out.append(("superset", PRESETS["superset"]))
    out.append(("volume, blend 0.3", PRESETS["volume"].but(estimator="blend", blend=0.3)))
    return out


def loo():
    base = PRESETS["volume"]
    defaults = Config()
    out = [("volume", base)]
    for key in RECIPE:
        out.append((f"-{key}", base.but(**{key: getattr(defaults, key)})))
    out.append(("-kappa (2)", base.but(kappa=2.0)))
    return out


def part_ablation(args, configs=None, kind="rotated", models=None, title="Ablation"):
    rows = []
    for d in args.dims:
        for model in models or args.models:
            case = Case(model, d, kind, args)
            for label, cfg in (configs or ladder()):
                S, logs, sec = case.run(cfg.but(n_iter=args.n_iter, n_draws=args.n_draws))
                row = case.summary(case.certify(S), sec, label)
                rows.append(row)
            print(f"  {model} d={d} done", flush=True)
    print_table(rows, ["model", "d", "search", "logvol", "oracle", "frac", "cos", "cond", "ball@0.25", "ball@0.5", "seconds"],
                title=f"{title} ({kind} problem; oracle: closed-form optimum for a hyperplane, expected; frac: median "
                      "fraction of its gain over the best isotropic covariance)")


def part_linear(args):
    configs = [("library", PRESETS["library"]), ("volume", PRESETS["volume"]), ("superset", PRESETS["superset"]),
               ("volume, blend 0.3", PRESETS["volume"].but(estimator="blend", blend=0.3))]
    part_ablation(args, configs, kind="linear", models=["logreg"], title="Linear oracle")


def part_forest(args):
    configs = [("library", PRESETS["library"]), ("volume", PRESETS["volume"]),
               ("volume, blend 0.3", PRESETS["volume"].but(estimator="blend", blend=0.3)),
               ("volume, tau=1, W", PRESETS["volume"].but(tau=1.0, estimator="W")),
               ("volume, tau=1, blend 0.3", PRESETS["volume"].but(tau=1.0, estimator="blend", blend=0.3))]
    part_ablation(args, configs, kind="rotated", models=["forest"], title="A forest trained on the rotated coordinates")


PARTS = {"replica": part_replica, "instrument": part_instrument, "snr": part_snr, "ablation": part_ablation,
         "loo": lambda a: part_ablation(a, loo(), title="Leave one fix out of the volume recipe"),
         "linear": part_linear, "forest": part_forest}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["replica", "instrument", "snr"], choices=list(PARTS))
    parser.add_argument("--dims", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--models", nargs="+", default=["forest_eq", "mlp"], choices=["forest_eq", "forest", "mlp"])
    parser.add_argument("--n-inputs", type=int, default=20)
    parser.add_argument("--n-iter", type=int, default=100)
    parser.add_argument("--n-draws", type=int, default=256)
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    limit_threads(args.threads)
    print(environment())
    for part in args.parts:
        start = time.perf_counter()
        PARTS[part](args)
        print(f"[{part}: {time.perf_counter() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
