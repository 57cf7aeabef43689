"""Small shared fixtures of the test suite."""

import numpy as np
import pytest


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
