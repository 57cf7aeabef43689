"""
==================================================
Choosing sigma with GridSearchCV
==================================================

The noise level ``sigma`` of randomized smoothing is a trade-off: small noise
keeps the smoothed classifier accurate but caps every certified radius at
``sigma * Phi^-1(alpha ** (1 / n_samples))``; large noise allows large radii
but blurs the decision boundary. Which ``sigma`` is best depends on the radius
you want to certify, so choose it by cross-validating the *certified accuracy*
at that radius, with :func:`~smoothcert.make_certified_scorer`.

The settings are small (few Monte-Carlo draws, 3 folds) so that the example
runs in well under a minute on 2 cores. For the full settings (a finer grid,
5 folds, ``n_samples=10_000`` during the search and ``100_000`` for the final
certificate), run::

    SMOOTHCERT_EXAMPLES_FULL=1 python examples/plot_grid_search_sigma.py
"""

# %%
# Data
# ----
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.datasets import make_moons
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KNeighborsClassifier

from smoothcert import SmoothedClassifier, certified_accuracy, make_certified_scorer
from smoothcert.plotting import CertifiedAccuracyDisplay

FULL = os.environ.get("SMOOTHCERT_EXAMPLES_FULL", "0") == "1"
N_SEARCH = 10_000 if FULL else 500  # draws per input during the search
N_FINAL = 100_000 if FULL else 1_000  # draws per input of the final certificate
SIGMAS = [0.06, 0.12, 0.25, 0.5, 0.75, 1.0] if FULL else [0.12, 0.25, 0.5, 1.0]
CV = 5 if FULL else 3

X, y = make_moons(n_samples=500, noise=0.2, random_state=1)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=100, random_state=0)

# %%
# One scorer per radius of interest
# ---------------------------------
# :func:`~smoothcert.make_certified_scorer` returns a plain callable
# ``scorer(estimator, X, y)`` that certifies ``X`` and returns the certified
# accuracy at the given radius. Several scorers in a dict show the trade-off
# at several radii in one search; ``refit`` names the one that picks the final
# model.
#
# Mind the radius ceiling: with ``n_samples`` draws no radius can exceed
# ``sigma * Phi^-1(alpha ** (1 / n_samples))``. A ``sigma`` whose ceiling
# during the (cheap) search is below a scoring radius scores 0 there, even if
# it would certify that radius with the full number of draws.
scoring = {
    "R=0.1": make_certified_scorer(0.1),
    "R=0.25": make_certified_scorer(0.25),
    "R=0.5": make_certified_scorer(0.5),
}
smoothed = SmoothedClassifier(
    KNeighborsClassifier(n_neighbors=15),
    n_samples=N_SEARCH,
    noise_augmentation=1,  # the base model is trained with the same noise
    random_state=0,
)
search = GridSearchCV(
    smoothed,
    {"sigma": SIGMAS},
    scoring=scoring,
    refit="R=0.25",
    cv=CV,
)
search.fit(X_train, y_train)
print("best sigma for R = 0.25:", search.best_params_["sigma"])

# %%
# The cross-validated certified accuracy of each ``sigma`` at each radius: a
# small radius prefers small noise, a large radius needs large noise.
results = pd.DataFrame(
    {name: search.cv_results_[f"mean_test_{name}"] for name in scoring},
    index=pd.Index(SIGMAS, name="sigma"),
)
results["ceiling during the search"] = [
    sigma * norm.ppf(smoothed.alpha ** (1.0 / N_SEARCH)) for sigma in SIGMAS
]
results.round(3)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for name in scoring:
    ax.plot(SIGMAS, results[name], marker="o", label=f"certified accuracy at {name}")
ax.set_xscale("log")
ax.minorticks_off()
ax.set_xticks(SIGMAS, [str(s) for s in SIGMAS])
ax.set_xlabel("sigma")
ax.set_ylabel(f"{CV}-fold CV score")
ax.legend()
fig.tight_layout()

# %%
# Certify the test set with every sigma
# -------------------------------------
# Every candidate is refitted on the whole training set and certified with
# more draws. Each curve is the certified accuracy as a function of
# the radius: the small-noise curves start higher and fall to zero early.
certificates = {}
for sigma in SIGMAS:
    model = SmoothedClassifier(
        KNeighborsClassifier(n_neighbors=15),
        sigma=sigma,
        n_samples=N_FINAL,
        noise_augmentation=1,
        random_state=0,
    ).fit(X_train, y_train)
    certificates[f"sigma = {sigma}"] = model.certify(X_test)

#
# One :class:`~smoothcert.plotting.CertifiedAccuracyDisplay` per candidate,
# all on one axis and on one grid of radii.
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
radii = np.linspace(0.0, max(c.radius.max() for c in certificates.values()), 200)
for name, cert in certificates.items():
    CertifiedAccuracyDisplay.from_certificate(cert, y_test, radii=radii, name=name, ax=ax)
ax.axvline(0.25, color="grey", ls=":", lw=1)
ax.set_title("test set")
plt.show()

# %%
best = search.best_params_["sigma"]
print(
    f"test certified accuracy at R = 0.25 with sigma = {best}: "
    f"{certified_accuracy(y_test, certificates[f'sigma = {best}'], 0.25):.3f}"
)
