"""The torch modules and skorch nets of the test suite.

This module imports torch and skorch: import it only inside tests and fixtures
marked ``torch`` (see ``conftest.py``), never at the top of a test module. The
modules are defined here, at module level, so that fitted nets pickle (and
serialize with skops) by reference.

Every module draws its initial weights in a fixed order, from its own seeded
generator or right after ``torch.manual_seed``, so that a net is the same in
every run.
"""

import skorch
import torch
from torch import nn

__all__ = [
    "CustomForward",
    "Logits",
    "Probit",
    "SoftmaxMLP",
    "TanhMLP",
    "adam_net",
    "classifier",
    "relu_sequential",
    "reversed_softmax",
    "softmax_net",
    "tanh_net",
]


# ------------------------------------------------------------------- modules
class TanhMLP(nn.Module):
    """A tanh MLP with ``depth`` hidden layers of width ``hidden``, returning logits.

    Initialised from its own generator seeded with ``seed``: every parameter, in
    order, gets ``N(0, 1)`` draws times ``weight_scale`` (matrices) or
    ``bias_scale`` (biases). With ``float32_only`` the forward pass asserts that
    it receives float32 input.
    """

    def __init__(self, n_in=2, hidden=16, n_out=2, depth=1, seed=0, weight_scale=0.5,
                 bias_scale=0.5, float32_only=False):
        super().__init__()
        layers, width = [], n_in
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        layers.append(nn.Linear(width, n_out))
        self.layers = nn.Sequential(*layers)
        self.float32_only = float32_only
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                scale = weight_scale if p.ndim > 1 else bias_scale
                p.copy_(torch.randn(p.shape, generator=gen) * scale)

    def forward(self, x):
        if self.float32_only:
            assert x.dtype == torch.float32, x.dtype
        return self.layers(x)


class SoftmaxMLP(nn.Module):
    """One ReLU hidden layer ending in a softmax; weights ``N(0, 1 / fan_in)`` from
    its own seeded generator, zero biases."""

    def __init__(self, n_in=2, n_hidden=16, n_out=3, seed=0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        hidden, out = nn.Linear(n_in, n_hidden), nn.Linear(n_hidden, n_out)
        for layer in (hidden, out):
            nn.init.normal_(layer.weight, std=layer.in_features**-0.5, generator=generator)
            nn.init.zeros_(layer.bias)
        self.layers = nn.Sequential(hidden, nn.ReLU(), out, nn.Softmax(dim=-1))

    def forward(self, X):
        return self.layers(X)


class Logits(nn.Module):
    """A linear layer with ``n_out`` raw outputs (logits), squeezed when ``n_out == 1``."""

    def __init__(self, n_in=2, n_out=3, seed=0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.lin = nn.Linear(n_in, n_out)
        nn.init.normal_(self.lin.weight, generator=generator)
        nn.init.normal_(self.lin.bias, generator=generator)

    def forward(self, X):
        out = self.lin(X)
        return out.squeeze(-1) if out.shape[-1] == 1 else out


class CustomForward(nn.Module):
    """A 10 -> 4 -> 3 ReLU net whose forward is not a plain ``nn.Sequential``."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(10, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, X):
        return self.out(torch.relu(self.lin(X)))


class Probit(nn.Module):
    """Two-class probabilities ``[1 - Phi(x / tau), Phi(x / tau)]`` of a scalar input."""

    def __init__(self, tau):
        super().__init__()
        self.tau = tau

    def forward(self, x):
        p = torch.special.ndtr(x / self.tau)
        return torch.cat([1 - p, p], dim=-1)


def reversed_softmax(logits):
    """A prediction nonlinearity whose argmax is NOT the argmax of the logits."""
    return torch.softmax(-logits, dim=-1)


def relu_sequential(sizes, seed=0, softmax=True):
    """``Linear(sizes[0], sizes[1]), ReLU, ..., Linear(sizes[-2], sizes[-1])``, then a
    softmax if asked, built right after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out))
    if softmax:
        layers.append(nn.Softmax(dim=-1))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------- nets
def classifier(module, **params):
    """A skorch classifier around ``module``: no validation split, silent, ``params`` on top."""
    return skorch.NeuralNetClassifier(module, **{"train_split": None, "verbose": 0, **params})


def tanh_net(lr=0.05, max_epochs=30, **params):
    """A :class:`TanhMLP` (set it with ``module__*``) trained with Adam on cross-entropy."""
    return classifier(TanhMLP, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=lr,
                      max_epochs=max_epochs, batch_size=512, **params)


def softmax_net(**params):
    """A :class:`SoftmaxMLP` (2 -> 16 -> 3) trained with Adam for 15 epochs."""
    return classifier(SoftmaxMLP, **{"max_epochs": 15, "lr": 0.1,
                                     "optimizer": torch.optim.Adam, "batch_size": 256, **params})


def adam_net(module, **params):
    """``module`` trained with Adam, 40 epochs of batches of 64 at lr 0.02 unless changed."""
    return classifier(module, **{"max_epochs": 40, "optimizer": torch.optim.Adam, "lr": 0.02,
                                 "batch_size": 64, **params})
