"""Certificates that hold for the deployed classifier: the three guarantees compared.

A curved 2-D problem (labels ``x2 > 0.8 sin(1.3 x1)``, inputs uniform on
``[-3, 3]^2``, 2 % of the training labels flipped; 4,000 training points),
a RandomForest(100) base model, ``sigma = 0.25``, N = 20,000,
``alpha = 0.001``, 60 test inputs. Rows:

* ``SmoothedClassifier``: Cohen et al.'s fixed noise, ``sigma = 0.25``;
* ``per-covariance``: ``CertifiedRegion(guarantee="per-covariance")``, the
  certificate of the classifier smoothed with the input's own covariance;
* ``memory``: the same search, certified through a ``CertificateMemory``
  (the test inputs in order);
* ``deployed``: ``CertifiedRegion(guarantee="deployed")``, the default.

Columns: certified accuracy (%) at R = 0.25 / 0.5 / 0.75 / 1.0 (abstentions
count as failures); the *probe*: for each certified input, the 6 directions
(of 64 random ones) in which the base model's own class changes soonest, and
points at 0.9 and 0.98 of the certified l2 radius along them; ``probe``
counts the points where the deployed classifier (``predict_abstain`` of the
same fitted estimator with another ``random_state``, so with independent
draws) returns another class without abstaining, and ``inputs`` the inputs
with at least one such point; fit and certify seconds. For the memory row
the deployed classifier is the model with its memory, queried after the test
inputs (``predict(X, memory=...)`` on a copy of the memory, one probe point
at a time).

Usage (about 20 minutes on one core; ``--quick`` for a 5-minute check with
N = 5,000 and 30 inputs)::

    python benchmarks/bench_deployed.py
"""

import argparse
import copy
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # measure the working tree's package
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from _common import environment, limit_threads, print_table  # noqa: E402

RADII = (0.25, 0.5, 0.75, 1.0)


def curved_problem(n, random_state, flip=0.0):
    """Inputs uniform on [-3, 3]^2, class 1 above the curve ``x2 = 0.8 sin(1.3 x1)``."""
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-3.0, 3.0, size=(n, 2))
    y = (X[:, 1] > 0.8 * np.sin(1.3 * X[:, 0])).astype(int)
    if flip:
        flipped = rng.random(n) < flip
        y[flipped] = 1 - y[flipped]
    return X, y


def probe_points(estimator, cert, n_directions=64, n_kept=6, fractions=(0.9, 0.98), seed=0):
    """Probe points inside the certified l2 balls, toward the base model's boundary.

    For each certified input ``x`` with l2 radius ``rho``: ``n_directions``
    random unit directions; along each, the base model (``predict_base``,
    no noise) is read at 200 steps up to ``3 rho`` and the first distance at
    which its class differs from its class at ``x`` is kept; the
    ``n_kept`` directions with the smallest such distance give the points
    ``x + f rho u`` for ``f`` in ``fractions``.

    Returns
    -------
    points : ndarray of shape (m, 2)
    owner : ndarray of int, shape (m,)
        Row of ``cert`` whose region holds each point.
    """
    rng = np.random.default_rng(seed)
    steps = np.linspace(0.0, 3.0, 201)[1:]
    points, owner = [], []
    for i in np.flatnonzero(cert.certified & (cert.radius > 0)):
        x, rho = cert.center[i], cert.radius[i]
        u = rng.standard_normal((n_directions, x.size))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        line = x + rho * steps[None, :, None] * u[:, None, :]
        base = estimator.predict_base(line.reshape(-1, x.size)).reshape(n_directions, -1)
        own = estimator.predict_base(x[None])[0]
        changed = base != own
        first = np.where(changed.any(axis=1), changed.argmax(axis=1), steps.size)
        for j in np.argsort(first, kind="stable")[:n_kept]:
            for f in fractions:
                points.append(x + f * rho * u[j])
                owner.append(i)
    return np.asarray(points).reshape(-1, cert.n_features), np.asarray(owner, dtype=int)


def probe(cert, answer, owner):
    """(points with another, non-abstained class, their number, inputs affected)."""
    label, abstained = answer
    wrong = (~abstained) & (label != cert.prediction[owner])
    return int(wrong.sum()), len(owner), int(np.unique(owner[wrong]).size), int(np.unique(owner).size)


def accuracy(cert, y):
    from smoothcert import certified_accuracy

    return [100.0 * certified_accuracy(y, cert, r) for r in RADII]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a few inputs and draws (tests)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default="isotropic,riemannian")
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args(argv)
    limit_threads(args.threads)

    from sklearn.ensemble import RandomForestClassifier

    from smoothcert import CertificateMemory, CertifiedRegion, SmoothedClassifier
    from smoothcert.guarantees import DeployedGuarantee

    n_samples, n_test = (5_000, 30) if args.quick else (20_000, 60)
    n_train, search, guarantee = 4000, {}, DeployedGuarantee()
    if args.smoke:
        n_samples, n_test, n_train = 300, 4, 400
        search = dict(n_iter=2, n_samples_optim=16)
        guarantee = DeployedGuarantee(n_family_inputs=8, n_selector_inputs=100)
        args.methods, args.no_memory = "isotropic", True
    X, y = curved_problem(n_train, 0, flip=0.02)
    X_test, y_test = curved_problem(n_test, 1)
    base = RandomForestClassifier(10 if args.smoke else 100, random_state=0)
    common = dict(sigma=0.25, n_samples=n_samples, alpha=0.001, random_state=0)
    print(environment())
    print(f"curved 2-D problem, RandomForest(100), sigma 0.25, N {n_samples}, alpha 0.001, "
          f"{n_test} test inputs")

    rows = []

    def record(name, est, cert, fit_s, certify_s, answer=None, owner=None):
        row = {"estimator": name}
        row.update({f"R={r:g}": a for r, a in zip(RADII, accuracy(cert, y_test))})
        if answer is not None:
            wrong, total, hit, inputs = probe(cert, answer, owner)
            row["probe"] = f"{wrong} / {total}"
            row["inputs"] = f"{hit} / {inputs}"
        row["fit_s"] = fit_s
        row["certify_s"] = certify_s
        rows.append(row)
        print(row, flush=True)

    def run(name, est):
        t0 = time.perf_counter()
        est.fit(X, y)
        t1 = time.perf_counter()
        cert = est.certify(X_test)
        t2 = time.perf_counter()
        points, owner = probe_points(est, cert)
        deployed = copy.deepcopy(est).set_params(random_state=12345)
        answer = deployed.predict_abstain(points) if len(points) else (np.array([]), np.array([]))
        record(name, est, cert, t1 - t0, t2 - t1, answer, owner)
        return est

    run("SmoothedClassifier", SmoothedClassifier(base, **common))
    for method in args.methods.split(","):
        per_cov = run(f"{method} per-covariance",
                      CertifiedRegion(base, method=method, guarantee="per-covariance", **search,
                                      **common))
        if not args.no_memory:
            memory = CertificateMemory()
            t0 = time.perf_counter()
            cert = per_cov.certify(X_test, memory=memory)
            t1 = time.perf_counter()
            points, owner = probe_points(per_cov, cert)
            # a query inside a stored region gets the stored class whatever its
            # own fresh certificate: the queries are answered with a small budget
            quick = copy.deepcopy(per_cov).set_params(random_state=12345, n_iter=5,
                                                       n_samples=1000)
            label = quick.predict(points, memory=copy.deepcopy(memory))
            answer = (label, np.zeros(len(label), dtype=bool))
            record(f"{method} memory", per_cov, cert, np.nan, t1 - t0, answer, owner)
        run(f"{method} deployed", CertifiedRegion(base, method=method, guarantee=guarantee,
                                                  **search, **common))
    columns = ["estimator", *[f"R={r:g}" for r in RADII], "probe", "inputs", "fit_s", "certify_s"]
    print_table(rows, columns, title="certified accuracy (%), probe soundness, seconds")


if __name__ == "__main__":
    main()
