"""Shared pieces of the benchmark scripts: data, base models, timers, tables.

Nothing here is part of the library. The scripts import it as a sibling module
(``python benchmarks/bench_overhead.py`` puts ``benchmarks/`` on ``sys.path``).
"""

import os
import platform
import sys
import time

import numpy as np

# Dimensions used throughout: 2 (toy), 16, 64 (load_digits) and 784 (MNIST-like).
SIGMA = 0.25
#: Largest point array (elements) a benchmark keeps in memory at once.
MAX_FLOOR_ELEMENTS = 80_000_000


def dataset(d, n_train=None, random_state=0):
    """A classification problem with ``d`` features, scaled to roughly unit range.

    * ``d == 64``: scikit-learn's ``load_digits`` (10 classes), pixels / 16.
    * otherwise: ``make_classification`` with ``d`` features (784 plays the part
      of MNIST without a download), standardized.
    """
    if d == 64:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return X / 16.0, y
    from sklearn.datasets import make_classification

    if n_train is None:
        n_train = 1000 if d > 100 else 2000
    informative = min(d, 10)
    X, y = make_classification(
        n_samples=n_train,
        n_features=d,
        n_informative=informative,
        n_redundant=0,
        n_repeated=0,
        n_classes=2 if d == 2 else 3,
        n_clusters_per_class=1,
        class_sep=1.5,
        random_state=random_state,
    )
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X, y


def small_relu_net(max_epochs):
    """A skorch net 2 -> 32 -> 32 -> 2 (ReLU, softmax), torch seed 0, Adam at lr 0.01, batches of 64."""
    import torch
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    layers = [torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
              torch.nn.Linear(32, 2), torch.nn.Softmax(dim=-1)]
    return NeuralNetClassifier(torch.nn.Sequential(*layers), max_epochs=max_epochs, optimizer=torch.optim.Adam,
                               lr=0.01, batch_size=64, train_split=None, verbose=0)


def _mlp(d, n_classes, hidden=100):
    import torch
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(d, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, n_classes),
    )
    return NeuralNetClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=5,
        batch_size=128,
        train_split=None,
        verbose=0,
    )


MODEL_NAMES = ("logreg", "forest", "svc", "hgb", "skorch_mlp")


def make_model(name, d, n_classes):
    """Unfitted base model ``name`` for a ``d``-feature, ``n_classes`` problem."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    if name == "logreg":
        return LogisticRegression(max_iter=2000)
    if name == "forest":
        return RandomForestClassifier(n_estimators=100, random_state=0)
    if name == "svc":
        return SVC()
    if name == "hgb":
        return HistGradientBoostingClassifier(max_iter=50, random_state=0)
    if name == "skorch_mlp":
        return _mlp(d, n_classes)
    raise ValueError(name)


def torch_available():
    """Whether torch and skorch import (the skorch rows need both)."""
    try:
        import skorch  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def available_models(names):
    """``names`` without the skorch models where torch / skorch cannot be imported (said on stdout)."""
    if "skorch_mlp" in names and not torch_available():
        print("(skorch_mlp rows skipped: torch or skorch cannot be imported)")
        return [name for name in names if name != "skorch_mlp"]
    return list(names)


def is_skorch(model):
    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, NeuralNet)


def bare_predict(model):
    """The base model's own fastest label prediction, called once on all points.

    scikit-learn: ``predict``. skorch: the bare torch module on a float32
    tensor under ``torch.inference_mode`` followed by ``argmax`` (what skorch's
    ``predict`` computes, without its per-sample dataset machinery).
    """
    if not is_skorch(model):
        return model.predict
    import torch

    module = model.module_
    module.eval()

    def predict(points):
        with torch.inference_mode():
            out = module(torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)))
            return out.argmax(dim=1).numpy()

    return predict


_THREAD_LIMITS = []


def limit_threads(n_threads):
    """Limit BLAS / OpenMP / torch threads to ``n_threads`` (None: leave as is)."""
    if not n_threads:
        return
    from threadpoolctl import threadpool_limits

    try:
        import torch

        torch.set_num_threads(n_threads)
    except ImportError:  # pragma: no cover
        pass
    _THREAD_LIMITS.append(threadpool_limits(limits=n_threads))  # kept alive


def throughput(predict, x, d, n=20_000):
    """Rough points per second of the bare prediction (to size the workloads)."""
    pts = x + SIGMA * np.random.default_rng(1).standard_normal((n, d))
    predict(pts[:100])
    start = time.perf_counter()
    predict(pts)
    return n / max(time.perf_counter() - start, 1e-9)


def workload(rate, d, n_samples, n_selection, budget_s, max_inputs):
    """(n_inputs, n_samples) so that the floor takes about ``budget_s`` seconds."""
    per_input = n_samples + n_selection
    max_points = min(rate * budget_s, MAX_FLOOR_ELEMENTS / d)
    n_inputs = int(np.clip(max_points // per_input, 1, max_inputs))
    if n_inputs == 1 and per_input > max_points:
        # Too slow (or too large) a model for the full N: shrink N, say so.
        n_samples = int(max(1000, (max_points - n_selection) // 1000 * 1000))
    return n_inputs, n_samples


def timed(func):
    """Wall-clock and process CPU seconds of one call of ``func``."""
    cpu, wall = time.process_time(), time.perf_counter()
    func()
    return np.array([time.perf_counter() - wall, time.process_time() - cpu])


def print_table(rows, columns, title=None, file=None):
    """Print ``rows`` (list of dicts) as a fixed-width text table (also valid RST)."""
    file = file or sys.stdout
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    rule = "  ".join("=" * w for w in widths)
    if title:
        print(f"\n{title}", file=file)
    print(rule, file=file)
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)), file=file)
    print(rule, file=file)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=file)
    print(rule, file=file)
    file.flush()


def _fmt(value):
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    if isinstance(value, (float, np.floating)):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return f"{value:.3g}"
    return str(value)


def environment():
    """One line describing the machine and the versions used."""
    import joblib
    import scipy
    import sklearn

    import smoothcert

    parts = [
        f"python {platform.python_version()}",
        f"numpy {np.__version__}",
        f"scipy {scipy.__version__}",
        f"scikit-learn {sklearn.__version__}",
        f"joblib {joblib.__version__}",
        f"smoothcert {getattr(smoothcert, '__version__', '?')}",
    ]
    try:
        import skorch
        import torch

        parts += [f"torch {torch.__version__} ({torch.get_num_threads()} threads)", f"skorch {skorch.__version__}"]
    except ImportError:  # pragma: no cover
        pass
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs; " + ", ".join(parts) + f"; {time.strftime('%Y-%m-%d')}"


def search_certificates(estimator_class):
    """Keyword arguments that make a ``CertifiedRegion`` certify its own search per input.

    The search benchmarks measure the covariance each input's search finds,
    as the peers' packages and the literature certify it
    (``guarantee="per-covariance"``); source trees older than the
    ``guarantee`` parameter (``--reference``) certify that way already.
    """
    import inspect

    accepted = inspect.signature(estimator_class).parameters
    return {"guarantee": "per-covariance"} if "guarantee" in accepted else {}
