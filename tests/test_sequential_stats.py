"""Sequential statistics: the new [0, 1]-mean bounds, betting sequences, the certifier.

Bounds are checked against independent formulas (scipy.stats, scipy.optimize);
validity is checked by simulation at the hardest point (true mean at, or just
below, the threshold) with a large alpha so that failures are visible, and the
naive uncorrected procedure is shown to fail the same test.
"""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize, special, stats

from smoothcert._certify._betting import BettingConfidenceSequence, score_sums
from smoothcert._certify._sequential import SequentialCertifier
from smoothcert._certify._sequential_predict import SequentialPredictor
from smoothcert._certify._soft_bounds import betting_confidence_sequence, betting_lower_bound, combined_soft_lower_bound
from smoothcert._certify._looks import geometric_looks, spend_alpha
from smoothcert._certify._stats import (
    bentkus_lower_bound,
    binomial_test_pvalue,
    clopper_pearson_lower,
    hoeffding_lower,
    kl_lower_bound,
    kl_upper_bound,
    mahalanobis_radius,
)


def _failure_limit(alpha, reps):
    """Largest failure rate a valid procedure shows at 3.5 standard errors."""
    return alpha + 3.5 * np.sqrt(alpha * (1 - alpha) / reps)


# ------------------------------------------------------------------ KL bound


def _kl(p, m):
    return special.rel_entr(p, m) + special.rel_entr(1 - p, 1 - m)


@pytest.mark.parametrize("alpha", [1e-6, 0.001, 0.05, 0.3])
@pytest.mark.parametrize("n", [1, 7, 100, 100_000])
def test_kl_lower_bound_matches_root_finder(n, alpha):
    means = np.array([0.0, 0.01, 0.3, 0.5, 0.9, 0.999, 1.0])
    lower = kl_lower_bound(means, n, alpha)
    assert lower.dtype == np.float64 and lower.shape == means.shape
    target = np.log(1 / alpha) / n
    for mean, lo in zip(means, lower):
        if mean == 0:
            assert lo == 0.0
            continue
        f = lambda m, mean=mean: _kl(mean, m) - target  # noqa: E731
        root = (
            0.0
            if f(1e-300) < 0
            else optimize.brentq(f, 1e-300, mean, xtol=1e-18, rtol=1e-15, maxiter=1000)
        )
        assert abs(lo - root) <= 1e-13
        assert _kl(mean, lo) >= target * (1 - 1e-12) or lo == 0.0  # still rejected


def test_kl_all_ones_is_clopper_pearson():
    for n in [1, 10, 1000, 100_000]:
        for alpha in [1e-3, 0.1]:
            assert_allclose(kl_lower_bound(1.0, n, alpha), alpha ** (1 / n), rtol=1e-15)
            assert_allclose(
                kl_lower_bound(1.0, n, alpha), clopper_pearson_lower(n, n, alpha), rtol=1e-14
            )


def test_kl_bounds_order_and_monotonicity():
    mean = np.linspace(0, 1, 201)
    lower = kl_lower_bound(mean, 500, 0.01)
    upper = kl_upper_bound(mean, 500, 0.01)
    assert np.all(np.diff(lower) >= 0) and np.all(np.diff(upper) >= 0)
    assert np.all(lower <= mean) and np.all(upper >= mean)
    assert_allclose(upper, 1 - kl_lower_bound(1 - mean, 500, 0.01))
    # never looser than Hoeffding (Pinsker), tighter with a smaller n-free level
    assert np.all(lower >= hoeffding_lower(mean, 500, 0.01) - 1e-15)
    assert np.all(kl_lower_bound(mean, 500, 0.001) <= lower)
    assert np.all(kl_lower_bound(mean, 5000, 0.01)[1:-1] > lower[1:-1])


# ------------------------------------------------------------- Bentkus bound


def _bentkus_bruteforce(t, n, alpha):
    """Root of min over all integer h < t of E(S-h)_+/(t-h) = alpha, with scipy.stats.binom."""

    def log_p(m):
        h = np.arange(0, int(np.ceil(t)))
        j = np.arange(n + 1)
        pmf = stats.binom.pmf(j, n, m)
        excess = np.array([np.sum(np.maximum(j - hh, 0) * pmf) for hh in h])
        return np.log(min(1.0, np.min(excess / (t - h))))

    mean = t / n
    f = lambda m: log_p(m) - np.log(alpha)  # noqa: E731
    lo = kl_lower_bound(mean, n, alpha)
    if f(mean - 1e-12) <= 0:
        return mean
    return optimize.brentq(f, max(float(lo) - 1e-12, 1e-12), mean - 1e-12, xtol=1e-14)


@pytest.mark.parametrize(
    "n, t", [(20, 15), (20, 19.5), (50, 31), (200, 150), (200, 199), (1000, 700)]
)
@pytest.mark.parametrize("alpha", [0.001, 0.05, 0.3])
def test_bentkus_matches_bruteforce(n, t, alpha):
    value = float(bentkus_lower_bound(t / n, n, alpha))
    assert abs(value - _bentkus_bruteforce(t, n, alpha)) <= 1e-8


def test_bentkus_between_kl_and_clopper_pearson():
    n = 10_000
    k = np.array([0, 1, 100, 5000, 9000, 9990, 9999, 10_000])
    mean = k / n
    for alpha in [1e-4, 0.001, 0.1]:
        bk = bentkus_lower_bound(mean, n, alpha)
        assert np.all(bk >= kl_lower_bound(mean, n, alpha))
        # the Markov ratio is >= the binomial tail, so never above Clopper-Pearson
        assert np.all(bk <= clopper_pearson_lower(k, n, alpha) + 1e-15)
        assert bk[-1] == alpha ** (1 / n)
        assert bk[0] == 0.0
    dense = bentkus_lower_bound(np.linspace(0, 1, 101), 300, 0.01)
    assert np.all(np.diff(dense) >= 0)


def test_bentkus_shapes_and_broadcasting():
    mean = np.full((3, 4), 0.8)
    n = np.array([10, 100, 1000, 10_000])
    out = bentkus_lower_bound(mean, n, 0.01)
    assert out.shape == (3, 4)
    assert np.all(np.diff(out, axis=1) > 0)
    assert bentkus_lower_bound(0.8, 100, 0.01).shape == ()


def _three_point(rng, size):
    return rng.choice([0.0, 0.6, 1.0], p=[0.1, 0.3, 0.6], size=size)


@pytest.mark.slow
@pytest.mark.parametrize("law", ["bernoulli", "beta", "three_point"])
def test_fixed_n_soft_bounds_valid_by_simulation(law):
    rng = np.random.default_rng(11)
    alpha, n, reps = 0.2, 40, 4000
    if law == "bernoulli":
        mu = 0.83
        scores = (rng.random((reps, n)) < mu).astype(float)
    elif law == "beta":
        mu = 0.9
        scores = rng.beta(9.0, 1.0, (reps, n))
    else:
        mu = 0.78
        scores = _three_point(rng, (reps, n))
    mean = scores.mean(axis=1)
    limit = _failure_limit(alpha, reps)
    for name, lower in {
        "kl": kl_lower_bound(mean, n, alpha),
        "bentkus": bentkus_lower_bound(mean, n, alpha),
        "betting": betting_lower_bound(scores, alpha),
        "combined": combined_soft_lower_bound(scores, alpha),
    }.items():
        rate = np.mean(lower > mu)
        assert rate <= limit, (name, rate)
    # the test can fail: a normal interval with half the width does
    sd = scores.std(axis=1, ddof=1)
    naive = mean - 0.5 * stats.norm.ppf(1 - alpha) * sd / np.sqrt(n)
    assert np.mean(naive > mu) > limit


# ----------------------------------------------------------- looks, spending


def test_geometric_looks_and_spending():
    looks = geometric_looks(32, 100_000)
    assert looks[0] == 32 and looks[-1] == 100_000 and np.all(np.diff(looks) > 0)
    assert_array_equal(geometric_looks(10, 10), [10])
    assert_array_equal(geometric_looks(500, 100), [100])
    assert_array_equal(geometric_looks(1, 10, ratio=1.5), [1, 2, 3, 4, 6, 8, 10])
    for schedule in ["uniform", "sqrt", "proportional", 0.5, 0.9]:
        levels = spend_alpha(0.001, looks, schedule)
        assert levels.shape == looks.shape and np.all(levels > 0)
        assert_allclose(levels.sum(), 0.001, rtol=1e-12)
    assert np.all(np.diff(spend_alpha(0.01, looks, "sqrt")) > 0)
    assert_array_equal(spend_alpha(0.01, [5]), [0.01])


# --------------------------------------------------------- betting sequence


def test_score_sums_exact_and_conservative():
    rng = np.random.default_rng(0)
    x = rng.random((5, 1000))
    x[0] = np.round(x[0])
    s1, s2 = score_sums(x)
    assert s1.dtype == np.int64
    assert np.all(s1 / 2**32 <= x.sum(axis=1))
    assert np.all(s1 / 2**32 >= x.sum(axis=1) - 1000 * 2.0**-32)
    assert np.all(s2 / 2**32 >= (np.floor(x * 2**32) ** 2 / 2.0**64).sum(axis=1) - 1e-9)
    assert np.all(s2 <= s1)
    assert s1[0] == s2[0] == int(x[0].sum()) * 2**32
    # integer sums: split anywhere, same result
    a1, a2 = score_sums(x[:, :377])
    b1, b2 = score_sums(x[:, 377:])
    assert_array_equal(a1 + b1, s1)
    assert_array_equal(a2 + b2, s2)


def _feed(cs, scores, splits):
    rows = np.arange(scores.shape[0])
    edges = [0, *splits, scores.shape[1]]
    for a, b in zip(edges[:-1], edges[1:]):
        cs.update(rows, scores[:, a:b])


@pytest.mark.parametrize("target", [None, 0.7])
def test_betting_block_splitting_invariance(target):
    rng = np.random.default_rng(1)
    scores = rng.beta(6, 1, (6, 2000))
    scores[:3] = np.round(scores[:3])
    looks = geometric_looks(8, 2000)
    results = []
    for splits in (
        [],
        [1, 2, 3, 700, 701],
        list(range(13, 2000, 97)),
        [8, 16, 32, 64, 128, 256, 512, 1024],
    ):
        cs = BettingConfidenceSequence(6, looks, 0.05, target=target)
        _feed(cs, scores, splits)
        grid = np.linspace(0.0, 1.0, 41)
        results.append((cs.lower_bound(), cs.log_capital(np.tile(grid, (6, 1)))))
    for lower, capital in results[1:]:
        assert_array_equal(lower, results[0][0])
        assert_array_equal(capital, results[0][1])


def test_betting_one_hot_scores_equal_counts():
    rng = np.random.default_rng(2)
    votes = (rng.random((4, 1024)) < np.array([[1.0], [0.99], [0.8], [0.5]])).astype(float)
    looks = geometric_looks(4, 1024)
    soft = BettingConfidenceSequence(4, looks, 0.01)
    soft.update(np.arange(4), votes)
    hard = BettingConfidenceSequence(4, looks, 0.01)
    prev = 0
    for look in looks:
        hard.update_counts(np.arange(4), votes[:, prev:look].sum(axis=1).astype(int), look - prev)
        prev = look
    assert_array_equal(soft.lower_bound(), hard.lower_bound())


def test_betting_rows_are_independent():
    rng = np.random.default_rng(3)
    scores = rng.beta(4, 1, (5, 512))
    looks = geometric_looks(16, 512)
    together = BettingConfidenceSequence(5, looks, 0.05)
    together.update(np.arange(5), scores)
    for r in range(5):
        alone = BettingConfidenceSequence(1, looks, 0.05)
        alone.update([0], scores[r : r + 1])
        assert alone.lower_bound()[0] == together.lower_bound()[r]
    # a subset of rows fed in another order
    part = BettingConfidenceSequence(5, looks, 0.05)
    part.update([4, 1], scores[[4, 1]])
    assert_array_equal(part.lower_bound([1, 4]), together.lower_bound([1, 4]))
    assert_array_equal(part.lower_bound([0, 2, 3]), 0.0)


def test_betting_capital_monotone_and_bound_rejected():
    rng = np.random.default_rng(4)
    scores = rng.beta(8, 2, (3, 4096))
    cs = BettingConfidenceSequence(3, geometric_looks(1, 4096), 0.01, horizon=4096)
    cs.update(np.arange(3), scores)
    grid = np.linspace(0, 1, 2001)
    capital = cs.log_capital(np.tile(grid, (3, 1)))
    assert capital.shape == (3, 2001)
    assert np.all(np.diff(capital, axis=1) <= 1e-12)
    lower = cs.lower_bound()
    assert np.all(lower > 0.75)
    assert np.all(cs.log_capital(lower) >= cs.threshold)  # the reported value was rejected
    assert np.all(cs.log_capital(np.minimum(lower + 1e-9, 1)) < cs.threshold + 1e-6)
    sequence = betting_confidence_sequence(scores, 0.01, geometric_looks(64, 4096))
    assert sequence.shape == (3, 7) and np.all(np.diff(sequence, axis=1) >= 0)


def test_betting_fixed_n_close_to_clopper_pearson_on_votes():
    rng = np.random.default_rng(5)
    n = 20_000
    for p in [0.7, 0.95, 0.999, 1.0]:
        votes = (rng.random((3, n)) < p).astype(float)
        cp = mahalanobis_radius(clopper_pearson_lower(votes.sum(axis=1), n, 0.001))
        for bound in (betting_lower_bound(votes, 0.001), combined_soft_lower_bound(votes, 0.001)):
            loss = 1 - mahalanobis_radius(bound) / cp
            assert np.all(loss < 0.025), (p, loss)


@pytest.mark.slow
@pytest.mark.parametrize("law", ["bernoulli", "beta"])
def test_confidence_sequence_time_uniform_validity(law):
    rng = np.random.default_rng(6)
    alpha, reps = 0.1, 3000
    looks = geometric_looks(4, 512)
    if law == "bernoulli":
        mu = 0.9
        scores = (rng.random((reps, 512)) < mu).astype(float)
    else:
        mu = 5 / 6
        scores = rng.beta(5, 1, (reps, 512))
    lower = betting_confidence_sequence(scores, alpha, looks)
    rate = np.mean(np.any(lower > mu, axis=1))
    limit = _failure_limit(alpha, reps)
    assert rate <= limit
    # the naive version -- a fixed-n Clopper-Pearson bound at every look -- fails
    k = np.cumsum((rng.random((reps, 512)) < 0.9), axis=1)[:, looks - 1]
    naive = clopper_pearson_lower(k, looks[None, :], alpha)
    assert np.mean(np.any(naive > 0.9, axis=1)) > 2 * alpha


# ------------------------------------------------------------------ certifier


def _drive(cert, p, rng, soft=False, scores=None):
    """Feed Bernoulli(p) votes look by look (or given score streams) until all rows stop."""
    rows = np.arange(cert.n_rows)
    while rows.size:
        look = cert.next_look(rows)
        seen = cert.n_seen[rows]
        width = look - seen
        if scores is not None:
            w = int(width[0])
            assert np.all(width == w)
            cert.update(rows, scores[rows, seen[0] : seen[0] + w])
        elif soft:
            w = int(width[0])
            cert.update(rows, (rng.random((rows.size, w)) < p[rows, None]).astype(float))
        else:
            cert.update(rows, rng.binomial(width, p[rows]), width)
        rows = rows[~cert.decide(rows, look)]
    return cert.result()


def test_fixed_mode_is_clopper_pearson():
    rng = np.random.default_rng(7)
    p = np.array([1.0, 0.99, 0.7, 0.4])
    k = rng.binomial(5000, p)
    cert = SequentialCertifier(4, budget=5000, alpha=0.001)
    assert_array_equal(cert.looks(), [5000])
    cert.update(np.arange(4), k, 5000)
    assert np.all(cert.decide(np.arange(4), 5000))
    res = cert.result()
    assert_array_equal(res.p_lower, clopper_pearson_lower(k, 5000, 0.001))
    assert res.status.tolist() == ["exhausted"] * 4
    assert_array_equal(res.n_draws, 5000)


def test_target_mode_stops_early_and_reports_valid_radius():
    rng = np.random.default_rng(8)
    p = np.concatenate([np.ones(50), np.full(50, 0.999), np.full(50, 0.3)])
    for method in ("spending", "betting"):
        cert = SequentialCertifier(
            p.size, budget=100_000, alpha=0.001, target_p=stats.norm.cdf(1.0), method=method
        )
        res = _drive(cert, p, rng)
        assert np.all(res.certified[:100])
        assert np.all(res.radius[:100] >= 1.0)
        assert np.all(res.p_lower[res.certified] >= stats.norm.cdf(1.0))
        assert np.all(res.status[100:] == "futile")
        assert res.n_draws[:100].max() <= 128 and res.n_draws[100:].max() <= 64


def test_per_row_targets():
    rng = np.random.default_rng(9)
    target = np.array([0.6, 0.99, 0.999999])
    cert = SequentialCertifier(3, budget=2000, alpha=0.01, target_p=target, first_look=16)
    res = _drive(cert, np.ones(3), rng)
    assert res.status.tolist() == ["certified", "certified", "futile"]
    assert res.n_draws[0] < res.n_draws[1]


def test_soft_one_hot_betting_equals_hard_betting():
    rng = np.random.default_rng(10)
    p = np.array([1.0, 0.9, 0.85, 0.6])
    budget = 4096
    votes = (rng.random((4, budget)) < p[:, None]).astype(float)
    results = []
    for vote in ("hard", "soft"):
        # futility by an upper bound differs on purpose (Clopper-Pearson for votes,
        # relative entropy for scores): switch it off, keep the betting rule
        cert = SequentialCertifier(
            4,
            budget=budget,
            alpha=0.01,
            vote=vote,
            target_p=0.8,
            method="betting",
            first_look=8,
            futility_alpha=1e-15,
        )
        rows = np.arange(4)
        while rows.size:
            look = cert.next_look(rows)
            seen = int(cert.n_seen[rows][0])
            block = votes[rows, seen : look[0]]
            if vote == "hard":
                cert.update(rows, block.astype(int))  # per-draw 0/1 votes
            else:
                cert.update(rows, block)
            rows = rows[~cert.decide(rows, look)]
        results.append(cert.result())
    assert_array_equal(results[0].p_lower, results[1].p_lower)
    assert_array_equal(results[0].n_draws, results[1].n_draws)
    assert_array_equal(results[0].status, results[1].status)


@pytest.mark.parametrize("method", ["spending", "betting"])
def test_certifier_soft_block_splitting_invariance(method):
    rng = np.random.default_rng(12)
    budget = 1024
    scores = rng.beta(12, 1, (5, budget))
    out = []
    for pieces in (1, 3):
        cert = SequentialCertifier(
            5, budget=budget, alpha=0.01, vote="soft", radius_tol=0.05, method=method, first_look=16
        )
        rows = np.arange(5)
        while rows.size:
            look = int(cert.next_look(rows)[0])
            seen = int(cert.n_seen[rows][0])
            cuts = np.linspace(seen, look, pieces + 1).astype(int)
            for a, b in zip(cuts[:-1], cuts[1:]):
                cert.update(rows, scores[rows, a:b])
            rows = rows[~cert.decide(rows, look)]
        out.append(cert.result())
    assert_array_equal(out[0].p_lower, out[1].p_lower)
    assert_array_equal(out[0].n_draws, out[1].n_draws)


def test_tol_mode_saves_draws_and_loses_little():
    rng = np.random.default_rng(13)
    p = 1 - 10 ** rng.uniform(-3, -1.5, 300)
    budget = 20_000
    cert = SequentialCertifier(p.size, budget=budget, alpha=0.001, radius_tol=0.05)
    res = _drive(cert, p, rng)
    full = mahalanobis_radius(clopper_pearson_lower(np.round(p * budget), budget, 0.001))
    assert res.n_draws.mean() < budget / 2.5
    assert np.mean(1 - res.radius / full) < 0.08
    assert set(res.status) <= {"certified", "exhausted", "futile"}


def test_certifier_pickles_mid_run():
    rng = np.random.default_rng(14)
    p = np.array([1.0, 0.95, 0.9])
    cert = SequentialCertifier(
        3, budget=4096, alpha=0.01, target_p=0.93, method="betting", first_look=16
    )
    rows = np.arange(3)
    look = cert.next_look(rows)
    cert.update(rows, rng.binomial(look, p), look)
    cert.decide(rows, look)
    clone = pickle.loads(pickle.dumps(cert))
    seed = np.random.default_rng(15)
    a = _drive(cert, p, np.random.default_rng(16)) if cert.active().any() else cert.result()
    b = _drive(clone, p, np.random.default_rng(16)) if clone.active().any() else clone.result()
    del seed
    assert_array_equal(a.p_lower, b.p_lower)
    assert_array_equal(a.n_draws, b.n_draws)


def _overclaim(method, vote, rng, reps, p_star=0.8, budget=1024, first=16, alpha=0.1):
    p = np.full(reps, p_star - 1e-9)
    cert = SequentialCertifier(
        reps,
        budget=budget,
        alpha=alpha,
        vote=vote,
        target_p=p_star,
        method=method,
        first_look=first,
    )
    res = _drive(cert, p, rng, soft=vote == "soft")
    assert np.all(res.p_lower[res.certified] >= p_star)
    return res.certified.mean()


@pytest.mark.slow
@pytest.mark.parametrize(
    "vote, method",
    [("hard", "spending"), ("hard", "betting"), ("soft", "spending"), ("soft", "betting")],
)
def test_sequential_test_valid_at_threshold(vote, method):
    rng = np.random.default_rng(17)
    reps = 6000 if vote == "hard" else 2500
    rate = _overclaim(method, vote, rng, reps)
    assert rate <= _failure_limit(0.1, reps), rate


@pytest.mark.slow
def test_naive_repeated_looks_overclaim():
    """Clopper-Pearson at the full alpha at every look, stopped at the first success."""
    rng = np.random.default_rng(18)
    reps, alpha, p_star = 6000, 0.1, 0.8
    looks = geometric_looks(16, 1024)
    widths = np.diff(np.concatenate([[0], looks]))
    k = np.cumsum(rng.binomial(widths[None, :], p_star - 1e-9, size=(reps, looks.size)), axis=1)
    naive = np.any(clopper_pearson_lower(k, looks[None, :], alpha) >= p_star, axis=1).mean()
    assert naive > 2 * _failure_limit(alpha, reps)
    # the corrected version on the same counts does not
    corrected = np.any(
        clopper_pearson_lower(k, looks[None, :], alpha / looks.size) >= p_star, axis=1
    ).mean()
    assert corrected <= _failure_limit(alpha, reps)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spending", "betting"])
def test_tol_mode_bound_valid(method):
    rng = np.random.default_rng(19)
    reps = 4000
    p = rng.choice([0.7, 0.9, 0.97], size=reps)
    cert = SequentialCertifier(
        reps, budget=1024, alpha=0.1, radius_tol=0.1, method=method, first_look=16
    )
    res = _drive(cert, p, rng)
    assert np.mean(res.p_lower > p) <= _failure_limit(0.1, reps)


# ------------------------------------------------------------------ predictor


def test_predictor_single_look_is_predict():
    rng = np.random.default_rng(20)
    probs = np.array([[0.5, 0.3, 0.2], [0.4, 0.39, 0.21], [0.34, 0.33, 0.33], [0.0, 0.0, 1.0]])
    counts = np.array([rng.multinomial(2000, q) for q in probs])
    pred = SequentialPredictor(4, 3, budget=2000, alpha=0.01, first_look=2000)
    pred.update(np.arange(4), counts, 2000)
    assert np.all(pred.decide(np.arange(4), 2000))
    top, abstained, n = pred.result()
    order = np.argsort(-counts, axis=1, kind="stable")
    expected = (
        binomial_test_pvalue(counts[np.arange(4), order[:, 0]], counts[np.arange(4), order[:, 1]])
        > 0.01
    )
    assert_array_equal(top, order[:, 0])
    assert_array_equal(abstained, expected)
    # soft: the Hoeffding test of the shifted difference at alpha / (C (C - 1))
    sums = counts * 0.9 + 0.1 * 2000 / 3
    soft = SequentialPredictor(4, 3, budget=2000, alpha=0.01, vote="soft", first_look=2000)
    soft.update(np.arange(4), sums, 2000)
    soft.decide(np.arange(4), 2000)
    s_order = np.argsort(-sums, axis=1, kind="stable")
    diff = sums[np.arange(4), s_order[:, 0]] - sums[np.arange(4), s_order[:, 1]]
    expected = hoeffding_lower(0.5 * (diff / 2000 + 1), 2000, 0.01 / 6) <= 0.5
    assert_array_equal(soft.result()[1], expected)


def _drive_predictor(pred, probs, rng):
    rows = np.arange(pred.n_rows)
    while rows.size:
        look = pred.next_look(rows)
        width = look - pred.n_seen[rows]
        counts = (
            np.stack([rng.multinomial(w, probs[r]) for w, r in zip(width, rows)])
            if rows.size < 50
            else None
        )
        if counts is None:
            # binary problems: binomial draws are faster
            first = rng.binomial(width, probs[rows, 0])
            counts = np.stack([first, width - first], axis=1)
        pred.update(rows, counts, width)
        rows = rows[~pred.decide(rows, look)]
    return pred.result()


def test_predictor_stops_early_and_abstains_early():
    rng = np.random.default_rng(21)
    probs = np.array([[0.99, 0.01], [0.5, 0.5], [0.7, 0.3]])
    pred = SequentialPredictor(3, 2, budget=100_000, alpha=0.001)
    top, abstained, n = _drive_predictor(pred, probs, rng)
    assert top[0] == 0 and not abstained[0] and n[0] == 100
    assert abstained[1]
    assert top[2] == 0 and not abstained[2] and n[2] <= 400


@pytest.mark.slow
def test_predictor_wrong_class_rate():
    rng = np.random.default_rng(22)
    reps, alpha = 6000, 0.1
    probs = np.tile([0.49, 0.51], (reps, 1))  # class 1 is the smoothed prediction
    pred = SequentialPredictor(reps, 2, budget=1024, alpha=alpha, first_look=16)
    top, abstained, _ = _drive_predictor(pred, probs, rng)
    wrong = np.mean(~abstained & (top == 0))
    assert wrong <= _failure_limit(alpha, reps)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(budget=0), "budget"),
        (dict(budget=1.5), "budget"),
        (dict(alpha=0.0), "alpha"),
        (dict(vote="mean"), "vote"),
        (dict(method="cp"), "method"),
        (dict(target_p=1.0), "target_p"),
        (dict(radius_tol=0.0), "radius_tol"),
        (dict(target_p=0.8, radius_tol=0.05), "target_p or radius_tol"),
        (dict(first_look=0, target_p=0.8), "first_look"),
        (dict(ratio=1.0, target_p=0.8), "ratio"),
        (dict(prior=(1.0, 0.0), method="betting"), "prior"),
        (dict(spending="geometric", target_p=0.8), "schedule"),
        (dict(spending=0.5, method="betting", target_p=0.8), "spending"),
        (dict(predictor="mean", radius_tol=0.1), "predictor"),
        (dict(soft_bound="cp"), "soft_bound"),
        (dict(futility_alpha=2.0, target_p=0.8), "alpha"),
    ],
)
def test_certifier_bad_parameters(kwargs, word):
    with pytest.raises(ValueError, match=word):
        SequentialCertifier(3, **kwargs)


def test_certifier_bad_feeding():
    cert = SequentialCertifier(3, budget=1000, alpha=0.01, target_p=0.9, first_look=10)
    with pytest.raises(ValueError, match="rows"):
        cert.update([0, 0], [1, 1], 5)
    with pytest.raises(ValueError, match="rows"):
        cert.update([5], [1], 5)
    with pytest.raises(ValueError, match="n_draws"):
        cert.update([0, 1], [1, 1])
    with pytest.raises(ValueError, match="counts"):
        cert.update([0, 1], [6, 1], 5)
    with pytest.raises(ValueError, match="next look"):
        cert.update([0, 1], [11, 1], 11)
    cert.update([0, 1, 2], [10, 10, 0], 10)
    with pytest.raises(ValueError, match="decide"):
        cert.update([0], [1], 1)
    with pytest.raises(ValueError, match="n_seen"):
        cert.decide([0, 1, 2], 9)
    stop = cert.decide([0, 1, 2], 10)
    assert stop.dtype == bool and stop.shape == (3,)
    stopped = np.flatnonzero(stop)
    if stopped.size:
        with pytest.raises(ValueError, match="stopped"):
            cert.update(stopped[:1], [1], 1)
    soft = SequentialCertifier(
        2, budget=100, alpha=0.01, vote="soft", radius_tol=0.1, first_look=10
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        soft.update([0, 1], np.full((2, 5), 1.5))
    with pytest.raises(ValueError, match="2-D"):
        soft.update([0, 1], np.ones(2))


def test_sequence_and_bound_bad_input():
    with pytest.raises(ValueError, match="looks"):
        BettingConfidenceSequence(2, [10, 5], 0.1)
    with pytest.raises(ValueError, match="target"):
        BettingConfidenceSequence(2, [10], 0.1, target=1.5)
    with pytest.raises(ValueError, match="alpha"):
        BettingConfidenceSequence(2, [10], 1.0)
    cs = BettingConfidenceSequence(2, [10, 20], 0.1)
    with pytest.raises(ValueError, match="next look"):
        cs.update_counts([0, 1], [3, 3], 11)
    with pytest.raises(ValueError, match="last look"):
        cs.update([0, 1], np.ones((2, 21)))
    with pytest.raises(ValueError, match="mean"):
        kl_lower_bound(1.2, 10, 0.1)
    with pytest.raises(ValueError, match="draws n"):
        bentkus_lower_bound(0.5, 0, 0.1)
    with pytest.raises(ValueError, match="integer"):
        bentkus_lower_bound(0.5, 10.5, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        kl_lower_bound(0.5, 10, 0.0)
    with pytest.raises(ValueError, match="betting_share"):
        combined_soft_lower_bound(np.ones((1, 5)), 0.1, betting_share=1.0)
    with pytest.raises(ValueError, match="n_classes"):
        SequentialPredictor(2, 1)
    pred = SequentialPredictor(2, 2, budget=100, first_look=10)
    with pytest.raises(ValueError, match="sums"):
        pred.update([0, 1], np.ones((2, 3)), 10)
    with pytest.raises(ValueError, match="adding up"):
        pred.update([0, 1], np.array([[5, 4], [5, 5]]), 10)
