"""Exact low-dimensional sampling for models that see their input through a linear map.

A linear classifier predicts from ``u = W x + b``, and a net opening with a
narrowing ``nn.Linear`` computes everything from that layer's
pre-activations; the engine then samples ``W e ~ N(0, W Sigma W^T)`` instead of
``e``. These tests check when the route is taken, that it gives the same votes
in law (against closed forms and against the general route), and that it
keeps every invariance of the engine.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures, StandardScaler
from sklearn.svm import SVC, LinearSVC

from smoothcert import SmoothedClassifier
from smoothcert._geometry._forms import RowCovariances
from smoothcert._certify._procedures import count_votes
from smoothcert._engine._streams import STAGE_ESTIMATION


def _data(n_features=6, n_classes=3, seed=0):
    X, y = make_classification(
        n_samples=200, n_features=n_features, n_informative=min(n_features, 4),
        n_redundant=0, n_classes=n_classes, n_clusters_per_class=1, random_state=seed,
    )
    return X, y


def _covariances(kind, n, d, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "isotropic":
        return RowCovariances.isotropic(np.full(n, 0.8), d)
    if kind == "diagonal":
        return RowCovariances.create("diagonal", rng.uniform(0.2, 1.5, (n, d)), d)
    a = rng.standard_normal((n, d, d)) / np.sqrt(d)
    return RowCovariances.from_matrices(a @ a.transpose(0, 2, 1) + 0.2 * np.eye(d))


class _NoShortcut:
    """The same adapter with the shortcut switched off: the general route."""

    def __init__(self, adapter):
        self._adapter = adapter

    def __getattr__(self, name):
        return getattr(self._adapter, name)

    def input_map(self, vote):
        return None


@pytest.mark.parametrize(
    "model, taken",
    [
        (LogisticRegression(), True),
        (LinearSVC(), True),
        (SGDClassifier(random_state=0), True),
        (FrozenEstimator(LogisticRegression().fit(*_data())), True),
        (RidgeClassifier(), False),  # its own predict
        (SVC(), False),
    ],
)
def test_when_the_linear_route_is_taken(model, taken):
    X, y = _data()
    clf = SmoothedClassifier(model, sigma=0.5).fit(X, y)
    adapter = clf._adapter()
    assert (adapter.input_map("hard") is not None) is taken
    # soft votes go through predict_proba: always the general route
    assert adapter.input_map("soft") is None


@pytest.mark.parametrize(
    "steps, taken",
    [
        ([StandardScaler()], True),
        ([MinMaxScaler(), PCA(n_components=4)], True),
        ([StandardScaler(), PCA(n_components=4, whiten=True)], True),
        ([PolynomialFeatures(degree=2)], False),  # not affine
    ],
)
def test_pipelines_of_affine_steps_take_the_linear_route(steps, taken):
    X, y = _data(n_features=8)
    clf = SmoothedClassifier(make_pipeline(*steps, LogisticRegression(max_iter=2000)), sigma=0.5)
    clf.fit(X, y)
    mapped = clf._adapter().input_map("hard")
    assert (mapped is not None) is taken
    if taken:
        # the composed map is the pipeline's own decision function, in raw space
        W, b, labels_from = mapped
        assert_allclose(X @ W.T + b, clf.estimator_.decision_function(X), atol=1e-10)
        assert_array_equal(labels_from(X @ W.T + b), clf.estimator_.predict(X))


def test_pipeline_votes_match_the_normal_cdf():
    X, y = _data(n_features=5, n_classes=2)
    X = X * [1.0, 10.0, 0.1, 3.0, 1.0] + 2.0  # badly scaled raw features
    clf = SmoothedClassifier(make_pipeline(StandardScaler(), LogisticRegression()), sigma=1.0)
    clf.fit(X, y)
    rows = X[:6]
    cov = _covariances("full", len(rows), 5, seed=3)
    n = 20_000
    counts, _ = count_votes(clf._adapter(), rows, cov, n, seed=(0,), stage=STAGE_ESTIMATION)
    scaler, lr = clf.estimator_[0], clf.estimator_[-1]
    w = lr.coef_[0] / scaler.scale_  # decision = w . x + c in raw space
    c = lr.intercept_[0] - lr.coef_[0] @ (scaler.mean_ / scaler.scale_)
    scale = np.sqrt(np.einsum("i,nij,j->n", w, cov.matrices(), w))
    p1 = stats.norm.cdf((rows @ w + c) / scale)
    se = np.sqrt(p1 * (1 - p1) / n) + 1e-9
    assert np.all(np.abs(counts[:, 1] / n - p1) <= 5 * se + 1e-4)


def test_no_route_when_it_would_not_save_work():
    # 4 classes, 3 features: W has more rows than columns
    X, y = _data(n_features=3, n_classes=4)
    clf = SmoothedClassifier(LogisticRegression(), sigma=0.5).fit(X, y)
    assert clf._adapter().input_map("hard") is None


@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
def test_binary_linear_votes_match_the_normal_cdf(kind):
    """P(class 1) at x is Phi((w.x + b) / sqrt(w^T Sigma w)), for any covariance."""
    X, y = _data(n_features=5, n_classes=2)
    clf = SmoothedClassifier(LogisticRegression(), sigma=1.0).fit(X, y)
    adapter = clf._adapter()
    assert adapter.input_map("hard") is not None
    rows = X[:6]
    cov = _covariances(kind, len(rows), rows.shape[1])
    n = 20_000
    counts, _ = count_votes(adapter, rows, cov, n, seed=(0,), stage=STAGE_ESTIMATION)
    w, b = clf.estimator_.coef_[0], clf.estimator_.intercept_[0]
    scale = np.sqrt(np.einsum("i,nij,j->n", w, cov.matrices(), w))
    p1 = stats.norm.cdf((rows @ w + b) / scale)
    se = np.sqrt(p1 * (1 - p1) / n) + 1e-9
    assert np.all(np.abs(counts[:, 1] / n - p1) <= 5 * se + 1e-4)


@pytest.mark.parametrize("kind", ["isotropic", "full"])
def test_multiclass_linear_votes_agree_with_the_general_route(kind):
    X, y = _data(n_features=8, n_classes=3)
    clf = SmoothedClassifier(LogisticRegression(), sigma=1.0).fit(X, y)
    adapter = clf._adapter()
    rows = X[:5]
    cov = _covariances(kind, len(rows), rows.shape[1], seed=1)
    n = 20_000
    fast, _ = count_votes(adapter, rows, cov, n, seed=(0,), stage=STAGE_ESTIMATION)
    slow, _ = count_votes(_NoShortcut(adapter), rows, cov, n, seed=(1,), stage=STAGE_ESTIMATION)
    assert_array_equal(fast.sum(axis=1), n)
    p = 0.5 * (fast + slow) / n
    se = np.sqrt(2 * p * (1 - p) / n) + 1e-9
    assert np.all(np.abs(fast - slow) / n <= 5 * se + 1e-4)


def test_linear_route_keeps_the_invariances():
    X, y = _data(n_features=8)
    clf = SmoothedClassifier(
        LogisticRegression(), sigma=0.7, n_samples=3000, n_samples_selection=50, random_state=0
    ).fit(X, y)
    ref = clf.certify(X[:12])
    # batch size, subsets and order do not change a certificate
    clf.set_params(batch_size=97)
    assert_array_equal(clf.certify(X[:12]).p_lower, ref.p_lower)
    assert_array_equal(clf.certify(X[[7, 3]]).p_lower, ref.p_lower[[7, 3]])
    # and the certificate is the usual one: radius sigma * Phi^-1(p_lower)
    ok = ~ref.abstained
    assert_allclose(ref.radius[ok], 0.7 * stats.norm.ppf(ref.p_lower[ok]))


# ------------------------------------------------------------ skorch nets
def _sequential_net(d_in, hidden, n_classes=3, seed=0):
    """``Linear(d_in, hidden), ReLU, Linear(hidden, n_classes)``, trained briefly."""
    from torch import nn, optim

    from nets import classifier, relu_sequential

    module = relu_sequential((d_in, hidden, n_classes), seed=seed, softmax=False)
    return classifier(module, criterion=nn.CrossEntropyLoss, max_epochs=3, lr=0.05,
                      optimizer=optim.Adam)


@pytest.mark.torch
@pytest.mark.parametrize(
    "hidden, taken", [(4, True), (10, False), (16, False)]
)
def test_when_the_net_route_is_taken(hidden, taken):
    X, y = _data(n_features=10)
    clf = SmoothedClassifier(_sequential_net(10, hidden), sigma=0.5).fit(X, y)
    adapter = clf._adapter()
    assert (adapter.input_map("hard") is not None) is taken
    assert (adapter.input_map("soft") is not None) is taken


@pytest.mark.torch
def test_no_net_route_for_a_custom_forward():
    from torch import nn

    from nets import CustomForward, classifier

    X, y = _data(n_features=10)
    net = classifier(CustomForward, criterion=nn.CrossEntropyLoss, max_epochs=1)
    clf = SmoothedClassifier(net, sigma=0.5).fit(X, y)
    assert clf._adapter().input_map("hard") is None


@pytest.mark.torch
def test_net_route_computes_the_same_function():
    """The rest of the net on ``W x + b`` is the net on ``x``."""
    X, y = _data(n_features=10)
    clf = SmoothedClassifier(_sequential_net(10, 4), sigma=0.5).fit(X, y)
    adapter = clf._adapter()
    weight, bias, labels_from = adapter.input_map("hard")
    _, _, scores_from = adapter.input_map("soft")
    points = np.repeat(X[:20], 50, axis=0)
    points += np.random.default_rng(0).standard_normal(points.shape)
    u = points @ weight.T + bias
    agree = np.mean(labels_from(u.astype(np.float32)) == adapter.labels(points))
    assert agree >= 0.999  # float32 rounding may flip a point on the boundary
    assert_allclose(scores_from(u.astype(np.float32)), adapter.scores(points), atol=1e-5)


@pytest.mark.torch
@pytest.mark.parametrize("vote", ["hard", "soft"])
def test_net_route_agrees_in_law_with_the_general_route(vote):
    X, y = _data(n_features=10)
    clf = SmoothedClassifier(_sequential_net(10, 4), sigma=1.0).fit(X, y)
    adapter = clf._adapter()
    rows = X[:5]
    cov = _covariances("diagonal", len(rows), rows.shape[1], seed=2)
    n = 20_000
    fast, _ = count_votes(adapter, rows, cov, n, seed=(0,), stage=STAGE_ESTIMATION, vote=vote)
    slow, _ = count_votes(
        _NoShortcut(adapter), rows, cov, n, seed=(1,), stage=STAGE_ESTIMATION, vote=vote
    )
    p = 0.5 * (fast + slow) / n
    se = np.sqrt(2 * p * (1 - p) / n) + 1e-9
    assert np.all(np.abs(fast - slow) / n <= 5 * se + 1e-4)
