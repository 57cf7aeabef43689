"""
=====================================================
Certifying classical models side by side
=====================================================

Randomized smoothing needs nothing from the base model but its predictions, so
any scikit-learn classifier can be certified: here a random forest, a support
vector machine, k-nearest neighbours and histogram gradient boosting, each
smoothed with the same noise and certified on the same test inputs.

The second part optimizes the noise per input with
:class:`~smoothcert.CertifiedRegion` (``method="isotropic"``). Trees, kNN, SVMs
and boosting are piecewise constant, so their input gradients are zero almost
everywhere; the search uses score-function (natural evolution strategies)
gradients, which only need predictions.

The settings are small. For the full settings (``n_samples=100_000``
certification draws, 100 search iterations, 200 test inputs), run::

    SMOOTHCERT_EXAMPLES_FULL=1 python examples/plot_classical_models.py
"""

# %%
# Data and models
# ---------------
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import make_moons
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from smoothcert import (
    CertifiedRegion,
    SmoothedClassifier,
    certificate_summary,
    certified_accuracy,
)
from smoothcert.plotting import CertifiedAccuracyDisplay, CertifiedRegionsDisplay
from smoothcert.search import IsotropicSearch

FULL = os.environ.get("SMOOTHCERT_EXAMPLES_FULL", "0") == "1"
N_SAMPLES = 100_000 if FULL else 1_000
N_ITER = 100 if FULL else 10
N_TEST = 200 if FULL else 40
SIGMA = 0.25

X, y = make_moons(n_samples=500, noise=0.2, random_state=2)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=N_TEST, random_state=0
)

models = {
    "random forest": RandomForestClassifier(n_estimators=50, random_state=0),
    "SVC (RBF)": SVC(),
    "kNN (k=15)": KNeighborsClassifier(n_neighbors=15),
    "gradient boosting": HistGradientBoostingClassifier(max_iter=50, random_state=0),
}

# %%
# Smooth and certify each model
# -----------------------------
# Same ``sigma``, same number of draws, same ``random_state``: the only
# difference is the base model. Every base model is trained on a noisy copy of
# the data (``noise_augmentation=1``).
certificates, rows = {}, []
for name, model in models.items():
    clf = SmoothedClassifier(
        model,
        sigma=SIGMA,
        n_samples=N_SAMPLES,
        noise_augmentation=1,
        random_state=0,
    ).fit(X_train, y_train)
    start = time.perf_counter()
    cert = clf.certify(X_test)
    seconds = time.perf_counter() - start
    certificates[name] = (clf, cert)
    summary = certificate_summary(cert, y_test)
    rows.append(
        {
            "model": name,
            "accuracy": summary["accuracy"],
            "CA@0.25": certified_accuracy(y_test, cert, 0.25),
            "CA@0.5": certified_accuracy(y_test, cert, 0.5),
            "abstained": summary["abstention_rate"],
            "median radius": summary["median_radius"],
            "predictions / s": len(X_test) * (N_SAMPLES + 100) / seconds,
        }
    )
table = pd.DataFrame(rows).set_index("model")
table.round(3)

# %%
# The last column is the throughput of the base model inside the smoothing
# loop: it decides the cost of certification (``n_samples + 100`` predictions
# per input).
#
# Decision regions of each base model, with the certified balls of the
# smoothed classifier:
fig, axes = plt.subplots(2, 2, figsize=(10, 7), layout="constrained")
for k, (ax, (name, (clf, cert))) in enumerate(zip(axes.ravel(), certificates.items())):
    CertifiedRegionsDisplay.from_certificate(
        cert, y_test, estimator=clf, ax=ax, grid_resolution=100, name=name, legend=k == 0
    )

# %%
# The certified accuracy curves, one display per model on a shared axis and a
# shared grid of radii:
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
radii = np.linspace(0.0, max(c.radius.max() for _, c in certificates.values()), 100)
for name, (_, cert) in certificates.items():
    CertifiedAccuracyDisplay.from_certificate(cert, y_test, radii=radii, name=name, ax=ax)
ax.set_title(f"fixed noise, sigma = {SIGMA}")

# %%
# Per-input noise for black-box models
# ------------------------------------
# :class:`~smoothcert.CertifiedRegion` with ``method="isotropic"`` optimizes one
# noise level per input, starting from ``sigma``: larger far from the
# boundary, smaller close to it. The search is an object of
# :mod:`smoothcert.search` with its own parameters:
# ``IsotropicSearch(objective="ball")`` maximizes the inscribed radius, the
# quantity certified accuracy rewards, and its ``gradient="auto"`` picks the
# score-function estimator for these models (they have no input gradients).
rows = []
region_certs = {}
for name, model in models.items():
    region = CertifiedRegion(
        model,
        search=IsotropicSearch(objective="ball"),
        sigma=SIGMA,
        n_iter=N_ITER,
        n_samples=N_SAMPLES,
        noise_augmentation=1,
        random_state=0,
    ).fit(X_train, y_train)
    cert = region.certify(X_test)
    region_certs[name] = cert
    rows.append(
        {
            "model": name,
            "CA@0.25 fixed": certified_accuracy(y_test, certificates[name][1], 0.25),
            "CA@0.25 isotropic": certified_accuracy(y_test, cert, 0.25),
            "CA@0.5 fixed": certified_accuracy(y_test, certificates[name][1], 0.5),
            "CA@0.5 isotropic": certified_accuracy(y_test, cert, 0.5),
            "guarantee": cert.guarantee,
        }
    )
pd.DataFrame(rows).set_index("model").round(3)

# %%
# The certificates carry ``guarantee="deployed"`` (the default): they hold for
# the estimator's own ``predict``, which smooths each input with one noise
# level of a small family fitted in ``fit`` and chosen by a smoothed selector.
# ``guarantee="per-covariance"`` certifies each input's own searched noise
# level instead, a certificate of the classifier smoothed with that level
# only. See the user guide's page on guarantees, and the memory-based remedy
# in :ref:`sphx_glr_auto_examples_plot_memory.py`.
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
radii = np.linspace(0.0, max(c.radius.max() for c in region_certs.values()), 100)
for name, cert in region_certs.items():
    CertifiedAccuracyDisplay.from_certificate(cert, y_test, radii=radii, name=name, ax=ax)
ax.set_title("per-input isotropic noise")
plt.show()
