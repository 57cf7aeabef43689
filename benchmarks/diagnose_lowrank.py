"""Where the low-rank form falls short of the full one, at d = 64 where both can run.

Two problems, the full form (``method="riemannian"``, below 512 features) against
``method="lowrank"`` on the same inputs and draws:

* ``digits``: ``load_digits`` (8 x 8, pixels / 16), a skorch MLP 64 -> 128 -> 10
  trained on the data and one noisy copy, 20 test digits, 50 iterations per stage;
* ``linear``: the rotated hyperplane of ``bench_dimension.py`` with a
  LogisticRegression (its linear oracle), 20 inputs, 100 iterations per stage.

Columns: median certified log-volume (N = 10,000), its gain over isotropic, and
per stage the inputs the ascent moved and those the end-of-stage check sent back
(``Certificate.search_info``). About 2 minutes on one core::

    python benchmarks/diagnose_lowrank.py
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from _common import environment, limit_threads, print_table  # noqa: E402
from _dimproblems import Problem, fit_region  # noqa: E402


def digits_region():
    import torch
    from sklearn.datasets import load_digits
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import train_test_split
    from skorch import NeuralNetClassifier

    from smoothcert import CertifiedRegion

    digits = load_digits()
    X, y = (digits.data / 16.0).astype(np.float32), digits.target
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=20, stratify=y, random_state=0)
    noisy = X_train + 0.25 * np.random.default_rng(0).standard_normal(X_train.shape).astype(np.float32)
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10),
                                 torch.nn.Softmax(dim=-1))
    net = NeuralNetClassifier(module, max_epochs=15, lr=1e-3, optimizer=torch.optim.Adam, batch_size=128,
                              train_split=None, verbose=0)
    net.fit(np.concatenate([noisy, X_train]), np.concatenate([y_train, y_train]))
    region = CertifiedRegion(FrozenEstimator(net), sigma=0.25, n_iter=50, n_samples=10_000, random_state=0)
    return region.fit(X_train, y_train), X_test, y_test


def linear_region():
    problem = Problem(64, "linear", 4000, 200, seed=0)
    X, y, _ = problem.inputs(20)
    region = fit_region("logreg", problem, method="fixed", n_iter=100, n_samples_optim=256, n_samples=10_000,
                        random_state=0)
    return region, X, y


def main():
    limit_threads(1)
    print(environment())
    rows = []
    for name, make in [("digits", digits_region), ("linear", linear_region)]:
        region, X, y = make()
        base = None
        for method in ("isotropic", "riemannian", "lowrank"):
            cert = region.set_params(method=method).certify(X)
            ok = cert.certified & (cert.prediction == y)
            logvol = float(np.median(np.where(ok, cert.log_volume, -np.inf)))
            base = logvol if base is None else base
            info = cert.search_info
            rows.append(dict(problem=name, method=method, form=cert.covariances.kind, logvol=logvol,
                             gain=logvol - base,
                             moved=" ".join(f"{k}:{v}" for k, v in info["n_moved"].items()),
                             reverted=" ".join(f"{k}:{v}" for k, v in info["n_reverted"].items())))
            print(f"  {name} {method} done", flush=True)
    print_table(rows, ["problem", "method", "form", "logvol", "gain", "moved", "reverted"],
                title="Full against low-rank form at d = 64")


if __name__ == "__main__":
    main()
