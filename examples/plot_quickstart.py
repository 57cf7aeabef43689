"""
===========================================
Quick start: certify a random forest
===========================================

Randomized smoothing turns any classifier into one whose prediction provably
cannot change inside a ball around each input. This example wraps a random
forest in :class:`~smoothcert.SmoothedClassifier`, certifies a test set, and
reads the result: certified radii, abstentions, and the certified accuracy at
each radius.

The settings are small so that the example runs in a few seconds. To run it
with the settings of Cohen et al. (``n_samples=100_000`` certification draws),
set the environment variable ``SMOOTHCERT_EXAMPLES_FULL=1``::

    SMOOTHCERT_EXAMPLES_FULL=1 python examples/plot_quickstart.py
"""

# %%
# Data and base model
# -------------------
# Two interleaving half-moons, and a random forest. Any scikit-learn classifier
# would do: smoothing only needs its ``predict`` (and ``predict_proba`` for
# soft votes).
import os

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm
from sklearn.datasets import make_moons
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from smoothcert import (
    SmoothedClassifier,
    certificate_summary,
    certified_accuracy,
)
from smoothcert.plotting import CertifiedAccuracyDisplay, CertifiedRegionsDisplay

FULL = os.environ.get("SMOOTHCERT_EXAMPLES_FULL", "0") == "1"
N_SAMPLES = 100_000 if FULL else 2_000  # certification draws per input
N_TEST = 200 if FULL else 60

X, y = make_moons(n_samples=600, noise=0.2, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=N_TEST, random_state=0
)

# %%
# The smoothed classifier
# -----------------------
# ``sigma`` is the standard deviation of the Gaussian noise. The base model is
# trained on two noisy copies of the training set (``noise_augmentation=2``),
# Cohen et al.'s recipe for a base model that stays accurate under noise.
clf = SmoothedClassifier(
    RandomForestClassifier(n_estimators=50, random_state=0),
    sigma=0.25,
    n_samples=N_SAMPLES,
    noise_augmentation=2,
    random_state=0,
)
clf.fit(X_train, y_train)
print(f"accuracy of the smoothed classifier: {clf.score(X_test, y_test):.3f}")

# %%
# Certify
# -------
# :meth:`~smoothcert.SmoothedClassifier.certify` returns a
# :class:`~smoothcert.Certificate`: for each input the predicted class, whether
# the certificate abstains, and the certified l2 radius. With probability at
# least ``1 - alpha`` (here 0.999) no perturbation smaller than ``radius`` can
# change the prediction of the smoothed classifier.
cert = clf.certify(X_test)
print(cert)

# %%
# :meth:`~smoothcert.Certificate.to_frame` gives one row per input (it needs
# pandas).
cert.to_frame().head()

# %%
# The radius cannot exceed ``sigma * Phi^-1(alpha ** (1 / n_samples))``, the
# value reached when every one of the ``n_samples`` draws votes for the top
# class (the Clopper-Pearson bound is then ``alpha ** (1 / n_samples)``).
ceiling = clf.sigma * norm.ppf(clf.alpha ** (1.0 / clf.n_samples))
print(f"largest certified radius:   {cert.radius.max():.3f}")
print(f"ceiling for this n_samples: {ceiling:.3f}")

# %%
# Summaries and certified accuracy
# --------------------------------
# The certified accuracy at radius ``R`` counts the inputs that are certified,
# correctly classified, and whose ball of radius ``R`` is inside the certified
# region.
summary = certificate_summary(cert, y_test)
print(f"abstention rate: {summary['abstention_rate']:.2f}")
print(f"median radius:   {summary['median_radius']:.3f}")
for radius in (0.0, 0.25, 0.5):
    acc = certified_accuracy(y_test, cert, radius)
    print(f"certified accuracy at R = {radius:.2f}: {acc:.3f}")

# %%
# Pictures
# --------
# The displays of :mod:`smoothcert.plotting` follow scikit-learn's
# ``RocCurveDisplay``: ``from_estimator`` certifies, ``from_certificate`` reuses
# a certificate, and the matplotlib artists stay on the display (``ellipses_``,
# ``balls_``, ``line_``, ``ax_``...). Left: the base forest's decision regions
# (``predict_base``) and each test input's certified ball (abstentions are
# crosses). Right: the certified accuracy as a function of the radius.
fig, (ax_regions, ax_curve) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
regions = CertifiedRegionsDisplay.from_certificate(
    cert, y_test, estimator=clf, ax=ax_regions, name="certified l2 balls"
)
curve = CertifiedAccuracyDisplay.from_certificate(
    cert, y_test, name="sigma = 0.25", ax=ax_curve
)
ax_curve.set_title("certified accuracy")
plt.show()

# %%
# The numbers behind the picture are on the displays: the curve is
# :func:`~smoothcert.certified_accuracy_curve`, and the circles are the
# certified radii.
print(f"certified accuracy at R = 0: {curve.accuracies[0]:.3f}")
print(f"circles drawn: {len(regions.ellipses_.get_widths())}")

# %%
# PREDICT with abstention
# -----------------------
# :meth:`~smoothcert.SmoothedClassifier.predict_abstain` returns the top class
# only where a binomial test says it is significantly ahead of the runner-up;
# near the decision boundary it abstains.
y_pred, abstained = clf.predict_abstain(X_test)
print(f"abstained on {abstained.sum()} of {len(X_test)} test inputs")
print(
    f"accuracy where it answers: {np.mean(y_pred[~abstained] == y_test[~abstained]):.3f}"
)

# %%
# Next steps: choose ``sigma`` by cross-validation
# (:ref:`sphx_glr_auto_examples_plot_grid_search_sigma.py`), or optimize the
# noise per input with :class:`~smoothcert.CertifiedRegion`
# (:ref:`sphx_glr_auto_examples_plot_compare_methods.py`).
