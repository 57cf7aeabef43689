"""
=====================================================
Memory-based certification
=====================================================

A data-dependent certificate (:class:`~smoothcert.CertifiedRegion` with a
searched covariance) says that the classifier smoothed with *this input's*
covariance is constant on the certified ellipsoid
(``guarantee="per-covariance"``). A model that optimizes a new covariance at
every query, as such an estimator's ``predict`` does, may give a neighbour
inside the ellipsoid another class (Súkeník et al., 2022). (The default
``guarantee="deployed"`` is a stateless remedy: its certificates hold for its
own ``predict``; see the user guide's page on guarantees.) This example shows it happening, then
applies the remedy of Alfarra et al.: a :class:`~smoothcert.CertificateMemory`
that keeps the certified regions in order, answers queries inside them with the
stored class, and shrinks new regions until regions of different classes are
disjoint. The result depends on the order of the queries, which the last part
shows.

The settings are small. For the full settings (``n_samples=100_000``
certification draws, 100 search iterations, 200 test inputs), run::

    SMOOTHCERT_EXAMPLES_FULL=1 python examples/plot_memory.py
"""

# %%
# Per-covariance certificates
# ---------------------------
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from smoothcert import CertificateMemory, CertifiedRegion, certified_accuracy
from smoothcert.plotting import CertifiedAccuracyDisplay, CertifiedRegionsDisplay

FULL = os.environ.get("SMOOTHCERT_EXAMPLES_FULL", "0") == "1"
N_SAMPLES = 100_000 if FULL else 2_000
N_ITER = 100 if FULL else 10
N_TEST = 200 if FULL else 60

X, y = make_moons(n_samples=500, noise=0.2, random_state=3)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=N_TEST, random_state=0
)

region = CertifiedRegion(
    SVC(),
    method="riemannian",
    guarantee="per-covariance",  # the certificate of each input's own covariance
    n_iter=N_ITER,
    n_samples=N_SAMPLES,
    random_state=0,
).fit(X_train, y_train)
cert = region.certify(X_test)
print(cert)

# %%
# The gap in the guarantee
# ------------------------
# Each test input is also a query of the deployed classifier, which certifies
# it with its own covariance. Look for pairs where input ``j`` lies inside the
# certified region of input ``i`` but is predicted another class: the region
# of ``i`` is not a region of constant prediction of the deployed classifier.
n = len(X_test)
inside = cert.contains_points(np.broadcast_to(X_test, (n, n, X_test.shape[1])))
np.fill_diagonal(inside, False)  # inside[i, j]: X_test[j] in the region of i
clash = (
    inside
    & cert.certified[None, :]
    & (cert.prediction[:, None] != cert.prediction[None, :])
)
pairs = np.argwhere(clash)
print(f"{len(pairs)} pairs (region of i, query j) with different classes")

display = CertifiedRegionsDisplay.from_certificate(
    cert, y_test, estimator=region, show_balls=False,
    name="per-covariance regions; black: contradicted pairs",
)
for i, j in pairs:
    display.ax_.plot(*X_test[[i, j]].T, color="k", lw=1.2)

# %%
# The memory
# ----------
# Pass a :class:`~smoothcert.CertificateMemory` to
# :meth:`~smoothcert.CertifiedRegion.certify`: the rows are then handled in
# order. A row inside a stored region is answered with that region's class (and
# the largest ellipsoid of the stored shape around it that fits in the region);
# any other certified row is shrunk until it is disjoint from the stored
# regions of the other classes, then stored. The memory is updated in place,
# and the result carries ``guarantee="memory"``.
memory = CertificateMemory()
sound = region.certify(X_test, memory=memory)
print(sound)
print(f"answered from the memory: {sound.from_memory.sum()}")
print(f"shrunk to avoid another class: {sound.shrunk.sum()}")
print(f"regions stored: {len(memory)}")
print(f"intersecting regions of different classes: {len(memory.conflicts())}")

# %%
# The stored regions never overlap across classes, and every query inside one
# of them gets its class: the deployed (stateful) classifier is constant on
# each certified region. The price is smaller certificates.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
CertifiedRegionsDisplay.from_certificate(
    sound, y_test, estimator=region, ax=axes[0], show_balls=False,
    name="memory, test-set order",
)
radii = np.linspace(0.0, cert.radius.max(), 100)  # one grid for both curves
for name, c in [("per-covariance", cert), ("memory", sound)]:
    CertifiedAccuracyDisplay.from_certificate(c, y_test, radii=radii, name=name, ax=axes[1])

# %%
# Order dependence
# ----------------
# Earlier regions win. Querying the same inputs in the reverse order, with an
# empty memory, gives other certificates, equally consistent. Report the order
# along with the numbers.
#
# A row's per-covariance certificate does not depend on the other rows, so
# instead of certifying again, the certificates computed above are handed to
# :meth:`~smoothcert.CertificateMemory.process` in the new order, which is
# what ``certify(X_test[reverse], memory=...)`` does after its own search.
reverse = np.arange(n)[::-1]
memory_rev = CertificateMemory()
sound_rev = memory_rev.process(cert[reverse])
for radius in (0.0, 0.25, 0.5):
    print(
        f"R = {radius:.2f}: per-covariance {certified_accuracy(y_test, cert, radius):.3f}"
        f"   memory {certified_accuracy(y_test, sound, radius):.3f}"
        f"   memory, reversed {certified_accuracy(y_test[reverse], sound_rev, radius):.3f}"
    )
changed = ~np.isclose(sound.radius, sound_rev.radius[np.argsort(reverse)])
print(f"inputs whose certified radius depends on the order: {changed.sum()} of {n}")

CertifiedRegionsDisplay.from_certificate(
    sound_rev, y_test[reverse], estimator=region, show_balls=False,
    name="memory, reversed order",
)

# %%
# The memory is part of the model
# -------------------------------
# The guarantee holds for the classifier *together with* its memory: save it
# with the model, restore it before answering new queries, and pass it to
# every call. ``predict(X, memory=...)`` answers a query inside a stored region
# with that region's class, and certifies (and stores) the others.
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "memory.npz")
    memory.save(path)
    restored = CertificateMemory.load(path)
queries = np.array([[0.0, 0.5], [1.0, -0.5], [2.5, 1.5]])
print("stored region containing each query (-1: none):", restored.query(queries))
print("predictions:", region.predict(queries, memory=restored))
print(f"regions stored: {len(memory)} before, {len(restored)} after")
plt.show()
