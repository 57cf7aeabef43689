"""The statistics module against scipy and the formulas of the design page (*Statistical rules*)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from smoothcert._certify._stats import (
    binomial_test_pvalue,
    clopper_pearson_lower,
    clopper_pearson_upper,
    empirical_bernstein_lower,
    hoeffding_lower,
    mahalanobis_radius,
    radius_ceiling,
    soft_lower_bound,
)

ALPHAS = [1e-6, 0.001, 0.01, 0.05, 0.25, 0.45]
NS = [1, 2, 7, 100, 1000, 100_000]


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("n", NS)
def test_clopper_pearson_lower_matches_scipy(n, alpha):
    k = np.array(sorted({0, 1, n // 3, n // 2, n - 1, n}))
    lower = clopper_pearson_lower(k, n, alpha)
    assert lower.dtype == np.float64
    for kk, lo in zip(k, lower):
        beta = 0.0 if kk == 0 else stats.beta.ppf(alpha, kk, n - kk + 1)
        exact = stats.binomtest(int(kk), n).proportion_ci(
            confidence_level=1 - 2 * alpha, method="exact"
        )
        assert abs(lo - beta) <= 1e-12
        assert abs(lo - exact.low) <= 1e-12
        assert lo < 1.0


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("n", NS)
def test_clopper_pearson_upper_matches_scipy(n, alpha):
    k = np.array(sorted({0, 1, n // 3, n // 2, n - 1, n}))
    upper = clopper_pearson_upper(k, n, alpha)
    for kk, up in zip(k, upper):
        exact = stats.binomtest(int(kk), n).proportion_ci(
            confidence_level=1 - 2 * alpha, method="exact"
        )
        # scipy inverts the upper tail itself: agreement to root-finding precision
        assert abs(up - exact.high) <= 1e-9
    assert np.all(upper >= clopper_pearson_lower(k, n, alpha))


def test_clopper_pearson_lower_edge_values():
    assert clopper_pearson_lower(0, 10, 0.01) == 0.0
    # all successes: Beta(n, 1).ppf(alpha) = alpha^(1/n)
    assert_allclose(clopper_pearson_lower(50, 50, 0.01), 0.01 ** (1 / 50), rtol=0, atol=1e-12)
    # monotone in k and in alpha
    k = np.arange(101)
    assert np.all(np.diff(clopper_pearson_lower(k, 100, 0.01)) > 0)
    assert clopper_pearson_lower(60, 100, 0.001) < clopper_pearson_lower(60, 100, 0.01)


def test_binomial_test_pvalue_matches_scipy():
    pairs = [(1, 0), (5, 0), (5, 5), (6, 4), (10, 1), (60, 40), (40, 60), (520, 480),
             (99_000, 1000), (3, 2), (0, 7), (70_000, 29_000)]
    k_top = np.array([p[0] for p in pairs])
    k_second = np.array([p[1] for p in pairs])
    pvalues = binomial_test_pvalue(k_top, k_second)
    for (a, b), pv in zip(pairs, pvalues):
        expected = stats.binomtest(a, a + b, 0.5).pvalue
        assert abs(pv - expected) <= 1e-12, (a, b)
    assert binomial_test_pvalue(0, 0) == 1.0


@pytest.mark.parametrize("alpha", [0.001, 0.05, 0.3])
def test_hoeffding_and_bernstein_formulas(alpha):
    rng = np.random.default_rng(0)
    n = np.array([2, 10, 100, 5000])
    mean = rng.uniform(0, 1, size=n.shape)
    var = rng.uniform(0, 0.25, size=n.shape)

    hoeffding = np.clip(mean - np.sqrt(np.log(1 / alpha) / (2 * n)), 0, 1)
    assert_allclose(hoeffding_lower(mean, n, alpha), hoeffding, rtol=0, atol=1e-12)

    log_term = np.log(2 / alpha)
    bernstein = mean - np.sqrt(2 * var * log_term / n) - 7 * log_term / (3 * (n - 1))
    bernstein = np.clip(bernstein, 0, 1)
    assert_allclose(empirical_bernstein_lower(mean, var, n, alpha), bernstein, rtol=0, atol=1e-12)

    soft = np.maximum(
        np.clip(mean - np.sqrt(np.log(2 / alpha) / (2 * n)), 0, 1),
        np.clip(
            mean
            - np.sqrt(2 * var * np.log(4 / alpha) / n)
            - 7 * np.log(4 / alpha) / (3 * (n - 1)),
            0,
            1,
        ),
    )
    assert_allclose(soft_lower_bound(mean, var, n, alpha), soft, rtol=0, atol=1e-12)


def test_soft_bound_uses_bernstein_for_small_variance():
    # a confident model: scores barely vary, Bernstein is much tighter
    lower = soft_lower_bound(0.95, 1e-4, 10_000, 0.001)
    assert lower > hoeffding_lower(0.95, 10_000, 0.0005) + 0.005
    assert lower <= 0.95


def test_mahalanobis_radius():
    p = np.array([0.0, 0.3, 0.5, 0.5 + 1e-9, 0.7, 0.99, 1.0])
    r = mahalanobis_radius(p)
    expected = np.where(p > 0.5, stats.norm.ppf(np.clip(p, 0, 1 - 2.3e-16)), 0.0)
    assert_allclose(r[:-1], expected[:-1], rtol=1e-12, atol=1e-12)
    assert np.isfinite(r).all() and np.all(r >= 0)
    assert r[-1] > 8  # p = 1 stays finite
    q = np.array([0.1, 0.2, 0.3, 0.3, 0.2, 0.005, 0.0])
    r2 = mahalanobis_radius(p, q)
    mask = p > 0.5
    expected2 = 0.5 * (stats.norm.ppf(p[mask][:-1]) - stats.norm.ppf(q[mask][:-1]))
    assert_allclose(r2[mask][:-1], expected2, rtol=1e-12)
    assert_array_equal(r2[~mask], 0.0)
    with pytest.raises(ValueError, match="p_lower"):
        mahalanobis_radius([1.5])
    with pytest.raises(ValueError, match="p_lower"):
        mahalanobis_radius([np.nan])


def test_radius_ceiling():
    expected = stats.norm.ppf(0.001 ** (1 / 100_000))
    assert_allclose(radius_ceiling(100_000, 0.001), expected, rtol=1e-10)
    assert round(radius_ceiling(100_000, 0.001), 3) == 3.811
    assert_allclose(radius_ceiling(1000, 0.01), stats.norm.ppf(0.01 ** (1 / 1000)), rtol=1e-10)
    # more draws give a larger ceiling, a smaller alpha a smaller one
    assert radius_ceiling(10_000, 0.001) < radius_ceiling(100_000, 0.001)
    assert radius_ceiling(10_000, 0.0001) < radius_ceiling(10_000, 0.001)


@pytest.mark.parametrize("alpha", [0, 1, -1, 1.5, np.nan])
def test_alpha_outside_unit_interval_rejected(alpha):
    for func, args in [
        (clopper_pearson_lower, (5, 10)),
        (clopper_pearson_upper, (5, 10)),
        (hoeffding_lower, (0.5, 10)),
        (empirical_bernstein_lower, (0.5, 0.1, 10)),
        (soft_lower_bound, (0.5, 0.1, 10)),
        (radius_ceiling, (10,)),
    ]:
        with pytest.raises(ValueError, match="alpha"):
            func(*args, alpha)


def test_bad_counts_rejected():
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson_lower(11, 10, 0.01)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson_lower(-1, 10, 0.01)
    with pytest.raises(ValueError, match="at least 1"):
        clopper_pearson_lower(0, 0, 0.01)
    with pytest.raises(ValueError, match="at least 2 draws"):
        empirical_bernstein_lower(0.5, 0.1, 1, 0.01)


@pytest.mark.parametrize("n, p", [(30, 0.6), (50, 0.8), (20, 0.5), (100, 0.93)])
def test_clopper_pearson_one_sided_coverage(n, p):
    alpha = 0.1
    # exact: the probability that the bound exceeds p, summed over all outcomes
    k = np.arange(n + 1)
    exact_failure = stats.binom.pmf(k, n, p)[clopper_pearson_lower(k, n, alpha) > p].sum()
    assert exact_failure <= alpha
    # simulated
    reps = 20_000
    draws = np.random.default_rng(12345).binomial(n, p, size=reps)
    failure = np.mean(clopper_pearson_lower(draws, n, alpha) > p)
    assert failure <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / reps)
    # the bound is not vacuous: it fails close to alpha for these (n, p)
    assert failure >= alpha / 3


@pytest.mark.parametrize("a, b", [(2.0, 5.0), (20.0, 2.0), (0.3, 0.3)])
@pytest.mark.parametrize("bound", ["soft", "hoeffding", "bernstein"])
def test_soft_bounds_coverage(a, b, bound):
    alpha, n, reps = 0.1, 50, 20_000
    mu = a / (a + b)
    scores = np.random.default_rng(7).beta(a, b, size=(reps, n))
    mean = scores.mean(axis=1)
    var = scores.var(axis=1, ddof=1)
    if bound == "soft":
        lower = soft_lower_bound(mean, var, n, alpha)
    elif bound == "hoeffding":
        lower = hoeffding_lower(mean, n, alpha)
    else:
        lower = empirical_bernstein_lower(mean, var, n, alpha)
    assert np.all(lower <= mean)
    failure = np.mean(lower > mu)
    assert failure <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / reps)
    # not vacuous: within the Hoeffding width plus the Bernstein constant
    width = np.sqrt(np.log(2 / alpha) / (2 * n)) + 7 * np.log(4 / alpha) / (3 * (n - 1))
    assert np.mean(mean - lower) <= width
