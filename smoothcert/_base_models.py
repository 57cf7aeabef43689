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

import numpy as np

__all__ = ["make_adapter", "is_torch_net"]


def is_torch_net(estimator):
    """Whether ``estimator`` is a skorch net (fitted or not)."""
    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is optional
        return False
    return isinstance(estimator, NeuralNet)


def _unwrap_frozen(estimator):
    try:
        from sklearn.frozen import FrozenEstimator
    except ImportError:  # pragma: no cover - scikit-learn < 1.6
        return estimator
    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    return estimator


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
        self.feature_names = getattr(_unwrap_frozen(estimator), "feature_names_in_", None)

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
        if proba.shape[1] == self.n_classes and np.array_equal(
            self.base_to_index, np.arange(self.n_classes)
        ):
            return proba
        out = np.zeros((len(points), self.n_classes))
        out[:, self.base_to_index] = proba
        return out


class _TorchAdapter:
    """Direct calls to the torch module of a fitted skorch net."""

    supports_gradient = True

    def __init__(self, net, base_to_index, n_classes):
        import torch

        self.torch = torch
        self.net = net
        self.module = net.module_
        self.device = torch.device(net.device if net.device is not None else "cpu")
        self.nonlinearity = net._get_predict_nonlinearity()
        self.base_to_index = base_to_index
        self.n_classes = n_classes
        self.float32 = True

    def _to_tensor(self, points):
        return self.torch.as_tensor(
            np.ascontiguousarray(points, dtype=np.float32), device=self.device
        )

    def _proba(self, tensor):
        out = self.module(tensor)
        if isinstance(out, tuple):
            out = out[0]
        return self.nonlinearity(out)

    def _expand(self, proba):
        if proba.shape[1] == self.n_classes and np.array_equal(
            self.base_to_index, np.arange(self.n_classes)
        ):
            return proba
        out = np.zeros((proba.shape[0], self.n_classes))
        out[:, self.base_to_index] = proba
        return out

    def labels(self, points):
        return self.scores(points).argmax(axis=1)

    def scores(self, points):
        was_training = self.module.training
        self.module.eval()
        try:
            with self.torch.inference_mode():
                proba = self._proba(self._to_tensor(points))
                proba = proba.detach().to("cpu").double().numpy()
        finally:
            self.module.train(was_training)
        return self._expand(proba)

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
