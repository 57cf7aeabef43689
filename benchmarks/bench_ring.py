"""The eigenvalue cap on a curved boundary: ellipses along a ring.

``make_circles`` (600 training points, noise 0.05, factor 0.5; 40 test
inputs): the boundary is a circle of radius about 0.75. A skorch MLP
(2 -> 32 -> 32 -> 2, 80 epochs of Adam), ``sigma = 0.1``,
``sigma_bounds = (0.25, 4)``, 100 iterations x 256 draws per stage,
N = 10,000. ``CertifiedRegion(method="riemannian")`` under both caps
(``scale_cap="axis"``: every scale at most ``4 sigma``; ``"volume"``: their
geometric mean at most ``4 sigma``) and both floors (``floor="isotropic"``,
the default superset rule, and ``"bounds"``), plus the isotropic search.

Columns: median certified log-volume (abstentions and errors count as
``-inf``), median and largest axis ratio ``sqrt(lambda_max / lambda_min)``,
fractions of inputs whose ball ``B2(x, R)`` lies inside the certified region
and is correctly classified, seconds. About 2 minutes on one core::

    python benchmarks/bench_ring.py
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # measure the working tree's package
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from _common import environment, limit_threads, print_table, small_relu_net  # noqa: E402

RADII = (0.1, 0.2, 0.3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-iter", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    limit_threads(args.threads)
    from sklearn.datasets import make_circles
    from sklearn.frozen import FrozenEstimator

    from smoothcert import CertifiedRegion

    print(environment())
    X, y = make_circles(600, noise=0.05, factor=0.5, random_state=0)
    Xt, yt = make_circles(40, noise=0.05, factor=0.5, random_state=1)
    X, Xt = X.astype(np.float32), Xt.astype(np.float32)
    net = small_relu_net(max_epochs=80).fit(X, y)
    region = CertifiedRegion(FrozenEstimator(net), sigma=0.1, n_iter=args.n_iter, n_samples=10_000,
                             random_state=0).fit(X, y)
    rows = []
    variants = [("isotropic", "volume", "isotropic")] + [
        ("riemannian", cap, floor) for floor in ("isotropic", "bounds") for cap in ("axis", "volume")
    ]
    for method, cap, floor in variants:
        start = time.perf_counter()
        cert = region.set_params(method=method, scale_cap=cap, floor=floor).certify(Xt)
        seconds = time.perf_counter() - start
        ok = cert.certified & (cert.prediction == yt)
        ev = cert.covariances.eigenvalues()
        ratio = np.sqrt(ev[:, -1] / ev[:, 0])
        rows.append(dict(method=method, scale_cap=cap if method != "isotropic" else "", floor=floor,
                         logvol=float(np.median(np.where(ok, cert.log_volume, -np.inf))),
                         ratio_median=float(np.median(ratio)), ratio_max=float(ratio.max()),
                         **{f"ball@{R:g}": float(np.mean(ok & cert.contains_ball(R))) for R in RADII},
                         seconds=seconds))
        print(f"  {method} {cap} {floor} done", flush=True)
    print_table(rows, ["method", "scale_cap", "floor", "logvol", "ratio_median", "ratio_max"]
                + [f"ball@{R:g}" for R in RADII] + ["seconds"],
                title="Two circles, skorch MLP, sigma = 0.1: axis ratios of the certified ellipses")


if __name__ == "__main__":
    main()
