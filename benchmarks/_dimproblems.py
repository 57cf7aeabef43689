"""Hyperplane problems with a known boundary normal, for ``bench_search.py`` (not part of the library).

A problem is a hyperplane ``n . x = 0`` in ``R^d`` with standard normal inputs
and labels ``1[n . x > 0]``:

* ``"axis"``: ``n = e_1`` (a diagonal covariance can be the best one);
* ``"rotated"``: ``n = Q e_1`` for a random rotation ``Q``; the training and
  test points are those of ``"axis"`` rotated by ``Q``, so the two problems
  are the same problem in two bases (paired inputs).
"""

import numpy as np


class Problem:
    """Training data, test inputs and the boundary normal of one problem."""

    def __init__(self, d, kind, n_train, n_test, seed=0):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n_train, d))
        Xt = rng.standard_normal((n_test, d))
        # a random rotation (Haar), drawn whatever the kind so that "axis" and
        # "rotated" share the same points
        q, r = np.linalg.qr(np.random.default_rng(seed + 1).standard_normal((d, d)))
        q = q * np.sign(np.diag(r))
        self.d, self.kind = d, kind
        if kind not in ("axis", "rotated"):
            raise ValueError(f"kind must be 'axis' or 'rotated', got {kind!r}.")
        self.rotation = q if kind == "rotated" else np.eye(d)
        self.normal = self.rotation[:, 0].copy()
        self.X_train = X @ self.rotation.T
        self.y_train = (X[:, 0] > 0).astype(int)
        self.X_test = Xt @ self.rotation.T
        self.y_test = (Xt[:, 0] > 0).astype(int)
        #: distance of each test input to the true boundary
        self.distance = np.abs(Xt[:, 0])

    def inputs(self, n, min_distance=0.0):
        """The first ``n`` test inputs at least ``min_distance`` from the boundary."""
        keep = np.flatnonzero(self.distance >= min_distance)[:n]
        return self.X_test[keep], self.y_test[keep], self.distance[keep]
