"""
=====================================================
Fixed, isotropic, diagonal and Riemannian noise
=====================================================

Randomized smoothing certifies a ball whose radius is capped by the noise
level. Letting the noise depend on the input enlarges the certified regions:

* **RS** (Cohen et al., 2019): fixed noise ``N(0, sigma^2 I)``, certified ball;
* **DDRS** (Alfarra et al.): one noise level ``sigma_x`` per input, optimized;
* **ANCER** (Eiras et al.): a diagonal covariance per input, certified
  axis-aligned ellipsoid;
* **Riemannian** (Labarbarie, Hajri, Arnaudon): a full SPD covariance per
  input, optimized by natural-gradient steps on the manifold of covariances
  with the Fisher-Rao metric; the ellipsoid can turn to follow the boundary.

This example reproduces the comparison of the talk on a two-moons problem: for
a range of radii ``R``, the percentage of inputs ``x`` whose ball ``B2(x, R)``
lies inside the certified region, and the log-volume of the regions. The same
comparison is run by the command ``smoothcert demo``.

The settings are small (10,000 certification draws, 30 search iterations per
stage, 80 inputs). The talk used ``alpha = 0.001``, ``N = 100,000`` draws and
100 iterations; for these full settings (several minutes), run::

    SMOOTHCERT_EXAMPLES_FULL=1 python examples/plot_compare_methods.py

or ``smoothcert demo --full``.
"""

# %%
# Data and base model
# -------------------
# Two moons, and a small multi-layer perceptron as the base classifier. The
# covariance searches use only its predictions (score-function gradients), as
# they would for any black-box model. The base model is the same for every
# method: it is wrapped in a :class:`~sklearn.frozen.FrozenEstimator`.
import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Ellipse

from smoothcert.demo import (
    compare_methods,
    make_base_model,
    make_demo_data,
    plot_comparison,
)

FULL = os.environ.get("SMOOTHCERT_EXAMPLES_FULL", "0") == "1"

X_train, y_train, X_test, y_test = make_demo_data(seed=0)
base = make_base_model(seed=0).fit(X_train, y_train)
print(f"base model test accuracy: {base.score(X_test, y_test):.3f}")

# %%
# Certify the same inputs four ways
# ---------------------------------
# Every method starts from ``sigma = 0.25``; the searches keep each noise scale
# at least ``sigma / 4`` and the scales' geometric mean at most ``10 sigma``, and
# certify on fresh draws, independent of the search, at failure probability
# ``alpha = 0.001``. Columns ``R=...`` give the
# percentage of inputs whose ball of that radius is certified.
table, certificates = compare_methods(base, X_test, y_test, full=FULL, random_state=0)
y_cert = y_test[: len(next(iter(certificates.values())))]
table.round(2)

# %%
# Fixed noise cannot certify a radius beyond ``sigma * Phi^-1(alpha^(1/N))``
# (about ``0.25 * 3.2 = 0.8`` with 10,000 draws, ``0.95`` with 100,000): its column at ``R = 1`` is empty.
# Data-dependent noise grows where the classifier is confident and shrinks near
# the boundary. The anisotropic methods certify larger *volumes* (last
# columns); their inscribed balls, which is what ``R`` measures, grow less.
#
# .. note::
#    A data-dependent certificate covers the classifier smoothed with *that
#    input's* covariance (``guarantee="per-covariance"``), not the map
#    ``x -> g_{Sigma_x}(x)`` (Sukenik et al., 2022). This figure compares the
#    searches, so it certifies that way; ``CertifiedRegion``'s default,
#    ``guarantee="deployed"``, certifies the classifier its ``predict`` uses.

# %%
# Certified regions and certified accuracy
# ----------------------------------------
# Decision regions of the base model, the certified ellipses of 20 inputs per
# method (dashed: their largest inscribed balls), and the certified accuracy
# against the radius. Each panel is a
# :class:`~smoothcert.plotting.CertifiedRegionsDisplay` and each curve a
# :class:`~smoothcert.plotting.CertifiedAccuracyDisplay`; the same figure is
# written by ``smoothcert demo``.
#
# Ellipses of opposite classes may overlap in the data-dependent panels: each
# certificate covers the classifier smoothed with *that* input's covariance,
# and two inputs use two different smoothed classifiers. Memory-based
# certification (:class:`~smoothcert.CertificateMemory`) makes the regions of
# different classes disjoint.
fig = plot_comparison(certificates, y_cert, estimator=base)

# %%
# One input, four regions
# -----------------------
# The input where the full covariance gains most log-volume over the diagonal
# one: a diagonal covariance can only stretch along the axes, a full one also
# turns to follow the decision boundary.
riemannian = certificates["Riemannian (SPD)"]
diagonal = certificates["ANCER (diagonal)"]
gain = np.where(
    riemannian.certified & diagonal.certified,
    riemannian.log_volume - diagonal.log_volume,
    -np.inf,
)
i = int(np.argmax(gain))

fig, ax = plt.subplots(figsize=(6, 6))
styles = ["--", "-", "-", "-"]
half = 0.0
for k, (colour, style, (label, cert)) in enumerate(
    zip(["k", "C2", "C4", "C3"], styles, certificates.items())
):
    if cert.abstained[i]:
        continue
    cov = cert.covariance[i]
    evals, evecs = np.linalg.eigh(cov)
    r = cert.mahalanobis_radius[i]
    angle = np.degrees(np.arctan2(evecs[1, 1], evecs[0, 1]))
    ax.add_patch(
        Ellipse(
            cert.center[i], 2 * r * np.sqrt(evals[1]), 2 * r * np.sqrt(evals[0]),
            angle=angle, fill=False, lw=2, ls=style, color=colour, label=label,
            zorder=5 - k,
        )
    )
    half = max(half, 1.15 * r * np.sqrt(cov.diagonal().max()))
ax.scatter(*X_test[i], c="k", zorder=6)
(x0, y0), (x1, y1) = X_test[i] - half, X_test[i] + half
xx, yy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
zz = base.predict(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
ax.contourf(
    xx, yy, zz, levels=[-0.5, 0.5, 1.5], cmap=ListedColormap(["C0", "C1"]), alpha=0.2,
    zorder=0,
)
ax.set_xlim(x0, x1)
ax.set_ylim(y0, y1)
ax.set_aspect("equal")
ax.set_xlabel("x1")
ax.set_ylabel("x2")
ax.legend(loc="upper left")
ax.set_title(f"certified regions of input {i} (background: base model)")
plt.show()

# %%
# The regions certify the *smoothed* classifier, whose prediction is constant
# on each of them; the base model's own boundary (background) may cross them.
