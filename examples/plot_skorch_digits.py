"""
=====================================================
A skorch network on handwritten digits
=====================================================

smoothcert certifies torch networks wrapped in skorch's
:class:`~skorch.NeuralNetClassifier` like any other classifier. Behind the
scenes it calls the torch module directly, in float32 and inference mode, on
the net's device, which is much faster than going through ``predict_proba``;
and because the network is differentiable, the covariance search of
:class:`~smoothcert.CertifiedRegion` uses pathwise (autograd) gradients.

The data are the 8 x 8 digits of :func:`~sklearn.datasets.load_digits`, scaled
to [0, 1], so the certified radii are l2 norms of pixel-intensity changes over
64 pixels. The settings are small (a short training, 40 test digits, few
draws). For the full settings (``n_samples=100_000``, 100 search iterations,
200 test digits), run::

    SMOOTHCERT_EXAMPLES_FULL=1 python examples/plot_skorch_digits.py

and, with a GPU, pass ``device="cuda"`` to the net and a larger ``batch_size``
to the smoothing estimators.
"""

# %%
# Data and network
# ----------------
import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from torch import nn

from smoothcert import (
    CertifiedRegion,
    SmoothedClassifier,
    certificate_summary,
    certified_accuracy,
)
from smoothcert.plotting import CertifiedAccuracyDisplay
from smoothcert.search import DiagonalSearch

FULL = os.environ.get("SMOOTHCERT_EXAMPLES_FULL", "0") == "1"
N_SAMPLES = 100_000 if FULL else 1_000
N_ITER = 100 if FULL else 8
N_TEST = 200 if FULL else 40
SIGMA = 0.25

digits = load_digits()
X = digits.data / 16.0  # pixel intensities in [0, 1]
y = digits.target
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=N_TEST, stratify=y, random_state=0
)


class MLP(nn.Module):
    """64 -> 128 -> 10, ending in a softmax (skorch's default loss is NLL)."""

    def __init__(self, n_hidden=128):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(64, n_hidden),
            nn.ReLU(),
            nn.Linear(n_hidden, 10),
            nn.Softmax(dim=-1),
        )

    def forward(self, X):
        return self.layers(X)


torch.manual_seed(0)  # skorch initializes the module with torch's global generator
net = NeuralNetClassifier(
    MLP,
    max_epochs=30 if FULL else 15,
    lr=1e-3,
    optimizer=torch.optim.Adam,
    batch_size=128,
    train_split=None,
    verbose=0,
)

# %%
# Smooth and certify
# ------------------
# ``noise_augmentation=2`` trains the network on two noisy copies of the
# training set, so that it stays accurate under the noise. smoothcert casts
# the inputs to float32 for the network; the statistics stay in float64.
clf = SmoothedClassifier(
    net, sigma=SIGMA, n_samples=N_SAMPLES, noise_augmentation=2, random_state=0
)
clf.fit(X_train, y_train)
cert = clf.certify(X_test)
print(cert)
for radius in (0.0, 0.25, 0.5):
    print(
        f"certified accuracy at R = {radius}: {certified_accuracy(y_test, cert, radius):.3f}"
    )

# %%
# Per-pixel noise with pathwise gradients
# ---------------------------------------
# ``DiagonalSearch`` (what ``method="diagonal"`` builds) optimizes one noise
# scale per pixel and per digit (ANCER's parametrization), after a per-digit
# isotropic stage. Its ``gradient="auto"`` uses autograd through the network,
# and ``objective="volume"`` (its default) grows the certified volume.
#
# The network trained above is reused as is: wrapped in
# :class:`~sklearn.frozen.FrozenEstimator`, a fitted model is not trained
# again by ``fit``.
region = CertifiedRegion(
    FrozenEstimator(clf.estimator_),
    search=DiagonalSearch(objective="volume"),
    sigma=SIGMA,
    n_iter=N_ITER,
    n_samples_optim=64,
    n_samples=N_SAMPLES,
    random_state=0,
).fit(X_train, y_train)
cert_diag = region.certify(X_test)
for name, c in [("fixed", cert), ("diagonal", cert_diag)]:
    s = certificate_summary(c, y_test)
    print(
        f"{name:9s} accuracy {s['accuracy']:.3f}  median radius {s['median_radius']:.3f}  "
        f"median log-volume {s['median_log_volume']:.1f}"
    )

# %%
# Two summaries, two questions: the log-volume of a 64-dimensional ellipsoid is
# dominated by its many long axes (what ``objective="volume"`` grows), while
# the inscribed radius, which certified accuracy checks, is set by its single
# shortest axis. ``objective="ball"`` targets the latter.
#
# With these small settings the diagonal search ends below fixed noise on
# both: the pathwise search climbs the gap of the *soft* scores, which is not
# the hard-vote probability that CERTIFY bounds (the example
# :ref:`sphx_glr_auto_examples_plot_digits_dimension.py` looks at this more
# closely). The certificates are valid all the same, since the search draws
# are independent of the certification draws; compare with fixed noise
# before paying for a search.
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
radii = np.linspace(0.0, max(cert.radius.max(), cert_diag.radius.max()), 100)
for name, c in [("fixed noise", cert), ("diagonal noise", cert_diag)]:
    CertifiedAccuracyDisplay.from_certificate(c, y_test, radii=radii, name=name, ax=ax)
ax.set_title("digits, skorch MLP")

# %%
# Where the noise went
# --------------------
# Each certified digit gets its own per-pixel noise scale (the square root of
# the diagonal of its covariance). Below, the five certified digits whose
# scales vary the most, with their scales as 8 x 8 images (each with its own
# colour range): where the search moved away from isotropic noise, the
# images show which pixels it gave more noise and which less.
scales = np.sqrt(np.diagonal(cert_diag.covariance, axis1=1, axis2=2))
spread = np.where(cert_diag.certified, scales.max(axis=1) / scales.min(axis=1), 0.0)
shown = np.argsort(-spread, kind="stable")[:5]
fig, axes = plt.subplots(2, len(shown), figsize=(2 * len(shown), 4.2))
for col, i in enumerate(shown):
    axes[0, col].imshow(X_test[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    axes[0, col].set_title(f"predicted {cert_diag.prediction[i]}")
    im = axes[1, col].imshow(scales[i].reshape(8, 8), cmap="viridis")
    axes[1, col].set_title(
        f"sigma {scales[i].min():.2f}-{scales[i].max():.2f}", fontsize=9
    )
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()
