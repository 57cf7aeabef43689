"""Problems with a known boundary normal, their base models, oracle and metrics.

Shared by ``bench_dimension.py`` and ``diagnose_search.py`` (not part of the
library). Every problem is a hyperplane ``n . x = 0`` in ``R^d`` with standard
normal inputs and labels ``1[n . x > 0]``:

* ``"axis"``: ``n = e_1`` (the diagonal search can represent the best
  covariance);
* ``"rotated"``: ``n = Q e_1`` for a random rotation ``Q``; the training and
  test points are those of ``"axis"`` rotated by ``Q``, so the two problems
  are the same problem in two bases (paired inputs);
* ``"linear"``: the rotated problem with a LogisticRegression base, whose hard
  vote smoothed with ``N(0, Sigma)`` is exactly ``Phi(|w.x + b| / sqrt(w^T
  Sigma w))``: the best covariance within the library's bounds is known in
  closed form (:func:`linear_oracle`).

Base models: ``"forest"`` (RandomForest trained on the problem's own
coordinates), ``"forest_eq"`` (the axis problem's forest composed with the
rotation, ``x -> forest(Q^T x)``: exactly the axis model expressed in the
rotated basis, so the search alone is tested for rotation invariance),
``"mlp"`` (a skorch MLP trained on the problem's own coordinates) and
``"logreg"``.
"""

import numpy as np
from scipy import stats

SIGMA = 0.25
SIGMA_BOUNDS = (0.25, 4.0)
#: Dimensions of the hyperplane problems measured by default (d = 784 is the
#: digits problem, :func:`digits784`, and ``--dims 784`` a hyperplane there).
DEFAULT_DIMS = (2, 16, 64)


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
        self.rotation = q if kind in ("rotated", "linear") else np.eye(d)
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


def digits784(seed=0):
    """MNIST-like inputs without a download: ``load_digits`` upsampled to 28 x 28.

    Each 8 x 8 digit is zoomed by 3.5 with ``scipy.ndimage.zoom`` (linear
    interpolation) to 28 x 28 and scaled to [0, 1]: 1,797 images in
    ``R^784``, ten classes. Returns a shuffled train / test split
    (1,400 / 397).
    """
    from scipy import ndimage
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.stack([ndimage.zoom(img, 3.5, order=1) for img in digits.images])
    X = np.clip(images.reshape(len(images), -1) / 16.0, 0.0, 1.0)
    order = np.random.default_rng(seed).permutation(len(X))
    X, y = X[order], digits.target[order]
    return X[:1400], y[:1400], X[1400:], y[1400:]


def _mlp(d, hidden=100, epochs=30, seed=0, n_classes=2):
    import torch
    from skorch import NeuralNetClassifier

    torch.manual_seed(seed)
    module = torch.nn.Sequential(
        torch.nn.Linear(d, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, n_classes),
    )
    return NeuralNetClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=epochs,
        batch_size=128,
        train_split=None,
        verbose=0,
        iterator_train__shuffle=True,
    )


from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402


class Rotate(TransformerMixin, BaseEstimator):
    """``x -> x @ Q`` (the coordinates of the axis problem), as a transformer."""

    def __init__(self, rotation=None):
        self.rotation = rotation

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X) @ self.rotation


def make_model(name, problem, n_trees=50):
    """An unfitted base model for ``problem`` (see the module docstring)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    if name == "forest":
        return RandomForestClassifier(n_trees, random_state=0, n_jobs=1)
    if name == "forest_eq":
        return Pipeline(
            [("rotate", Rotate(problem.rotation)), ("forest", RandomForestClassifier(n_trees, random_state=0, n_jobs=1))]
        )
    if name == "mlp":
        return _mlp(problem.d)
    if name == "logreg":
        return LogisticRegression(C=1.0, max_iter=5000)
    raise ValueError(name)


def fit_region(name, problem, **params):
    """A fitted ``CertifiedRegion`` with the named base model."""
    from smoothcert import CertifiedRegion

    X, y = problem.X_train, problem.y_train
    if name == "mlp":
        X = X.astype(np.float32)
    region = CertifiedRegion(make_model(name, problem), sigma=SIGMA, sigma_bounds=SIGMA_BOUNDS, **params)
    return region.fit(X, y)


def certify_covariances(region, X, S):
    """The library's CERTIFY with given covariances, the search skipped (fresh draws).

    ``S``: full matrices of shape (n, d, d) or a ``RowCovariances`` of any form.
    """
    import copy

    from smoothcert._geometry._forms import RowCovariances

    covs = S if isinstance(S, RowCovariances) else RowCovariances.from_matrices(S)
    lookup = {row.tobytes(): i for i, row in enumerate(np.asarray(X, dtype=np.float64))}
    fixed = copy.copy(region)

    def noise(Xc, adapter, seed, progress):
        rows = np.array([lookup[row.tobytes()] for row in np.asarray(Xc, dtype=np.float64)])
        return covs.take(rows), "per-covariance", None

    fixed._noise = noise
    return fixed.certify(X)


# ---------------------------------------------------------------- metrics
def smallest_axis_cos(covariances, normal):
    """``|cos|`` between each covariance's smallest eigenvector and ``normal``."""
    if getattr(covariances, "kind", None) == "lowrank":
        y = covariances.smallest_axis()
        x = covariances.inverse_factor_transpose(y)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return np.abs(x @ normal)
    matrices = covariances.matrices() if hasattr(covariances, "matrices") else covariances
    w, v = np.linalg.eigh(matrices)
    return np.abs(v[:, :, 0] @ normal)


def condition_number(covariances):
    if hasattr(covariances, "max_eigenvalue"):
        return covariances.max_eigenvalue() / covariances.min_eigenvalue()
    w = np.linalg.eigvalsh(covariances)
    return w[:, -1] / w[:, 0]


def cert_metrics(cert, y, normal, radii):
    """Summary of one certificate: median log-volume, ball fractions, shape.

    ``normal=None`` (no known boundary) leaves ``cos`` out.
    """
    covs = cert.covariances
    correct = cert.certified & (cert.prediction == y)
    logvol = np.where(correct, cert.log_volume, -np.inf)
    out = {
        "logvol": float(np.median(logvol)),
        "abstain": float(np.mean(cert.abstained)),
        "cond": float(np.median(condition_number(covs))),
    }
    if normal is not None:
        out["cos"] = float(np.median(smallest_axis_cos(covs, normal)))
    for R in radii:
        out[f"ball@{R:g}"] = float(np.mean(correct & cert.contains_ball(R)))
    return out, logvol


# ---------------------------------------------------------------- oracle
def certified_log_radius_curve(n_samples, alpha, t_grid):
    """Expected ``log r`` certified by hard-vote CERTIFY when ``p_A = Phi(t)``.

    ``r = Phi^-1(p_lower)`` with ``p_lower`` the one-sided Clopper-Pearson
    bound of ``K ~ Binomial(N, Phi(t))`` (rows where ``p_lower <= 1/2``
    abstain and count as ``r = 0``; the expectation is over ``K``). Returns
    the expected ``log r`` (``-inf`` when abstention is likely) and the
    probability of abstaining.
    """
    N = int(n_samples)
    k = np.arange(N + 1)
    # Clopper-Pearson lower bound for every count
    with np.errstate(all="ignore"):
        lower = np.where(k > 0, stats.beta.ppf(alpha, np.maximum(k, 1), N - k + 1), 0.0)
        r = stats.norm.ppf(lower)
    ok = r > 0
    log_r = np.where(ok, np.log(np.where(ok, r, 1.0)), 0.0)
    out = np.empty(len(t_grid))
    abst = np.empty(len(t_grid))
    for i, t in enumerate(t_grid):
        pk = stats.binom.pmf(k, N, stats.norm.cdf(t))
        abst[i] = pk[~ok].sum()
        out[i] = (pk[ok] * log_r[ok]).sum() / max(pk[ok].sum(), 1e-300) if abst[i] < 0.5 else -np.inf
    return out, abst


def log_unit_ball(d):
    from scipy.special import gammaln

    return 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1)


class LinearOracle:
    """Closed-form best covariances for a hyperplane boundary at distance ``delta``.

    The smoothed hard vote of a linear classifier with ``N(0, Sigma)`` noise is
    ``Phi(delta / s)`` with ``s^2 = u^T Sigma u`` (``u`` the unit normal). For a
    given ``s``, ``log det Sigma`` is largest with ``u`` an eigenvector and every
    other eigenvalue as large as the bounds allow (Hadamard's inequality in a
    basis containing ``u``): ``t^2`` with ``t = min(cap, (volume^d / s)^(1/(d-1)))``
    under the library's default ``scale_cap="volume"`` (geometric mean of the
    scales at most ``volume = hi``, each at most ``cap = hi^2 / lo``), or
    ``t = hi`` with ``scale_cap="axis"``. So

    * anisotropic: ``L(s) = d log r(delta / s) + log s + (d - 1) log t(s) + log V_d``,
      ``s`` at least the floor;
    * isotropic:   ``L(s) = d log r(delta / s) + d log s + log V_d``, ``s`` in ``[lo, hi]``,

    with ``r`` the expected certified radius of hard-vote CERTIFY
    (:func:`certified_log_radius_curve`), maximized on a grid of ``s``. The
    library's default floor of the anisotropic stages is the input's isotropic
    optimum (``floor="isotropic"``): pass ``floor=best["s_iso"]`` to get the best
    covariance *within the library's own bounds*.
    """

    def __init__(self, d, n_samples, alpha, lo, hi, n_grid=400, scale_cap="volume"):
        self.d, self.lo, self.hi = d, lo, hi
        self.scale_cap = scale_cap
        self.cap = hi**2 / lo if scale_cap == "volume" else hi
        self.n_samples, self.alpha = n_samples, alpha
        self.s_grid = np.exp(np.linspace(np.log(lo), np.log(hi), n_grid))
        self._t = np.linspace(0.0, 12.0, 2401)
        self._log_r, _ = certified_log_radius_curve(n_samples, alpha, self._t)
        from smoothcert._certify._stats import radius_ceiling

        self.r_max = radius_ceiling(n_samples, alpha)

    def _log_r_at(self, t):
        return np.interp(t, self._t, self._log_r, left=-np.inf)

    def tangent_scale(self, s):
        """Largest scale of the other ``d - 1`` axes when the normal's is ``s``."""
        if self.scale_cap != "volume" or self.d == 1:
            return np.full(np.shape(s), self.hi)
        return np.minimum(self.cap, (self.hi**self.d / np.asarray(s)) ** (1.0 / (self.d - 1)))

    def best(self, delta, floor=None):
        """Best certified log-volume (expected), anisotropic and isotropic.

        ``floor``: smallest allowed scale of the anisotropic covariance
        (default ``lo``; the library's default floors it at the isotropic
        optimum, ``best(delta)["s_iso"]``). Returns a dict of arrays over ``delta``.
        """
        d = self.d
        delta = np.atleast_1d(np.asarray(delta, dtype=float))
        floor = np.full(delta.shape, self.lo) if floor is None else np.broadcast_to(floor, delta.shape)
        s = self.s_grid[None, :]
        log_r = self._log_r_at(delta[:, None] / s)
        lv_iso = d * log_r + d * np.log(s) + log_unit_ball(d)
        lv_ani = d * log_r + np.log(s) + (d - 1) * np.log(self.tangent_scale(s)) + log_unit_ball(d)
        lv_ani = np.where(s >= floor[:, None] * (1 - 1e-9), lv_ani, -np.inf)
        i_iso = np.argmax(lv_iso, axis=1)
        i_ani = np.argmax(lv_ani, axis=1)
        rows = np.arange(len(delta))
        return {
            "logvol_iso": lv_iso[rows, i_iso],
            "s_iso": self.s_grid[i_iso],
            "logvol_ani": lv_ani[rows, i_ani],
            "s_ani": self.s_grid[i_ani],
        }

    def covariance(self, normal, s):
        """``s^2 u u^T + t(s)^2 (I - u u^T)`` for each ``s``."""
        u = normal / np.linalg.norm(normal)
        P = np.outer(u, u)
        s = np.atleast_1d(s)
        t = self.tangent_scale(s)
        return (s**2)[:, None, None] * P + (t**2)[:, None, None] * (np.eye(self.d) - P)[None]
