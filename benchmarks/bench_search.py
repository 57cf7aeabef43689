"""The covariance search on the acceptance problems other than MNIST (see bench_mnist.py).

One table per problem; every row certifies with CERTIFY (N = ``--n-samples``,
alpha = 0.001, hard votes) on the same test inputs:

* ``demo``: the talk's 2-D problem, ``smoothcert demo``'s data and black-box
  scikit-learn MLP (score-function gradients), 80 test points, 30 iterations;
* ``moons``: the curved 2-D problem of the tests (two moons, noise 0.15) with a
  skorch MLP 2-32-32-2 (pathwise gradients), 40 test points, 100 iterations
  x 100 draws, beside the DDRS and ANCER packages' noise on the same net
  (``ddsmoothing-python`` / ``ancer-python``, their settings; their
  covariances certified by ``CertifiedRegion.certify(X, covariance=...)``);
* ``tabular``: scikit-learn's 8 x 8 digits (d = 64, standardized) and breast
  cancer (d = 30, standardized), each with a random forest and gradient
  boosting (black boxes), 20 test inputs, 30 iterations;
* ``rotated``: a hyperplane with a random normal at d = 16 and 64, a random
  forest *trained on the rotated data*, 20 test inputs at least 0.25 from the
  boundary, 50 iterations; ``|cos|`` of the smallest axis with the normal.

Columns: median certified log-volume (failures count -inf) and its gain over
the isotropic row, median proxy radius ``r det(Sigma)^(1/(2d))``, median axis
ratio ``sqrt(lambda_max / lambda_min)`` (2-D and rotated problems), certified
accuracy, ball fractions and seconds (search + certification).

``--reference PATH`` adds the rows of another smoothcert source tree (run in
a subprocess with only ``method``, ``n_iter``, ``n_samples_optim`` set), e.g.
an older commit checked out with ``git worktree add``. ``--quick``: fewer
inputs, iterations and draws (a smoke run).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from _common import environment, limit_threads, print_table, search_certificates, small_relu_net  # noqa: E402
from _dimproblems import Problem  # noqa: E402

METHODS = ("fixed", "isotropic", "diagonal", "riemannian")
RADII = (0.25, 0.5, 0.75)


def _row(label, cert, y, seconds, normal=None):
    ok = cert.certified & (cert.prediction == y)
    row = dict(method=label, logvol=float(np.median(np.where(ok, cert.log_volume, -np.inf))),
               proxy=float(np.median(np.where(ok, cert.proxy_radius, 0.0))), cert_acc=float(ok.mean()))
    d = cert.covariance.shape[1]
    if d <= 64:
        w, v = np.linalg.eigh(cert.covariance)
        row["ratio"] = float(np.median(np.sqrt(w[ok, -1] / w[ok, 0]))) if ok.any() else float("nan")
        if normal is not None:
            row["cos"] = float(np.median(np.abs(v[ok, :, 0] @ normal))) if ok.any() else float("nan")
    for R in RADII:
        row[f"ball@{R:g}"] = float(np.mean(ok & cert.contains_ball(R)))
    row["seconds"] = seconds
    return row


def _problems(args):
    """name -> (frozen-able fitted model factory, X_train, y_train, X_test, y_test, n_iter, normal)."""
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    from sklearn.datasets import make_moons
    from sklearn.neural_network import MLPClassifier

    q = args.quick
    out = {}
    if "demo" in args.parts:
        # smoothcert.demo's data and model (written out: --reference trees may lack the module)
        X, y = make_moons(n_samples=700, noise=0.15, random_state=0)
        Xtr, ytr, Xt, yt = X[:500], y[:500], X[500:], y[500:]
        n = 10 if q else 80
        # (the data are bound now: a closure would see the later parts' Xtr, ytr)
        out["demo (sklearn MLP, black box)"] = (
            lambda a=Xtr, b=ytr: MLPClassifier(hidden_layer_sizes=(32, 32), max_iter=2000, random_state=0).fit(a, b),
            Xtr, ytr, Xt[:n], yt[:n], 5 if q else 30, None)
    if "moons" in args.parts:
        Xtr, ytr = make_moons(400, noise=0.15, random_state=0)
        Xt, yt = make_moons(10 if q else 40, noise=0.15, random_state=1)
        Xtr, Xt = Xtr.astype(np.float32), Xt.astype(np.float32)
        out["moons (skorch MLP, pathwise)"] = ((lambda a=Xtr, b=ytr: small_relu_net(max_epochs=60).fit(a, b)), Xtr, ytr, Xt,
                                               yt, 10 if q else 100, None)
    if "tabular" in args.parts:
        for name, loader in (("digits 8x8", load_digits), ("breast cancer", load_breast_cancer)):
            X, y = loader(return_X_y=True)
            X = (X - X.mean(axis=0)) / np.maximum(X.std(axis=0), 1e-12)
            rng = np.random.default_rng(0)
            order = rng.permutation(len(X))
            test, train = order[: 5 if q else 20], order[200:]
            for model, factory in (("forest", lambda: RandomForestClassifier(100, random_state=0)),
                                   ("boosting", lambda: HistGradientBoostingClassifier(max_iter=100, random_state=0))):
                out[f"{name} ({model})"] = ((lambda f=factory, a=X[train], b=y[train]: f().fit(a, b)), X[train],
                                            y[train], X[test], y[test], 5 if q else 30, None)
    if "rotated" in args.parts:
        for d in args.dims:
            problem = Problem(d, "rotated", n_train=4000, n_test=400, seed=0)
            Xt, yt, _ = problem.inputs(5 if q else 20, min_distance=0.25)
            out[f"rotated hyperplane d={d} (forest trained on it)"] = (
                (lambda p=problem: RandomForestClassifier(100, random_state=0).fit(p.X_train, p.y_train)),
                problem.X_train, problem.y_train, Xt, yt, 10 if q else 50, problem.normal)
    return out


def smoothcert_rows(args, problems, methods):
    """Rows of smoothcert's methods for every problem (also run by ``--reference``)."""
    from sklearn.frozen import FrozenEstimator

    from smoothcert import CertifiedRegion

    tables = {}
    for name, (factory, Xtr, ytr, Xt, yt, n_iter, normal) in problems.items():
        model = factory()
        rows = []
        for method in methods:
            region = CertifiedRegion(FrozenEstimator(model), method=method, n_iter=n_iter,
                                     n_samples_optim=args.samples, n_samples=args.n_samples,
                                     random_state=args.seed,
                                     **search_certificates(CertifiedRegion)).fit(Xtr[:20], ytr[:20])
            start = time.perf_counter()
            cert = region.certify(Xt)
            rows.append(_row(method, cert, yt, time.perf_counter() - start, normal))
        tables[name] = rows
    return tables


def _peer_rows(args, model, Xtr, ytr, Xt, yt):
    """DDRS / ANCER packages' noise on a skorch net, certified by smoothcert."""
    import scipy.stats

    if not hasattr(scipy.stats, "binom_test"):  # removed from SciPy; the packages import it
        scipy.stats.binom_test = lambda *a, **k: scipy.stats.binomtest(*a, **k).pvalue
    try:
        import torch
        from ancer.optimization import optimize_ancer
        from ddsmoothing.certificate import L2Certificate
        from ddsmoothing.optimization import optimize_isotropic_dds
    except ImportError as exc:
        print(f"(peer rows skipped: {exc})")
        return []
    from sklearn.frozen import FrozenEstimator

    from smoothcert import CertifiedRegion

    n, d = Xt.shape
    module = torch.nn.Sequential(torch.nn.Flatten(), model.module_).eval()
    batch = torch.as_tensor(Xt, dtype=torch.float32).reshape(n, 1, 1, d)
    certificate = L2Certificate(n, device="cpu")
    torch.manual_seed(args.seed)
    iters = 10 if args.quick else 100
    start = time.perf_counter()
    iso = optimize_isotropic_dds(module, batch, certificate, 0.01, torch.full((n,), 0.25), iters, 100,
                                 device="cpu").detach()
    thetas = optimize_ancer(module, batch, certificate, 0.04, torch.ones_like(batch) * iso.reshape(-1, 1, 1, 1),
                            iters, 100, kappa=2.0, device="cpu")
    seconds = time.perf_counter() - start
    iso = iso.numpy().astype(np.float64)
    diag = thetas.detach().reshape(n, d).numpy().astype(np.float64)
    region = CertifiedRegion(FrozenEstimator(model), n_samples=args.n_samples, random_state=args.seed).fit(Xtr, ytr)
    return [
        _row("DDRS package", region.certify(Xt, covariance=iso[:, None, None] ** 2 * np.eye(d)), yt, seconds),
        _row("ANCER package", region.certify(Xt, covariance=np.einsum("ni,ij->nij", diag**2, np.eye(d))), yt,
             seconds),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="one problem per part, 2 inputs, 2 iterations: seconds")
    parser.add_argument("--parts", default="demo,moons,tabular,rotated")
    parser.add_argument("--dims", default="16,64")
    parser.add_argument("--samples", type=int, default=100, help="optimization draws per input and iteration")
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.parts = [p for p in args.parts.split(",") if p]
    args.dims = [int(v) for v in args.dims.split(",") if v]
    if args.smoke:
        args.quick, args.dims, args.threads = True, args.dims[:1], 1
    if args.quick:
        args.n_samples, args.samples = (200, 16) if args.smoke else (1000, 32)
    limit_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    problems = _problems(args)
    if args.smoke:  # one problem per part, 2 inputs, 2 iterations
        problems = {name: (f, Xtr, ytr, Xt[:2], yt[:2], 2, normal)
                    for name, (f, Xtr, ytr, Xt, yt, _, normal) in problems.items()
                    if "boosting" not in name and not name.startswith("breast")}
    if args.json:
        print("JSON" + json.dumps(smoothcert_rows(args, problems, methods)))
        return
    print(environment())
    tables = smoothcert_rows(args, problems, methods)
    if args.reference:
        command = [sys.executable, os.path.abspath(__file__), "--json", "--parts", ",".join(args.parts), "--dims",
                   ",".join(map(str, args.dims)), "--methods", args.methods, "--seed", str(args.seed),
                   "--samples", str(args.samples), "--n-samples", str(args.n_samples), "--threads", str(args.threads)]
        command += ["--quick"] if args.quick else []
        env = {**os.environ, "PYTHONPATH": os.path.abspath(args.reference)}
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            print(f"(reference rows failed:\n{done.stderr[-2000:]})")
        else:
            for name, rows in json.loads(done.stdout.split("JSON", 1)[1]).items():
                tables[name] += [{**row, "method": f"reference {row['method']}"} for row in rows]
    for name, rows in tables.items():
        if name.startswith("moons"):
            factory, Xtr, ytr, Xt, yt, _, _ = problems[name]
            rows += _peer_rows(args, factory(), Xtr, ytr, Xt, yt)
        iso = next((r["logvol"] for r in rows if r["method"] == "isotropic"), None)
        for row in rows:
            row["vs_iso"] = row["logvol"] - iso if iso is not None else float("nan")
        columns = ["method", "logvol", "vs_iso", "proxy", "ratio"]
        columns += ["cos"] if any("cos" in r for r in rows) else []
        columns += ["cert_acc"] + [f"ball@{R:g}" for R in RADII] + ["seconds"]
        print_table(rows, columns, title=name)


if __name__ == "__main__":
    main()
