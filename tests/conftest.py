"""Shared fixtures and helpers of the test suite.

Plain helpers (data makers, certificate comparisons) are imported by the test
modules with ``from conftest import ...``; fixtures are found by pytest.

Torch. Tests that need torch and skorch carry the ``torch`` marker
(``@pytest.mark.torch``, or ``pytest.param(..., marks=pytest.mark.torch)`` for
one parameter); they are skipped, one by one, where either cannot be imported,
so that every torch-free test still runs. Their nets come from ``tests/nets.py``,
which imports torch at module level and may only be imported from torch-marked
tests and fixtures.
"""

import contextlib
from unittest import mock

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import make_moons

import smoothcert._engine._streams

# tests/nets.py is a helper module, not a test module: never collected (with
# --doctest-modules it would be imported, and it needs torch).
collect_ignore = ["nets.py"]

#: The fields of a certificate that a computation determines, compared bit for bit.
CERT_FIELDS = ("prediction", "abstained", "p_lower", "mahalanobis_radius", "radius", "covariance")


# ------------------------------------------------------------------ torch marker
_TORCH_MISSING = []  # filled once: [] until checked, then [reason or None]


def _torch_missing_reason():
    """Why torch-marked tests cannot run here (None when torch and skorch import)."""
    if not _TORCH_MISSING:
        reason = None
        for name in ("torch", "skorch"):
            try:
                __import__(name)
            except ImportError as exc:
                reason = f"needs torch and skorch: {name} cannot be imported ({exc})"
                break
        _TORCH_MISSING.append(reason)
    return _TORCH_MISSING[0]


def pytest_collection_modifyitems(config, items):
    marked = [item for item in items if item.get_closest_marker("torch") is not None]
    if not marked:
        return
    reason = _torch_missing_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in marked:
        item.add_marker(skip)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny nets on one torch thread (thread wake-ups dominate them,
    and two xdist workers share the cores); a no-op without torch."""
    try:
        import torch
    except ImportError:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ------------------------------------------------------------ no Monte-Carlo draw
def _forbidden_draw(*args, **kwargs):
    raise AssertionError("a Monte-Carlo draw was made before the input was rejected")


@contextlib.contextmanager
def forbid_sampling():
    """Make any Monte-Carlo draw raise AssertionError inside the block.

    The engine draws all noise through ``smoothcert._engine._streams.generators``
    (one loop, :func:`smoothcert._engine._loop.sample`), so replacing that name
    stops every draw of every estimator, procedure and search.
    """
    with mock.patch.object(smoothcert._engine._streams, "generators", _forbidden_draw):
        yield


@pytest.fixture
def no_sampling():
    """Errors must come before sampling: any draw fails the test."""
    with forbid_sampling():
        yield


# --------------------------------------------------------------------- helpers
def assert_same_certificates(a, b, fields=CERT_FIELDS):
    """Bit-for-bit equality of two certificates, field by field (shapes and dtypes
    too), and the same guarantee."""
    assert len(a) == len(b), (len(a), len(b))
    assert a.guarantee == b.guarantee, (a.guarantee, b.guarantee)
    for field in fields:
        assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field, strict=True)


# ------------------------------------------------------------------------ data
def make_blobs_data(n_per_class=30, n_classes=3, n_features=2, spread=0.3, seed=0):
    """Well-separated Gaussian blobs: centres on a circle of radius 2."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = np.zeros((n_classes, n_features))
    centres[:, 0] = 2 * np.cos(angles)
    centres[:, 1] = 2 * np.sin(angles)
    X = np.concatenate(
        [c + spread * rng.standard_normal((n_per_class, n_features)) for c in centres]
    )
    y = np.repeat(np.arange(n_classes), n_per_class)
    order = rng.permutation(len(y))
    return X[order], y[order]


def make_moons_data(n=200, noise=0.15, seed=0):
    """scikit-learn's two moons, ``(X, y)``."""
    return make_moons(n_samples=n, noise=noise, random_state=seed)


@pytest.fixture
def blobs():
    """Three well-separated 2-D classes, 90 rows."""
    return make_blobs_data()


@pytest.fixture
def binary_linear():
    """A 2-D binary problem with a linear boundary, 100 rows."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 2))
    y = (X @ np.array([1.0, -2.0]) + 0.25 > 0).astype(int)
    return X, y


@pytest.fixture
def no_sampling_engine(monkeypatch):
    """Make any Monte-Carlo draw fail: every noise stream comes from ``_streams.generators``."""
    import smoothcert._engine._streams

    def forbidden(*args, **kwargs):
        raise AssertionError("noise was drawn before the input was rejected")

    monkeypatch.setattr(smoothcert._engine._streams, "generators", forbidden)
