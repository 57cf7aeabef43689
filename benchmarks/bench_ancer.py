"""ANCER (``ancer-python``) against CertifiedRegion on the same network, one certification routine.

The two-moons problem of the test suite (400 training points, noise 0.15; 40
test inputs), a skorch MLP 2 -> 32 -> 32 -> 2 (softmax, Adam, 60 epochs).
ANCER's covariances come from the ``ancer-python`` package itself
(``ancer.optimization.optimize_ancer``, started from ``ddsmoothing``'s
isotropic DDS optimum, both run on the net's torch module with the package's
settings: DDS 100 iterations x 100 samples, ANCER 100 iterations x 100
samples, lr 0.04, kappa 2); every covariance, ANCER's and smoothcert's, is
then certified by smoothcert's CERTIFY on the same fresh draws (N = 10,000,
alpha = 0.001, hard votes). smoothcert runs with its default bounds
(``sigma_bounds=(0.25, 4)``: the geometric mean of the noise scales at most
4 sigma) and, in the ``cap`` rows, with ``sigma_bounds=(0.25, --wide-cap)``:
ANCER has no upper bound, and far from the boundary its scales reach about
10 sigma. Columns: median and mean certified log-volume
(abstentions count as -inf in the median), ball fractions, and the median
log-volume difference to ANCER.

``ancer-python`` and ``ddsmoothing-python`` are pure Python; install them
where the script can import them, without touching the environment, e.g.::

    pip download ancer-python ddsmoothing-python --no-deps -d /tmp/ancer_dl
    pip install --target /tmp/ancer_pkgs --no-deps /tmp/ancer_dl/*.whl
    python benchmarks/bench_ancer.py --ancer-path /tmp/ancer_pkgs

(``ancer-python`` declares torchvision and statsmodels as dependencies; the
two functions used here need neither.)
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from _common import environment, limit_threads, print_table, small_relu_net  # noqa: E402
from _dimproblems import certify_covariances  # noqa: E402


def ancer_thetas(module, X, sigma, args):
    """ANCER's per-input diagonal scales, from the ``ancer-python`` package."""
    import torch
    from ancer.optimization import optimize_ancer
    from ddsmoothing.certificate import L2Certificate
    from ddsmoothing.optimization import optimize_isotropic_dds

    model = torch.nn.Sequential(torch.nn.Flatten(), module).eval()
    batch = torch.as_tensor(X, dtype=torch.float32).reshape(len(X), 1, 1, 2)
    certificate = L2Certificate(len(X), device="cpu")
    torch.manual_seed(0)
    iso = optimize_isotropic_dds(model, batch, certificate, args.dds_lr, torch.full((len(X),), sigma),
                                 args.iterations, args.samples, device="cpu").detach()
    thetas = torch.ones_like(batch) * iso.reshape(-1, 1, 1, 1)
    thetas = optimize_ancer(model, batch, certificate, args.ancer_lr, thetas, args.iterations, args.samples,
                            kappa=args.kappa, device="cpu")
    return iso.numpy().astype(np.float64), thetas.detach().reshape(len(X), 2).numpy().astype(np.float64)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ancer-path", default=None, help="folder holding the ancer and ddsmoothing packages")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--dds-lr", type=float, default=0.01)
    parser.add_argument("--ancer-lr", type=float, default=0.04)
    parser.add_argument("--kappa", type=float, default=2.0)
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wide-cap", type=float, default=12.0,
                        help="sigma_bounds[1] of the 'cap' rows (ANCER has no upper bound; its scales reach ~10 sigma)")
    args = parser.parse_args(argv)
    limit_threads(args.threads)
    if args.ancer_path:
        sys.path.insert(0, args.ancer_path)
    try:
        import ancer  # noqa: F401
        import ddsmoothing  # noqa: F401
    except ImportError as exc:
        sys.exit(f"ancer-python / ddsmoothing-python cannot be imported ({exc}); see the module docstring.")
    from sklearn.datasets import make_moons
    from sklearn.frozen import FrozenEstimator

    from smoothcert import CertifiedRegion
    from smoothcert._geometry._forms import RowCovariances

    print(environment())
    X, y = make_moons(400, noise=0.15, random_state=0)
    Xt, yt = make_moons(40, noise=0.15, random_state=1)
    X, Xt = X.astype(np.float32), Xt.astype(np.float32)
    net = small_relu_net(max_epochs=60).fit(X, y)
    sigma = 0.25
    region = CertifiedRegion(FrozenEstimator(net), sigma=sigma, n_samples=args.n_samples, random_state=0).fit(X, y)
    rows, logvols = [], {}
    wide = (0.25, args.wide_cap)

    def record(label, cert, seconds):
        ok = cert.certified & (cert.prediction == yt)
        lv = np.where(ok, cert.log_volume, -np.inf)
        logvols[label] = lv
        rows.append(dict(search=label, median_logvol=float(np.median(lv)), mean_logvol=float(np.mean(lv[ok])),
                         certified=float(np.mean(ok)),
                         **{f"ball@{R:g}": float(np.mean(ok & cert.contains_ball(R))) for R in (0.25, 0.5, 0.75)},
                         seconds=seconds))

    start = time.perf_counter()
    iso, thetas = ancer_thetas(net.module_, Xt, sigma, args)
    seconds = time.perf_counter() - start
    record("ancer-python (diagonal)", certify_covariances(region, Xt, RowCovariances.create("diagonal", thetas**2, 2)), seconds)
    record("ddsmoothing (isotropic)", certify_covariances(region, Xt, RowCovariances.isotropic(iso**2, 2)), seconds)
    for label, params in [
        ("smoothcert isotropic", dict(method="isotropic")),
        ("smoothcert diagonal", dict(method="diagonal")),
        ("smoothcert riemannian", dict(method="riemannian")),
        ("smoothcert riemannian, ANCER budget", dict(method="riemannian", n_iter=args.iterations,
                                                      n_samples_optim=args.samples)),
        ("smoothcert riemannian, floor=bounds", dict(method="riemannian", floor="bounds")),
        (f"smoothcert diagonal, cap {args.wide_cap:g} sigma", dict(method="diagonal", sigma_bounds=wide)),
        (f"smoothcert riemannian, cap {args.wide_cap:g} sigma", dict(method="riemannian", sigma_bounds=wide)),
        (f"smoothcert riemannian, cap {args.wide_cap:g} sigma, floor=bounds",
         dict(method="riemannian", sigma_bounds=wide, floor="bounds")),
    ]:
        region.set_params(**{**dict(n_iter=100, n_samples_optim=256, floor="isotropic", sigma_bounds=(0.25, 4.0)),
                             **params})
        start = time.perf_counter()
        cert = region.certify(Xt)
        record(label, cert, time.perf_counter() - start)
    ref = logvols["ancer-python (diagonal)"]
    for row in rows:
        row["vs_ancer"] = row["median_logvol"] - float(np.median(ref))
    print_table(rows, ["search", "median_logvol", "vs_ancer", "mean_logvol", "certified", "ball@0.25", "ball@0.5",
                       "ball@0.75", "seconds"],
                title="Two moons, skorch MLP, one CERTIFY (N = 10,000) for every covariance")


if __name__ == "__main__":
    main()
