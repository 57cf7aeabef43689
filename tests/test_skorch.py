"""A skorch MLP as base model: float32, the direct torch path, end to end."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_blobs
from sklearn.frozen import FrozenEstimator

from smoothcert import Certificate, SmoothedClassifier
from smoothcert._estimators._adapters import is_torch_net, make_adapter

# every test needs torch and skorch (skipped one by one without them, see conftest.py)
pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def data():
    X, y = make_blobs(
        n_samples=150, centers=[[-2, 0], [2, 0], [0, 3]], cluster_std=0.5, random_state=0
    )
    assert X.dtype == np.float64
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    from nets import softmax_net

    X, y = data
    labels = np.array(["left", "right", "top"])[y]
    clf = SmoothedClassifier(
        softmax_net(), sigma=0.25, n_samples=300, n_samples_selection=20, random_state=0
    )
    return clf.fit(X, labels), X, labels


def test_fit_predict_certify_end_to_end(fitted):
    clf, X, labels = fitted
    assert is_torch_net(clf.estimator_)
    assert_array_equal(clf.classes_, ["left", "right", "top"])
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, labels) > 0.95
    cert = clf.certify(X[:20])
    assert isinstance(cert, Certificate)
    assert cert.certified.mean() > 0.9
    assert_array_equal(cert.prediction[cert.certified], labels[:20][cert.certified])
    assert np.all(cert.radius[cert.certified] > 0)
    pred, abstained = clf.predict_abstain(X[:20])
    assert_array_equal(pred[~abstained], labels[:20][~abstained])
    # reproducible, and invariant to the batch size
    again = clf.certify(X[:20])
    assert_array_equal(cert.p_lower, again.p_lower)
    clf.set_params(batch_size=37)
    try:
        assert_array_equal(clf.certify(X[:20]).p_lower, cert.p_lower)
    finally:
        clf.set_params(batch_size="auto")


def test_float32_input(fitted):
    clf, X, _ = fitted
    X32 = X[:10].astype(np.float32)
    cert32 = clf.certify(X32)
    cert64 = clf.certify(X32.astype(np.float64))
    assert cert32.center.dtype == np.float64
    assert_array_equal(cert32.p_lower, cert64.p_lower)
    assert_array_equal(clf.predict_proba(X32), clf.predict_proba(X32.astype(np.float64)))


def test_module_receives_float32(fitted):
    import torch

    clf, X, _ = fitted
    seen = []
    module = clf.estimator_.module_
    hook = module.register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    try:
        clf.predict_proba(X[:3])
    finally:
        hook.remove()
    assert seen and set(seen) == {torch.float32}


def test_adapter_matches_net_predict_proba(fitted):
    clf, X, _ = fitted
    net = clf.estimator_
    adapter = make_adapter(net, clf.classes_, fitted_on_indices=True)
    assert adapter.float32
    noise = np.random.default_rng(0).normal(0, 0.5, X.shape)
    points = (X + noise).astype(np.float32)
    expected = net.predict_proba(points)
    scores = adapter.scores(points)
    assert scores.dtype == np.float64
    assert_allclose(scores, expected, atol=1e-6)
    assert_array_equal(adapter.labels(points), expected.argmax(axis=1))
    # the module is evaluated in eval mode and left in the mode it was found in
    try:
        net.module_.train()
        assert_allclose(adapter.scores(points), expected, atol=1e-6)
        assert net.module_.training
        net.module_.eval()
        adapter.scores(points)
        assert not net.module_.training
    finally:
        net.module_.eval()


def test_adapter_input_gradient(fitted):
    clf, X, _ = fitted
    adapter = make_adapter(clf.estimator_, clf.classes_, fitted_on_indices=True)
    points = X[:8].astype(np.float32)
    weights = np.tile([1.0, -1.0, 0.5], (8, 1))
    scores, grad = adapter.scores_and_gradient(points, weights)
    assert_allclose(scores, adapter.scores(points), atol=1e-7)
    eps = 1e-2
    for j in range(2):
        step = np.zeros(2, dtype=np.float32)
        step[j] = eps
        up = adapter.scores(points + step) @ weights[0]
        down = adapter.scores(points - step) @ weights[0]
        assert_allclose(grad[:, j], (up - down) / (2 * eps), atol=2e-3, rtol=0.05)


def test_soft_votes_with_a_net(fitted):
    clf, X, labels = fitted
    soft = SmoothedClassifier(
        FrozenEstimator(clf.estimator_), sigma=0.25, vote="soft", n_samples=200,
        n_samples_selection=20, random_state=0,
    )
    # the net was trained on class indices: the frozen model predicts 0, 1, 2
    y_idx = np.searchsorted(clf.classes_, labels)
    soft.fit(X, y_idx)
    assert_array_equal(soft.classes_, [0, 1, 2])
    cert = soft.certify(X[:20])
    assert cert.certified.mean() > 0.9
    assert_array_equal(cert.prediction[cert.certified], y_idx[:20][cert.certified])
    assert_allclose(soft.predict_proba(X[:5]).sum(axis=1), 1.0, atol=1e-6)


def test_pre_fitted_net(data):
    from nets import softmax_net

    X, y = data
    net = softmax_net().fit(X.astype(np.float32), y.astype(np.int64))
    clf = SmoothedClassifier(FrozenEstimator(net), sigma=0.1, n_samples=100, random_state=0)
    clf.fit(X, y)
    assert_array_equal(clf.predict(X), net.predict(X.astype(np.float32)))


@pytest.mark.parametrize(
    "kind, logits_decide",
    [("softmax", True), ("identity", True), ("custom", False), ("binary", False)],
)
def test_hard_votes_follow_the_nets_own_predict(data, kind, logits_decide):
    """Hard votes equal ``net.predict`` whatever the prediction nonlinearity."""
    import skorch
    import torch
    from nets import Logits, reversed_softmax

    X, y = data
    X32 = X.astype(np.float32)
    common = dict(max_epochs=0, train_split=None, verbose=0)
    if kind == "binary":
        net = skorch.NeuralNetBinaryClassifier(Logits, module__n_out=1, threshold=0.8, **common)
        net.fit(X32, (y == 1).astype(np.float32))
        classes = np.array([0, 1])
    else:
        criterion = torch.nn.CrossEntropyLoss if kind != "identity" else torch.nn.NLLLoss
        extra = {"predict_nonlinearity": reversed_softmax} if kind == "custom" else {}
        net = skorch.NeuralNetClassifier(Logits, criterion=criterion, **common, **extra)
        net.fit(X32, y.astype(np.int64))
        classes = np.arange(3)
    adapter = make_adapter(net, classes, fitted_on_indices=True)
    assert adapter.logits_decide is logits_decide
    points = X32 + np.random.default_rng(1).normal(0, 1, X.shape).astype(np.float32)
    expected = net.predict(points)
    if kind == "binary":
        # the threshold is not 1/2: argmax of the probabilities would differ somewhere
        assert np.any(expected != net.predict_proba(points).argmax(axis=1))
    if kind == "custom":
        assert np.any(expected != net.forward(points).numpy().argmax(axis=1))
    assert_array_equal(adapter.labels(points), expected)
    assert_allclose(adapter.scores(points), net.predict_proba(points), atol=1e-6)


def test_forward_in_chunks_gives_the_same_votes(fitted):
    """The CPU chunking of the forward pass does not change labels or scores."""
    clf, X, _ = fitted
    adapter = make_adapter(clf.estimator_, clf.classes_, fitted_on_indices=True)
    assert adapter.chunk == 1024  # CPU
    points = np.repeat(X, 20, axis=0) + np.random.default_rng(2).normal(0, 1, (20 * len(X), 2))
    whole_labels, whole_scores = adapter.labels(points), adapter.scores(points)
    adapter.chunk = 7
    assert_array_equal(adapter.labels(points), whole_labels)
    assert_allclose(adapter.scores(points), whole_scores, atol=1e-6)
    # no points: the right shapes
    assert adapter.labels(np.empty((0, 2))).shape == (0,)
    assert adapter.scores(np.empty((0, 2))).shape == (0, 3)
