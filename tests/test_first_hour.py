"""What a new user trips over: refused base models, a scorer that says why it is 0, ..."""

import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_moons
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from smoothcert import CertifiedRegion, SmoothedClassifier, make_certified_scorer
from smoothcert.exceptions import CostWarning, UnreachableRadiusWarning


@pytest.fixture(scope="module")
def moons():
    return make_moons(80, noise=0.1, random_state=0)


# ------------------------------------------------------- non-classifier bases
@pytest.mark.parametrize(
    "base, kind",
    [(Ridge(), "regressor"), (LinearRegression(), "regressor"), (KMeans(2, n_init=1), "clusterer")],
)
@pytest.mark.parametrize("cls", [SmoothedClassifier, CertifiedRegion])
def test_non_classifiers_are_refused_in_fit(moons, cls, base, kind, no_sampling_engine):
    X, y = moons
    with pytest.raises(TypeError, match=f"{type(base).__name__} is a {kind}"):
        cls(base).fit(X, y)
    with pytest.raises(TypeError, match="must be a classifier"):
        cls(FrozenEstimator(base.fit(X, y))).fit(X, y)


def test_classifiers_in_wrappers_are_accepted(moons):
    X, y = moons
    for base in (make_pipeline(StandardScaler(), LogisticRegression()),
                 GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=2),
                 FrozenEstimator(LogisticRegression().fit(X, y))):
        SmoothedClassifier(base, n_samples=50).fit(X, y)


# ---------------------------------------------------- the scorer's silent zero
def test_scorer_warns_once_when_no_input_reaches_the_radius(moons):
    X, y = moons
    X = X * [1.0, 1e-3]  # one feature with a tiny scale
    pipe = make_pipeline(StandardScaler(), SmoothedClassifier(n_samples=200, random_state=0))
    scorer = make_certified_scorer(0.25)
    search = GridSearchCV(pipe, {"smoothedclassifier__sigma": [0.25, 0.5]}, scoring=scorer, cv=2)
    with pytest.warns(UnreachableRadiusWarning, match=r"largest l2 radius reached is (0\.00|[0-9.]+e-0[4-9])") as rec:
        search.fit(X, y)
    assert sum(issubclass(w.category, UnreachableRadiusWarning) for w in rec) == 1
    assert "raw feature units" in str(rec[0].message)
    assert np.all(search.cv_results_["mean_test_score"] == 0)


def test_scorer_is_quiet_when_the_radius_is_reachable(moons):
    X, y = moons
    clf = SmoothedClassifier(LogisticRegression(), n_samples=500, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreachableRadiusWarning)
        assert make_certified_scorer(0.05)(clf, X, y) > 0


def test_region_score_warns_too(moons):
    X, y = moons
    region = CertifiedRegion(LogisticRegression(), method="isotropic", n_iter=1, n_samples_optim=16,
                             n_samples=100, radius=50.0, random_state=0, guarantee="per-covariance").fit(X, y)
    with pytest.warns(UnreachableRadiusWarning, match="CertifiedRegion.score: no input reaches"):
        assert region.score(X[:10], y[:10]) == 0.0


# ------------------------------------------------------------ cost made visible
def test_a_huge_call_warns_before_any_draw(moons, no_sampling_engine):
    X, y = moons
    clf = SmoothedClassifier(LogisticRegression(), n_samples=10**12).fit(X, y)
    with pytest.warns(CostWarning, match=r"1e\+13 base-model predictions.*radius=R"):
        with pytest.raises(AssertionError, match="noise was drawn"):
            clf.certify(X[:10])
    region = CertifiedRegion(LogisticRegression(), n_iter=10**7, n_samples=100, guarantee="per-covariance").fit(X, y)
    with pytest.warns(CostWarning, match="n_iter"):
        with pytest.raises(AssertionError, match="noise was drawn"):
            region.optimize_covariance(X[:10])


def test_ordinary_calls_do_not_warn(moons):
    X, y = moons
    clf = SmoothedClassifier(LogisticRegression(), n_samples=1000, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CostWarning)
        clf.certify(X[:5])


class _Recorder:
    """Stands in for the progress bar: records every update."""

    instances = []

    def __init__(self, total, desc, verbose):
        self.total, self.desc, self.updates = total, desc, []
        _Recorder.instances.append(self)

    def update(self, n):
        self.updates.append(n)

    @property
    def done(self):
        return sum(self.updates)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def test_one_progress_bar_covers_the_search_and_the_certification(moons, monkeypatch):
    import smoothcert._estimators._base as base

    X, y = moons
    monkeypatch.setattr(base, "Progress", _Recorder)
    _Recorder.instances.clear()
    region = CertifiedRegion(LogisticRegression(), method="diagonal", n_iter=3, n_samples_optim=16,
                             n_samples=200, n_samples_selection=10, verbose=1,
                             random_state=0, guarantee="per-covariance").fit(X, y)
    cert = region.certify(X[:6])
    (bar,) = _Recorder.instances
    assert bar.desc == "smoothcert certify"
    search = cert.search_info["n_base_predictions"]
    assert bar.total == 6 * (search + 10 + 200)
    # the search's predictions are counted (before certification: many small blocks)
    certification = 6 * 10 + cert.n_draws.sum()
    assert certification < bar.done <= bar.total
    # every pass of the search shows: 2 stages of n_iter + 1 passes and the two
    # passes of the end-of-stage check, then the selection and certification blocks
    assert len(bar.updates) >= 2 * (3 + 1 + 2) + 2
    assert sum(bar.updates[: 2 * (3 + 1 + 2)]) == 6 * search


def test_progress_bar_counts_the_passes_rows_skip_once_converged(moons, monkeypatch):
    # the isotropic stage's rows stop once converged: the bar still ends at
    # its total (the skipped passes are counted when a row stops)
    import smoothcert._estimators._base as base

    X, y = moons
    monkeypatch.setattr(base, "Progress", _Recorder)
    _Recorder.instances.clear()
    model = LogisticRegression().fit(X, y)
    # inputs far from the boundary: their noise grows to the cap, where the
    # objective is flat and every row stops
    far = X[np.argsort(-np.abs(model.decision_function(X)))[:6]]
    region = CertifiedRegion(LogisticRegression(), method="isotropic", n_iter=200, n_samples_optim=16,
                             n_samples=200, n_samples_selection=10, verbose=1,
                             random_state=0, guarantee="per-covariance").fit(X, y)
    cert = region.certify(far)
    (bar,) = _Recorder.instances
    search = cert.search_info["n_base_predictions"]
    assert bar.total == 6 * (search + 10 + 200)
    assert bar.done == bar.total
    # fewer passes than the bound were made
    assert len(bar.updates) < 200 + 1 + 2 + 2


def test_progress_bar_shows_a_time_estimate(moons, capsys):
    pytest.importorskip("tqdm")
    X, y = moons
    region = CertifiedRegion(LogisticRegression(), method="isotropic", n_iter=2, n_samples_optim=16,
                             n_samples=2000, verbose=1, random_state=0, guarantee="per-covariance").fit(X, y)
    capsys.readouterr()
    region.certify(X[:20])
    err = capsys.readouterr().err
    assert "smoothcert certify" in err and "pred" in err and "<" in err  # tqdm's [elapsed<remaining]


# ------------------------------------------------- understanding what happened
def test_search_info_states_the_stages_and_their_cost(moons):
    X, y = moons
    region = CertifiedRegion(LogisticRegression(), method="riemannian", n_iter=4,
                             n_samples_optim=32, n_samples=200, random_state=0, guarantee="per-covariance").fit(X, y)
    info = region.certify(X[:12]).search_info
    assert set(info) == {"stages", "seconds_per_iteration", "n_base_predictions"}
    assert info["stages"] == ["isotropic", "diagonal", "full"]
    # per input: 3 stages of n_iter + 1 passes of n_samples_optim draws and an
    # end-of-stage check on 2 * 4 * n_samples_optim draws
    assert info["n_base_predictions"] == 3 * (4 + 1 + 8) * 32
    assert set(info["seconds_per_iteration"]) == set(info["stages"])
    for seconds in info["seconds_per_iteration"].values():
        assert len(seconds) >= 1 and all(np.isfinite(s) and s >= 0 for s in seconds)
    # the same stages and counts whatever the number of workers (one timing per chunk)
    parallel = region.set_params(n_jobs=2).certify(X[:12]).search_info
    assert parallel["stages"] == info["stages"]
    assert parallel["n_base_predictions"] == info["n_base_predictions"]
    assert set(parallel["seconds_per_iteration"]) == set(info["stages"])
    # no search, no cost
    fixed = region.set_params(method="fixed", n_jobs=None).certify(X[:3]).search_info
    assert fixed["stages"] == [] and fixed["n_base_predictions"] == 0


# ---------------------------------------------------------------- threads
def test_workers_limit_nested_thread_pools():
    from threadpoolctl import threadpool_info

    from smoothcert._estimators._parallel import _run_chunk, worker_threads

    def work(X, progress):
        progress.update(len(X))
        return [lib["num_threads"] for lib in threadpool_info()]

    threads, count = _run_chunk(work, np.zeros((3, 2)), 1)
    assert count == 3 and threads and all(t == 1 for t in threads)
    assert worker_threads(2) >= 1 and worker_threads(10**6) == 1


@pytest.mark.parametrize("cls", [SmoothedClassifier, CertifiedRegion])
def test_a_frozen_base_is_wrapped_without_labels(moons, cls):
    X, y = moons
    base = LogisticRegression().fit(X, np.array(["a", "b"])[y])
    est = cls(FrozenEstimator(base), n_samples=100, random_state=0).fit(X)
    assert list(est.classes_) == ["a", "b"] and est.n_features_in_ == 2
    assert set(est.predict_base(X)) <= {"a", "b"}
    with pytest.raises(ValueError, match="requires y"):
        cls(LogisticRegression()).fit(X)


# ------------------------------------------------ honest progress and cost
class _Watched:
    """Wraps the real Progress: records the bar's count and total when it closes."""

    closed = []

    def __new__(cls, total, desc, verbose):
        from smoothcert._engine._progress import Progress

        class Watched(Progress):
            def close(self):
                if self._bar is not None:
                    _Watched.closed.append((self._bar.n, self._bar.total, self.updates))
                super().close()

            def update(self, n):
                self.updates = getattr(self, "updates", 0) + 1
                super().update(n)

        return Watched(total, desc, verbose)


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_the_region_bar_ends_at_100_percent(moons, monkeypatch, n_jobs):
    pytest.importorskip("tqdm")
    import smoothcert._estimators._base as base

    X, y = moons
    monkeypatch.setattr(base, "Progress", _Watched)
    _Watched.closed.clear()
    region = CertifiedRegion(LogisticRegression(), method="diagonal", n_iter=3, n_samples_optim=16,
                             n_samples=300, sampling="sequential", verbose=1, n_jobs=n_jobs,
                             random_state=0, guarantee="per-covariance").fit(X, y)
    cert = region.certify(X[:20])
    ((n, total, updates),) = _Watched.closed
    assert n == total > 0  # the bar ends at 100 %
    # it counted what was drawn (the search and the certification), not the bound
    assert 20 * 100 + cert.n_draws.sum() < n < 20 * (region._search_cost() + 100 + 300)
    if n_jobs == 2:
        assert updates >= 10  # chunk by chunk as they finish, not once at the end


def test_parallel_progress_advances_chunk_by_chunk_and_revises_its_total():
    from smoothcert._engine._progress import Progress
    from smoothcert._estimators._parallel import run_in_chunks

    def work(X, progress):
        progress.update(3 * len(X))  # 3 predictions per row where 10 were budgeted
        return [X[:, 0]]

    X = np.arange(40.0).reshape(20, 2)
    totals = []

    class Spy(Progress):
        def revise_total(self, total):
            super().revise_total(total)
            totals.append(self.total)

    with Spy(10 * 20, "", verbose=False) as progress:
        parts = run_in_chunks(work, X, 2, progress)
    assert np.concatenate([p[0] for p in parts]).tolist() == X[:, 0].tolist()  # row order
    assert len(totals) == 10 and all(t == 60 for t in totals)  # revised from the first chunk
    assert progress.done == progress.total == 60


def test_cost_warning_is_based_on_the_projected_time(moons, monkeypatch, no_sampling_engine):
    import smoothcert._engine._progress as progress

    X, y = moons
    clf = SmoothedClassifier(LogisticRegression(), n_samples=100_000).fit(X, y)
    # 10 inputs x 100,100 predictions: silent at a million predictions per second...
    monkeypatch.setattr(progress, "prediction_seconds", lambda predict, X: 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CostWarning)
        with pytest.raises(AssertionError, match="noise was drawn"):
            clf.certify(X[:10])
    # ... but about 17 minutes at a thousand per second: a warning before any draw
    monkeypatch.setattr(progress, "prediction_seconds", lambda predict, X: 1e-3)
    with pytest.warns(CostWarning, match=r"1e\+06 base-model predictions.*1e\+03 predictions "
                                         r"per second.*16.7 minutes"):
        with pytest.raises(AssertionError, match="noise was drawn"):
            clf.certify(X[:10])
    # a million search iterations are long even with an infinitely fast model
    monkeypatch.setattr(progress, "prediction_seconds", lambda predict, X: 1e-12)
    region = CertifiedRegion(LogisticRegression(), n_iter=10**6, n_samples=100, guarantee="per-covariance").fit(X, y)
    with pytest.warns(CostWarning, match="covariance search's iterations at least"):
        with pytest.raises(AssertionError, match="noise was drawn"):
            region.optimize_covariance(X[:10])
    # two workers share it: 8.3 minutes, silent
    with warnings.catch_warnings():
        warnings.simplefilter("error", CostWarning)
        assert progress.warn_if_costly(1_001_000, 1e-3, "call", "", n_workers=2) == 500.5


def test_prediction_seconds_times_the_base_model():
    from smoothcert._engine._progress import prediction_seconds

    calls = []

    def predict(points):
        calls.append(points.shape)
        return np.zeros(len(points))

    seconds = prediction_seconds(predict, np.ones((3, 4)), rows=100)
    assert calls == [(64, 4), (100, 4)] and 0 < seconds < 1e-3
