"""Statistical validity of CERTIFY and PREDICT on problems with a known answer.

For a linear binary base model ``f(x) = 1[w.x + b > 0]`` smoothing changes
nothing, and the smoothed top-class probability is exactly
``p = Phi(|w.x + b| / sqrt(w^T Sigma w))`` (design page, *What is computed*): the exact
certified ellipsoid touches the hyperplane. A certificate *over-claims* when
its Mahalanobis radius ``r`` exceeds ``Phi^-1(p)``, i.e. when the ellipsoid
crosses the hyperplane (``r sqrt(w^T Sigma w) > |w.x + b|``), or when it
certifies the wrong class. Each certificate may do so with probability at most
``alpha``.

The tests certify many *different* rows in one call of the library's real
CERTIFY path (rows with different content get independent noise), with a large
``alpha`` and a small ``N`` so that failures are frequent enough to be counted,
and compare the failure rate with ``alpha`` (plus three binomial standard
errors) and, for hard votes, with the exact failure probability computed
independently of the library from the binomial distribution.
"""

import numpy as np
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from smoothcert._estimators._adapters import make_adapter
from smoothcert._geometry._forms import RowCovariances
from smoothcert._certify._procedures import certify_rows, predict_rows
from smoothcert._certify._procedures import count_votes
from smoothcert._engine._streams import STAGE_ESTIMATION, resolve_seed

pytestmark = pytest.mark.slow

D = 3
W = np.array([1.0, -2.0, 0.5])
B = 0.3
BATCH = 200_000
KINDS = ["isotropic", "diagonal", "full"]


# ----------------------------------------------------------------- problems
def _linear_adapter():
    """A LogisticRegression whose decision function is exactly ``w.x + b``."""
    rng = np.random.default_rng(0)
    lr = LogisticRegression().fit(rng.standard_normal((20, D)), np.arange(20) % 2)
    lr.coef_ = W[None, :].copy()
    lr.intercept_ = np.array([B])
    return make_adapter(lr, np.array([0, 1]), True)


class ProbitClassifier(ClassifierMixin, BaseEstimator):
    """Binary model with ``P(class 1 | x) = Phi((w.x + b) / tau)``.

    Smoothed with ``N(0, Sigma)`` its mean score is known in closed form:
    ``E[Phi((w.(x + e) + b) / tau)] = Phi((w.x + b) / sqrt(tau^2 + w^T Sigma w))``.
    """

    def __init__(self, w=None, b=0.0, tau=1.0):
        self.w = w
        self.b = b
        self.tau = tau

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        p1 = stats.norm.cdf((np.asarray(X) @ np.asarray(self.w) + self.b) / self.tau)
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X):
        return (np.asarray(X) @ np.asarray(self.w) + self.b > 0).astype(int)


class SlabClassifier(ClassifierMixin, BaseEstimator):
    """Three classes cut by two parallel hyperplanes: ``w.x`` below ``lo``,
    between ``lo`` and ``hi``, above ``hi``."""

    def __init__(self, w=None, lo=-1.0, hi=1.0):
        self.w = w
        self.lo = lo
        self.hi = hi

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        t = np.asarray(X) @ np.asarray(self.w)
        return np.where(t < self.lo, 0, np.where(t < self.hi, 1, 2))


def _random_covariances(kind, n, rng):
    if kind == "isotropic":
        return RowCovariances.isotropic(rng.uniform(0.05, 1.0, size=n), D)
    if kind == "diagonal":
        return RowCovariances.create("diagonal", rng.uniform(0.02, 1.5, size=(n, D)), D)
    # random rotations and spectra, condition numbers up to ~100
    q, _ = np.linalg.qr(rng.standard_normal((n, D, D)))
    eig = np.exp(rng.uniform(np.log(0.02), np.log(2.0), size=(n, D)))
    return RowCovariances.from_matrices(np.einsum("nij,nj,nkj->nik", q, eig, q))


def _rows_with_margin(margin, rng):
    """Distinct rows ``x`` with ``w.x + b = margin``."""
    z = rng.standard_normal((len(margin), D))
    return z + ((margin - z @ W - B) / (W @ W))[:, None] * W


def _projected_sd(covariances):
    """``sqrt(w^T Sigma w)`` per row."""
    return np.sqrt(np.einsum("i,nij,j->n", W, covariances.matrices(), W))


def _problem(kind, n, p_range, rng, extra_var=0.0):
    covs = _random_covariances(kind, n, rng)
    scale = np.sqrt(_projected_sd(covs) ** 2 + extra_var)
    p_true = rng.uniform(*p_range, size=n)
    sign = rng.choice([-1.0, 1.0], size=n)
    margin = sign * scale * stats.norm.ppf(p_true)
    X = _rows_with_margin(margin, rng)
    # the truth, recomputed from the rows (not from p_true) to test the geometry
    true_class = (X @ W + B > 0).astype(int)
    p_exact = stats.norm.cdf(np.abs(X @ W + B) / scale)
    return X, covs, true_class, p_exact


def _se(rate, n):
    return np.sqrt(rate * (1.0 - rate) / n)


def _cp_lower(k, n, alpha):
    """Independent Clopper-Pearson lower bound (scipy's beta quantile)."""
    k = np.asarray(k, dtype=float)
    return np.where(k > 0, stats.beta.ppf(alpha, np.maximum(k, 1), n - k + 1), 0.0)


def _exact_hard_failure(p, true_class, n0, n, alpha):
    """Exact probability that hard-vote CERTIFY over-claims, per row.

    Selection: argmax of ``n0`` votes (ties go to class index 0). Estimation:
    ``n`` fresh votes, Clopper-Pearson at ``alpha``. Failure: the correct class
    is selected and its bound exceeds ``p``, or the wrong class is selected
    and its bound exceeds 1/2 (it is certified at all).
    """
    k0 = np.arange(n0 + 1)
    k = np.arange(n + 1)
    cp = _cp_lower(k, n, alpha)
    pmf0 = stats.binom.pmf(k0[None, :], n0, p[:, None])
    win = pmf0[:, 2 * k0 > n0].sum(axis=1)
    tie = pmf0[:, 2 * k0 == n0].sum(axis=1)
    select_true = win + np.where(true_class == 0, tie, 0.0)
    pmf_true = stats.binom.pmf(k[None, :], n, p[:, None])
    pmf_wrong = stats.binom.pmf(k[None, :], n, 1.0 - p[:, None])
    fail_true = (pmf_true * (cp[None, :] > p[:, None])).sum(axis=1)
    fail_wrong = (pmf_wrong * (cp[None, :] > 0.5)).sum(axis=1)
    return select_true * fail_true + (1.0 - select_true) * fail_wrong


def _over_claimed(X, covs, top, abstained, radius, true_class):
    reach = radius * _projected_sd(covs)
    return ~abstained & ((top != true_class) | (reach > np.abs(X @ W + B)))


# ------------------------------------------------------------- hard CERTIFY
HARD_CASES = [
    # (kind, alpha, n_samples, n_samples_selection, seeds, rows per seed)
    ("isotropic", 0.1, 100, 20, (0, 1), 10_000),
    ("diagonal", 0.2, 50, 11, (2, 3), 10_000),
    ("full", 0.05, 200, 10, (4, 5), 10_000),
]


@pytest.mark.parametrize("kind, alpha, n, n0, seeds, n_rows", HARD_CASES)
def test_hard_certify_over_claims_at_most_alpha(kind, alpha, n, n0, seeds, n_rows):
    adapter = _linear_adapter()
    failures, expected, variance, total = 0, 0.0, 0.0, 0
    for seed in seeds:
        rng = np.random.default_rng([17, seed])
        X, covs, true_class, p = _problem(kind, n_rows, (0.52, 0.995), rng)
        top, p_lower, abstained, radius, _ = certify_rows(
            adapter, X, covs, n_samples=n, n_samples_selection=n0, alpha=alpha,
            vote="hard", seed=resolve_seed(seed), batch_size=BATCH,
        )
        assert np.all(np.isfinite(radius)) and np.all(radius >= 0)
        over = _over_claimed(X, covs, top, abstained, radius, true_class)
        # the radius check and the probability check agree
        np.testing.assert_array_equal(over, ~abstained & ((top != true_class) | (p_lower > p)))
        exact = _exact_hard_failure(p, true_class, n0, n, alpha)
        assert np.all(exact <= alpha + 1e-12)
        failures += int(over.sum())
        expected += exact.sum()
        variance += (exact * (1 - exact)).sum()
        total += n_rows
    rate = failures / total
    print(f"hard {kind}: alpha={alpha} N={n} N0={n0} {total} certificates: "
          f"{100 * rate:.2f}% over-claimed (exact expectation {100 * expected / total:.2f}%)")
    assert rate <= alpha + 3 * _se(alpha, total)
    # the failures are those of independent exact binomial draws: neither more
    # (correlated or mis-scaled noise) nor fewer (a bound looser than claimed)
    assert abs(failures - expected) <= 4 * np.sqrt(variance)


def test_hard_certify_multiclass_slab():
    """Three classes; the selected class's bound must not exceed its probability."""
    alpha, n, n0, n_rows = 0.1, 100, 15, 8000
    w = np.array([0.6, 0.8, 0.0])  # unit norm
    lo, hi = -0.5, 0.5
    base = SlabClassifier(w=w, lo=lo, hi=hi).fit(np.zeros((3, D)), [0, 1, 2])
    adapter = make_adapter(base, np.array([0, 1, 2]), True)
    rng = np.random.default_rng(99)
    covs = _random_covariances("full", n_rows, rng)
    s = np.sqrt(np.einsum("i,nij,j->n", w, covs.matrices(), w))
    X = rng.standard_normal((n_rows, D)) * np.array([1.0, 1.0, 3.0])
    t = X @ w
    p_true = np.column_stack([
        stats.norm.cdf((lo - t) / s),
        stats.norm.cdf((hi - t) / s) - stats.norm.cdf((lo - t) / s),
        stats.norm.sf((hi - t) / s),
    ])
    top, p_lower, abstained, radius, _ = certify_rows(
        adapter, X, covs, n_samples=n, n_samples_selection=n0, alpha=alpha,
        vote="hard", seed=resolve_seed(7), batch_size=BATCH,
    )
    p_top = p_true[np.arange(n_rows), top]
    over = ~abstained & (p_lower > p_top)
    # a certified class must be the smoothed prediction: p_top > 1/2 unless over-claimed
    assert np.all(abstained | (p_top > 0.5) | over)
    rate = over.mean()
    print(f"hard 3-class slab: alpha={alpha} N={n} {n_rows} certificates: "
          f"{100 * rate:.2f}% over-claimed; {100 * (~abstained).mean():.0f}% certified")
    assert rate <= alpha + 3 * _se(alpha, n_rows)
    assert (~abstained).mean() > 0.3


# ------------------------------------------------------------- soft CERTIFY
@pytest.mark.parametrize("kind", KINDS)
def test_soft_certify_over_claims_at_most_alpha(kind):
    alpha, n, n0, n_rows, tau = 0.2, 50, 10, 12_000, 0.3
    base = ProbitClassifier(w=W, b=B, tau=tau).fit(np.zeros((2, D)), [0, 1])
    adapter = make_adapter(base, np.array([0, 1]), True)
    rng = np.random.default_rng([23, KINDS.index(kind)])
    X, covs, true_class, p = _problem(kind, n_rows, (0.5, 0.99), rng, extra_var=tau**2)
    top, p_lower, abstained, radius, _ = certify_rows(
        adapter, X, covs, n_samples=n, n_samples_selection=n0, alpha=alpha,
        vote="soft", seed=resolve_seed(KINDS.index(kind)), batch_size=BATCH,
    )
    assert np.all(np.isfinite(radius)) and np.all(radius >= 0)
    # soft smoothing: Phi^-1(G_A) is 1-Lipschitz in the Mahalanobis metric, so
    # the certificate over-claims when r > Phi^-1(E[F_A]), i.e. p_lower > E[F_A]
    mean_top = np.where(top == true_class, p, 1.0 - p)
    over = ~abstained & ((top != true_class) | (radius > stats.norm.ppf(mean_top)))
    rate = over.mean()
    print(f"soft {kind}: alpha={alpha} N={n} {n_rows} certificates: "
          f"{100 * rate:.2f}% over-claimed; {100 * (~abstained).mean():.0f}% certified")
    assert rate <= alpha + 3 * _se(alpha, n_rows)
    assert (~abstained).mean() > 0.3  # not vacuous


@pytest.mark.parametrize("vote", ["hard", "soft"])
def test_smoothed_scores_are_unbiased(vote):
    """Monte-Carlo means of the engine match the closed-form smoothed scores."""
    n, n_rows, tau = 200, 6000, 0.5
    rng = np.random.default_rng(31)
    if vote == "hard":
        adapter = _linear_adapter()
        X, covs, true_class, p = _problem("full", n_rows, (0.5, 0.95), rng)
    else:
        base = ProbitClassifier(w=W, b=B, tau=tau).fit(np.zeros((2, D)), [0, 1])
        adapter = make_adapter(base, np.array([0, 1]), True)
        X, covs, true_class, p = _problem("full", n_rows, (0.5, 0.95), rng, extra_var=tau**2)
    p1 = np.where(true_class == 1, p, 1.0 - p)
    sums, sq = count_votes(adapter, X, covs, n, seed=resolve_seed(3), stage=STAGE_ESTIMATION,
                           vote=vote, batch_size=BATCH)
    mean = sums[:, 1] / n
    if vote == "hard":
        var = p1 * (1 - p1)
    else:
        var = np.maximum((sq[:, 1] - n * mean**2) / (n - 1), 1e-12)
    z = (mean - p1) / np.sqrt(var / n)
    keep = np.abs(p1 - 0.5) < 0.4  # where the normal approximation is good
    total_z = (mean - p1)[keep].sum() / np.sqrt((var[keep] / n).sum())
    assert abs(total_z) < 4
    assert 0.9 < np.mean(z[keep] ** 2) < 1.12


# ------------------------------------------------------- PREDICT with abstention
def _exact_predict_error(p, n, alpha):
    """Exact probability that hard PREDICT returns the wrong class (two classes)."""
    k = np.arange(n + 1)  # votes for the wrong class
    reject = np.array([stats.binomtest(max(j, n - j), n, 0.5).pvalue <= alpha for j in k])
    wrong_wins = (k > n - k) & reject
    return (stats.binom.pmf(k[None, :], n, 1.0 - p[:, None]) * wrong_wins).sum(axis=1)


@pytest.mark.parametrize("kind", ["isotropic", "full"])
def test_hard_predict_error_rate_at_most_alpha(kind):
    alpha, n, n_rows = 0.1, 100, 15_000
    adapter = _linear_adapter()
    rng = np.random.default_rng([41, KINDS.index(kind)])
    X, covs, true_class, p = _problem(kind, n_rows, (0.5, 0.62), rng)
    top, abstained, _ = predict_rows(adapter, X, covs, n_samples=n, alpha=alpha, vote="hard",
                                  seed=resolve_seed(5), batch_size=BATCH)
    wrong = ~abstained & (top != true_class)
    exact = _exact_predict_error(p, n, alpha)
    rate = wrong.mean()
    print(f"hard PREDICT {kind}: alpha={alpha} N={n} {n_rows} points near the boundary: "
          f"{100 * rate:.2f}% wrong (exact expectation {100 * exact.mean():.2f}%), "
          f"{100 * abstained.mean():.0f}% abstained")
    assert rate <= alpha + 3 * _se(alpha, n_rows)
    assert abs(wrong.sum() - exact.sum()) <= 4 * np.sqrt((exact * (1 - exact)).sum()) + 1


def test_soft_predict_error_rate_at_most_alpha():
    alpha, n, n_rows, tau = 0.2, 50, 15_000, 0.2
    base = ProbitClassifier(w=W, b=B, tau=tau).fit(np.zeros((2, D)), [0, 1])
    adapter = make_adapter(base, np.array([0, 1]), True)
    rng = np.random.default_rng(43)
    X, covs, true_class, p = _problem("full", n_rows, (0.5, 0.6), rng, extra_var=tau**2)
    top, abstained, _ = predict_rows(adapter, X, covs, n_samples=n, alpha=alpha, vote="soft",
                                  seed=resolve_seed(6), batch_size=BATCH)
    wrong = ~abstained & (top != true_class)
    rate = wrong.mean()
    print(f"soft PREDICT: alpha={alpha} N={n} {n_rows} points: {100 * rate:.2f}% wrong, "
          f"{100 * abstained.mean():.0f}% abstained")
    assert rate <= alpha + 3 * _se(alpha, n_rows)


def test_public_estimator_over_claims_at_most_alpha():
    """The same check through SmoothedClassifier.certify and the l2 radius it reports:
    the certified ball must not cross the hyperplane ``w.x + b = 0``."""
    from sklearn.frozen import FrozenEstimator

    from smoothcert import SmoothedClassifier

    alpha, n, n_rows, sigma = 0.1, 100, 8000, 0.5
    base = _linear_adapter().estimator
    clf = SmoothedClassifier(FrozenEstimator(base), sigma=sigma, n_samples=n,
                             n_samples_selection=16, alpha=alpha, random_state=11)
    rng = np.random.default_rng(12)
    p_true = rng.uniform(0.52, 0.995, size=n_rows)
    sign = rng.choice([-1.0, 1.0], size=n_rows)
    margin = sign * sigma * np.linalg.norm(W) * stats.norm.ppf(p_true)
    X = _rows_with_margin(margin, rng)
    y = (X @ W + B > 0).astype(int)
    cert = clf.fit(X[:2], np.array([0, 1])).certify(X)
    assert cert.guarantee == "fixed-noise"
    distance = np.abs(X @ W + B) / np.linalg.norm(W)
    over = cert.certified & ((cert.prediction != y) | (cert.radius > distance))
    rate = over.mean()
    print(f"SmoothedClassifier: alpha={alpha} N={n} {n_rows} certificates: "
          f"{100 * rate:.2f}% over-claimed")
    assert rate <= alpha + 3 * _se(alpha, n_rows)
    assert cert.certified.mean() > 0.5


@pytest.mark.parametrize("method", ["isotropic", "riemannian"])
def test_data_dependent_certificates_over_claim_at_most_alpha(method):
    """CertifiedRegion: Sigma_x is optimized on draws independent of the certification
    draws (rule 4), so with the returned Sigma_x the over-claim rate stays <= alpha."""
    from sklearn.frozen import FrozenEstimator

    from smoothcert import CertifiedRegion

    alpha, n, n_rows = 0.1, 100, 3000
    base = _linear_adapter().estimator
    est = CertifiedRegion(FrozenEstimator(base), method=method, n_iter=3, n_samples_optim=32,
                          n_samples=n, n_samples_selection=16, alpha=alpha, sigma=0.5,
                          random_state=21, guarantee="per-covariance")
    rng = np.random.default_rng(22)
    p_guess = rng.uniform(0.55, 0.99, size=n_rows)
    sign = rng.choice([-1.0, 1.0], size=n_rows)
    margin = sign * 0.5 * np.linalg.norm(W) * stats.norm.ppf(p_guess)
    X = _rows_with_margin(margin, rng)
    y = (X @ W + B > 0).astype(int)
    cert = est.fit(X[:2], np.array([0, 1])).certify(X)
    sd = np.sqrt(np.einsum("i,nij,j->n", W, cert.covariance, W))
    over = cert.certified & ((cert.prediction != y)
                             | (cert.mahalanobis_radius * sd > np.abs(X @ W + B)))
    rate = over.mean()
    print(f"CertifiedRegion({method}): alpha={alpha} N={n} {n_rows} certificates: "
          f"{100 * rate:.2f}% over-claimed")
    assert rate <= alpha + 3 * _se(alpha, n_rows)
    assert cert.certified.mean() > 0.5
