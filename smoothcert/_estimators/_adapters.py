"""Adapters that give the sampling engine one fast interface to any base model.

* :class:`_SklearnAdapter` wraps a fitted scikit-learn classifier: hard votes go
  through ``predict`` (usually the fastest path), scores through
  ``predict_proba`` (or one-hot votes when the model has none).
* :class:`_TorchAdapter` wraps a fitted skorch ``NeuralNet``: it calls the
  torch module directly, in float32, under ``torch.inference_mode`` on the
  net's device, which is an order of magnitude faster than skorch's own
  ``predict_proba``; it also provides input gradients for pathwise optimization.

Adapters return class *indices* into the smoothing estimator's ``classes_``.
"""

import functools
import sys

import numpy as np
from sklearn.frozen import FrozenEstimator

__all__ = ["make_adapter", "is_torch_net"]


def is_torch_net(estimator):
    """Whether ``estimator`` is a skorch net (fitted or not).

    skorch is not imported for the check: a skorch net exists only once skorch
    has been imported (creating or unpickling one imports it), and importing
    skorch (and torch) costs more than a second, in every joblib worker too.
    """
    skorch = sys.modules.get("skorch")
    if skorch is None:
        return False
    return isinstance(estimator, skorch.NeuralNet)


def _unwrap_frozen(estimator):
    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    return estimator


def _expand_columns(proba, base_to_index, n_classes):
    """Scores of the base model's classes placed in the columns of ``classes_``."""
    if proba.shape[1] == n_classes and np.array_equal(base_to_index, np.arange(n_classes)):
        return proba
    out = np.zeros((proba.shape[0], n_classes))
    out[:, base_to_index] = proba
    return out


def _linear_decision(estimator):
    """``(coef, intercept)`` when ``estimator.predict`` is scikit-learn's linear rule.

    That is, ``predict`` and ``decision_function`` are those of
    ``LinearClassifierMixin``: the prediction is ``argmax`` (or, with a single
    column, the sign) of ``X @ coef.T + intercept``. ``None`` otherwise.
    """
    try:
        from sklearn.linear_model._base import LinearClassifierMixin
    except ImportError:  # pragma: no cover - private module moved
        return None
    cls = type(estimator)
    if not (
        cls.predict is LinearClassifierMixin.predict
        and cls.decision_function is LinearClassifierMixin.decision_function
    ):
        return None
    coef = estimator.coef_
    if hasattr(coef, "toarray"):  # sparsified coefficients
        coef = coef.toarray()
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    intercept = np.broadcast_to(
        np.asarray(estimator.intercept_, dtype=np.float64), (coef.shape[0],)
    ).copy()
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        return None
    return coef, intercept


def _pipeline_linear_decision(estimator):
    """``(coef, intercept)`` of a Pipeline of affine transformers ending in a linear classifier.

    The composition of the affine steps (``StandardScaler``, ``MinMaxScaler``,
    ``MaxAbsScaler``, ``PCA``, ``"passthrough"``; see ``_certify._affine.affine_map``)
    and the classifier's linear rule, in raw input coordinates. ``None`` when
    any step is not exactly affine.
    """
    from sklearn.pipeline import Pipeline

    if type(estimator) is not Pipeline or len(estimator.steps) < 2:
        return None
    linear = _linear_decision(estimator.steps[-1][1])
    n_features = getattr(estimator, "n_features_in_", None)
    if linear is None or n_features is None:
        return None
    from .._certify._affine import affine_map

    try:
        A, a = affine_map(estimator[:-1], n_features)
    except (ValueError, AttributeError, TypeError):
        return None
    coef, intercept = linear
    if coef.shape[1] != A.shape[0]:
        return None
    return coef @ A, coef @ a + intercept


class _SklearnAdapter:
    """Fast prediction paths of a fitted scikit-learn classifier.

    Parameters
    ----------
    estimator : fitted classifier
    base_to_index : ndarray of int
        Position in the smoothing estimator's ``classes_`` of each entry of the
        base model's ``classes_``.
    n_classes : int
        Number of classes of the smoothing estimator.
    label_lookup : callable
        Maps an array of base predictions to class indices.
    """

    supports_gradient = False

    def __init__(self, estimator, base_to_index, n_classes, label_lookup):
        self.estimator = estimator
        self.base_to_index = base_to_index
        self.n_classes = n_classes
        self.label_lookup = label_lookup
        self.has_proba = hasattr(estimator, "predict_proba")
        self.float32 = False
        # A pre-fitted model trained on a DataFrame gets its noisy points with
        # the same column names (it may select columns by name).
        inner = _unwrap_frozen(estimator)
        self.feature_names = getattr(inner, "feature_names_in_", None)
        self.linear = _linear_decision(inner) or _pipeline_linear_decision(inner)

    def input_map(self, vote):
        """An exact low-dimensional route for the votes, or ``None``.

        For a linear classifier (alone, or after affine preprocessing in a
        Pipeline), the prediction at ``x`` depends on ``x`` only through the
        decision values ``u = coef @ x + intercept``. Returns
        ``(coef, intercept, labels_from_decision)`` for hard votes when ``coef``
        has fewer rows than columns; the engine then samples the noise of ``u``
        directly (see ``_sampling.count_votes``).
        """
        if vote != "hard" or self.linear is None:
            return None
        coef, intercept = self.linear
        if coef.shape[0] >= coef.shape[1]:
            return None
        return coef, intercept, self._labels_from_decision

    def _labels_from_decision(self, u):
        # LinearClassifierMixin.predict: sign for one column, argmax otherwise
        idx = (u[:, 0] > 0).astype(np.intp) if u.shape[1] == 1 else u.argmax(axis=1)
        return self.base_to_index[idx]

    def _frame(self, points):
        if self.feature_names is None:
            return points
        import pandas as pd

        return pd.DataFrame(points, columns=self.feature_names, copy=False)

    def labels(self, points):
        """Class index predicted for each point, ``(n,)`` int."""
        return self.label_lookup(self.estimator.predict(self._frame(points)))

    def scores(self, points):
        """Class scores in [0, 1] summing to 1, ``(n, n_classes)``."""
        if not self.has_proba:
            idx = self.labels(points)
            out = np.zeros((len(points), self.n_classes))
            out[np.arange(len(points)), idx] = 1.0
            return out
        proba = np.asarray(self.estimator.predict_proba(self._frame(points)), dtype=np.float64)
        return _expand_columns(proba, self.base_to_index, self.n_classes)


#: Rows per forward pass of a torch module on the CPU: activations of a few
#: thousand rows stay in cache (measured 1.3-3x faster than one large call).
TORCH_CPU_CHUNK = 1024


def _logits_decide(nonlinearity):
    """Whether ``argmax`` of the module's output equals ``argmax`` after ``nonlinearity``.

    True for the identity and for a softmax over the last axis (monotone), so
    hard votes can skip the nonlinearity.
    """
    import torch

    try:
        from skorch.utils import _identity
    except ImportError:  # pragma: no cover - skorch internals moved
        _identity = None
    if _identity is not None and nonlinearity is _identity:
        return True
    return (
        isinstance(nonlinearity, functools.partial)
        and nonlinearity.func is torch.softmax
        and not nonlinearity.args
        and nonlinearity.keywords in ({"dim": -1}, {"dim": 1})
    )


def _leading_linear(module):
    """``(first, rest)`` of an ``nn.Sequential`` opening with a narrowing ``nn.Linear``."""
    from torch import nn

    if type(module) is not nn.Sequential or len(module) < 2:
        return None
    first = module[0]
    if type(first) is not nn.Linear or first.out_features >= first.in_features:
        return None
    return first, module[1:]


class _TorchAdapter:
    """Direct calls to the torch module of a fitted skorch net.

    Hard votes reproduce the net's own ``predict``: ``argmax`` of the
    probabilities (of the raw outputs when the prediction nonlinearity is a
    softmax or the identity, which has the same ``argmax``), or
    ``proba[:, 1] > threshold`` for a ``NeuralNetBinaryClassifier``. On the CPU
    the points go through the module in chunks of :data:`TORCH_CPU_CHUNK`
    rows; on an accelerator in one call.
    """

    supports_gradient = True

    def __init__(self, net, base_to_index, n_classes):
        import torch

        self.torch = torch
        self.net = net
        self.module = net.module_
        self.device = torch.device(net.device if net.device is not None else "cpu")
        self.nonlinearity = net._get_predict_nonlinearity()
        self.threshold = getattr(net, "threshold", None)
        self.logits_decide = self.threshold is None and _logits_decide(self.nonlinearity)
        self.chunk = TORCH_CPU_CHUNK if self.device.type == "cpu" else None
        self.leading_linear = _leading_linear(self.module)
        self.base_to_index = np.asarray(base_to_index, dtype=np.intp)
        self.n_classes = n_classes
        self.float32 = True

    def _to_tensor(self, points):
        return self.torch.as_tensor(
            np.ascontiguousarray(points, dtype=np.float32), device=self.device
        )

    def _output(self, tensor, module=None):
        out = (self.module if module is None else module)(tensor)
        if isinstance(out, tuple):
            out = out[0]
        return out

    def _proba(self, tensor, module=None):
        return self.nonlinearity(self._output(tensor, module))

    def _expand(self, proba):
        return _expand_columns(proba, self.base_to_index, self.n_classes)

    def _evaluate(self, points, func):
        """``func`` applied (under inference mode, module in eval mode) chunk by chunk."""
        tensor = self._to_tensor(points)
        step = self.chunk or max(len(tensor), 1)
        was_training = self.module.training
        self.module.eval()
        try:
            with self.torch.inference_mode():
                # an empty input still makes one call, for the output's shape
                starts = range(0, max(len(tensor), 1), step)
                parts = [func(tensor[s : s + step]) for s in starts]
        finally:
            self.module.train(was_training)
        return parts[0] if len(parts) == 1 else self.torch.cat(parts)

    def _base_labels(self, chunk, module=None):
        if self.threshold is not None:
            return self._proba(chunk, module)[:, 1] > self.threshold
        if self.logits_decide:
            return self._output(chunk, module).argmax(dim=1)
        return self._proba(chunk, module).argmax(dim=1)

    def labels(self, points, module=None):
        """Class index predicted for each point, ``(n,)`` int.

        ``module`` (default: the whole net) is what the points go through.
        """
        func = functools.partial(self._base_labels, module=module)
        idx = self._evaluate(points, func).to("cpu").numpy().astype(np.intp)
        return self.base_to_index[idx]

    def scores(self, points, module=None):
        """The net's probabilities, ``(n, n_classes)`` float64."""
        proba = self._evaluate(points, functools.partial(self._proba, module=module))
        return self._expand(proba.to("cpu").double().numpy())

    def input_map(self, vote):
        """An exact low-dimensional route for the votes, or ``None``.

        When the module is an ``nn.Sequential`` whose first layer is an
        ``nn.Linear(d, h)`` with ``h < d``, the output depends on the input only
        through that layer's pre-activations ``u = W x + b``. Returns ``(W, b,
        func)`` with ``func`` the rest of the net on ``u`` (labels for hard
        votes, probabilities for soft ones), for the engine to sample the
        noise of ``u`` directly (see ``_sampling.count_votes``).
        """
        if self.leading_linear is None:
            return None
        first, rest = self.leading_linear
        weight = first.weight.detach().to("cpu").double().numpy()
        bias = (
            first.bias.detach().to("cpu").double().numpy()
            if first.bias is not None
            else np.zeros(weight.shape[0])
        )
        func = self.labels if vote == "hard" else self.scores
        return weight, bias, functools.partial(func, module=rest)

    def scores_and_gradient(self, points, weights):
        """Scores and the input gradient of ``sum_c weights[:, c] * F_c``.

        Parameters
        ----------
        points : ndarray of shape (n, d)
        weights : ndarray of shape (n, n_classes)

        Returns
        -------
        scores : ndarray of shape (n, n_classes)
        gradient : ndarray of shape (n, d), float64
        """
        torch = self.torch
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.enable_grad():
                tensor = self._to_tensor(points).requires_grad_(True)
                proba = self._proba(tensor)
                w = np.zeros((len(points), proba.shape[1]))
                w[:] = weights[:, self.base_to_index]
                w_t = torch.as_tensor(w, dtype=proba.dtype, device=proba.device)
                (grad,) = torch.autograd.grad((proba * w_t).sum(), tensor)
        finally:
            self.module.train(was_training)
        scores = self._expand(proba.detach().to("cpu").double().numpy())
        return scores, grad.detach().to("cpu").double().numpy()


def make_adapter(estimator, classes, fitted_on_indices):
    """Build the adapter of a fitted base model.

    Parameters
    ----------
    estimator : fitted classifier or skorch net
    classes : ndarray
        The smoothing estimator's ``classes_``.
    fitted_on_indices : bool
        True when the base model was trained on class indices ``0..C-1``
        (labels encoded by the smoothing estimator), False when it predicts the
        original labels (a pre-fitted, frozen model).
    """
    inner = _unwrap_frozen(estimator)
    n_classes = len(classes)
    base_classes = getattr(inner, "classes_", None)
    if base_classes is None:
        base_classes = np.arange(n_classes) if fitted_on_indices else classes
    base_classes = np.asarray(base_classes)
    if fitted_on_indices:
        base_to_index = base_classes.astype(np.intp)
    else:
        base_to_index = np.searchsorted(classes, base_classes)
        base_to_index = np.clip(base_to_index, 0, n_classes - 1)
        if not np.array_equal(classes[base_to_index], base_classes):
            raise ValueError(
                "The pre-fitted estimator predicts classes "
                f"{base_classes.tolist()} that are not among classes_ {classes.tolist()}."
            )
    if is_torch_net(inner):
        return _TorchAdapter(inner, base_to_index, n_classes)

    if fitted_on_indices:
        # trained on class indices 0..C-1: predictions are already indices

        def lookup(pred):
            return np.asarray(pred).astype(np.intp, copy=False)

    else:

        def lookup(pred):
            return np.clip(np.searchsorted(classes, np.asarray(pred)), 0, n_classes - 1)

    return _SklearnAdapter(estimator, base_to_index, n_classes, lookup)
