"""Recorded certificates: refactors must leave every value bit-identical.

``tests/data/regression_certificates.npz`` holds ``p_lower``, ``radius``,
``mahalanobis_radius``, ``prediction`` and ``covariance`` for a fixed grid of
settings (hard and soft votes; fixed, isotropic, diagonal and riemannian
covariances; a forest, a logistic regression and a skorch MLP; with and
without memory; through a pipeline), computed by :func:`compute_grid`. The
test recomputes the grid and compares every array exactly.

Bit-identity is a property of one platform: BLAS kernels and library versions
change the last bits of a fit or a matrix product, and a keep-best search can
turn a last-bit difference into another accepted step. The file records the
versions and the BLAS kernel it was made with; on another platform the test
compares with a tolerance instead and says so.

Rerun ``python tests/test_regression.py --record`` only for an intended change
of results, and say why in the commit message.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_moons
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import smoothcert
from smoothcert import CertificateMemory, CertifiedRegion, SmoothedClassifier

DATA = Path(__file__).parent / "data" / "regression_certificates.npz"
FIELDS = ("prediction", "abstained", "p_lower", "mahalanobis_radius", "radius", "covariance")
METHODS = ("fixed", "isotropic", "diagonal", "riemannian")
SMALL = dict(n_samples=300, n_samples_selection=30, random_state=0)
SEARCH = dict(n_iter=4, n_samples_optim=64)


def _platform():
    import scipy
    import sklearn
    import threadpoolctl

    info = {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}
    try:
        import torch

        info["torch"] = torch.__version__
        # torch picks its kernels by the CPU's instruction set: a net trains
        # to other last bits on another processor
        info["torch_cpu"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:  # pragma: no cover - torch is a test dependency
        info["torch"] = None
    blas = [
        (lib.get("internal_api"), lib.get("architecture"))
        for lib in threadpoolctl.threadpool_info()
        if lib.get("user_api") == "blas"
    ]
    info["blas"] = sorted({f"{api}:{arch}" for api, arch in blas})
    return info


def _data():
    X, y = make_moons(n_samples=120, noise=0.2, random_state=3)
    return X[:100], y[:100], X[100:108]


def _mlp():
    import torch
    from skorch import NeuralNetClassifier

    class Net(torch.nn.Module):
        def __init__(self, n_in=2):
            super().__init__()
            gen = torch.Generator().manual_seed(0)
            self.hidden = torch.nn.Linear(n_in, 16)
            self.out = torch.nn.Linear(16, 2)
            for layer in (self.hidden, self.out):
                torch.nn.init.normal_(layer.weight, std=layer.in_features**-0.5, generator=gen)
                torch.nn.init.zeros_(layer.bias)

        def forward(self, X):
            return torch.softmax(self.out(torch.relu(self.hidden(X))), dim=-1)

    return NeuralNetClassifier(
        Net, max_epochs=20, lr=0.05, optimizer=torch.optim.Adam, batch_size=50,
        train_split=None, verbose=0,
    )


def _models():
    return {
        "forest": lambda: RandomForestClassifier(n_estimators=15, random_state=0),
        "logistic": lambda: LogisticRegression(),
        "mlp": _mlp,
    }


def _record(out, key, cert):
    for field in FIELDS:
        out[f"{key}/{field}"] = np.asarray(getattr(cert, field))


def compute_grid():
    """Certificates of every setting of the grid, as a flat dict of arrays."""
    import torch

    X, y, X_test = _data()
    out = {}
    for model_name, make in _models().items():
        for vote in ("hard", "soft"):
            torch.manual_seed(0)
            clf = SmoothedClassifier(make(), sigma=0.3, vote=vote, **SMALL).fit(X, y)
            _record(out, f"{model_name}/smoothed/{vote}", clf.certify(X_test))
            out[f"{model_name}/smoothed/{vote}/proba"] = clf.predict_proba(X_test)
            pred, abst = clf.predict_abstain(X_test)
            out[f"{model_name}/smoothed/{vote}/predict_abstain"] = np.c_[pred, abst]
            for method in METHODS:
                torch.manual_seed(0)
                region = CertifiedRegion(
                    make(), method=method, sigma=0.3, vote=vote, **SEARCH, **SMALL, guarantee="per-covariance"
                ).fit(X, y)
                _record(out, f"{model_name}/{method}/{vote}", region.certify(X_test))
    # with memory
    region = CertifiedRegion(
        _models()["forest"](), method="riemannian", sigma=0.3, **SEARCH, **SMALL, guarantee="per-covariance"
    ).fit(X, y)
    memory = CertificateMemory()
    _record(out, "forest/riemannian/memory", region.certify(X_test, memory=memory))
    _record(out, "forest/riemannian/memory-again", region.certify(X_test + 0.01, memory=memory))
    # through a pipeline (certificate pulled back to raw space)
    for method in ("fixed", "diagonal", "riemannian"):
        pipe = make_pipeline(
            StandardScaler(),
            CertifiedRegion(_models()["forest"](), method=method, sigma=0.3, **SEARCH, **SMALL, guarantee="per-covariance"),
        ).fit(X * [1.0, 3.0], y)
        _record(out, f"pipeline/{method}", smoothcert.certify(pipe, X_test * [1.0, 3.0]))
    # a 5-D problem, where full covariances have room to rotate
    rng = np.random.default_rng(0)
    X5 = rng.standard_normal((150, 5))
    y5 = (X5 @ rng.standard_normal(5) + 0.5 * X5[:, 0] ** 2 > 0).astype(int)
    for method in ("diagonal", "riemannian"):
        for gradient_model in ("forest", "mlp5"):
            if gradient_model == "forest":
                base = _models()["forest"]()
            else:
                torch.manual_seed(0)
                base = _mlp().set_params(module__n_in=5)
            region = CertifiedRegion(base, method=method, sigma=0.4, **SEARCH, **SMALL, guarantee="per-covariance")
            _record(out, f"d5/{gradient_model}/{method}", region.fit(X5, y5).certify(X5[:6]))
    return out


def _load():
    with np.load(DATA, allow_pickle=False) as data:
        stored = {key: data[key] for key in data.files}
    platform = json.loads(str(stored.pop("__platform__")))
    return stored, platform


@pytest.mark.slow
@pytest.mark.torch
def test_certificates_bit_identical():
    stored, platform = _load()
    same_platform = platform == _platform()
    current = compute_grid()
    assert sorted(current) == sorted(stored)
    mismatched = []
    for key, expected in stored.items():
        got = current[key]
        if same_platform:
            ok = got.shape == expected.shape and np.array_equal(got, expected, equal_nan=True)
        else:
            ok = got.shape == expected.shape and (
                np.array_equal(got, expected)
                if got.dtype.kind in "biuUS"
                else np.allclose(got, expected, rtol=1e-6, atol=1e-9, equal_nan=True)
            )
        if not ok:
            mismatched.append(key)
    where = "bit-identical" if same_platform else f"close (recorded on {platform})"
    assert not mismatched, f"not {where}: {mismatched}"


if __name__ == "__main__":
    if "--record" not in sys.argv:
        sys.exit("usage: python tests/test_regression.py --record")
    grid = compute_grid()
    grid["__platform__"] = np.array(json.dumps(_platform()))
    DATA.parent.mkdir(exist_ok=True)
    np.savez_compressed(DATA, **grid)
    print(f"recorded {len(grid) - 1} arrays in {DATA}")
