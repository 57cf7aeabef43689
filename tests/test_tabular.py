"""Tabular data: noise on chosen columns, ColumnTransformer pull-back, encoded columns."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer, make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    QuantileTransformer,
    StandardScaler,
)

from smoothcert import (
    Certificate,
    CertificateMemory,
    CertifiedRegion,
    SmoothedClassifier,
    certified_accuracy,
    certify,
    make_certified_scorer,
)
from smoothcert._certify._affine import affine_map
from smoothcert.exceptions import EncodedNoiseWarning


def _linear_data(n=200, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(2.0, 0.5, d)
    y = (X @ np.array([1.0, -2.0, 0.5, 3.0, -1.0])[:d] + 0.3 > 0).astype(int)
    return X, y


def _frame(n=200, seed=0):
    X, y = _linear_data(n, 4, seed)
    frame = pd.DataFrame(X, columns=["age", "income", "height", "score"])
    return frame, y


def _subspace_distance(estimator, X, columns):
    """Exact l2 distance to a logistic regression's boundary moving only ``columns``."""
    w, b = estimator.coef_[0], estimator.intercept_[0]
    return np.abs(X @ w + b) / np.linalg.norm(w[columns])


class _Recorder(ClassifierMixin, BaseEstimator):
    """A classifier that remembers every point it was asked about (sign of column 0)."""

    seen = []

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        X = np.asarray(X)
        _Recorder.seen.append(X.copy())
        return self.classes_[(X[:, 0] > 0).astype(int)]


# ------------------------------------------------------------- noise_features
def test_draws_perturb_only_the_chosen_columns():
    X, y = _linear_data(20)
    _Recorder.seen = []
    clf = SmoothedClassifier(_Recorder(), n_samples=50, noise_features=[0, 3], random_state=0)
    clf.fit(X, y).certify(X[:3])
    points = np.concatenate(_Recorder.seen)
    assert points.shape[0] >= 3 * 150
    fixed = [1, 2, 4]
    # every noisy point keeps the fixed columns of one of the rows, exactly
    rows = {tuple(r) for r in X[:3, fixed]}
    assert {tuple(p) for p in points[:, fixed]} <= rows
    assert np.unique(points[:, 0]).size > 100 and np.unique(points[:, 3]).size > 100


@pytest.mark.parametrize("method", ["fixed", "diagonal"])
def test_region_draws_perturb_only_the_chosen_columns(method):
    X, y = _linear_data(20)
    clf = CertifiedRegion(_Recorder(), method=method, n_iter=2, n_samples_optim=16, n_samples=50,
                          noise_features=[1], random_state=0, guarantee="per-covariance").fit(X, y)
    _Recorder.seen = []
    cert = clf.certify(X[:2])
    points = np.concatenate(_Recorder.seen)
    assert_array_equal(np.unique(points[:, [0, 2, 3, 4]], axis=0),
                       np.unique(X[:2, [0, 2, 3, 4]], axis=0))
    assert cert.covariances.n_features == 1
    assert_array_equal(cert.noise_features, [1])


def test_noise_augmentation_perturbs_only_the_chosen_columns():
    X, y = _linear_data(30)
    _Recorder.seen = []

    class Keep(_Recorder):
        def fit(self, X, y):
            _Recorder.seen.append(np.asarray(X).copy())
            return super().fit(X, y)

    SmoothedClassifier(Keep(), noise_augmentation=2, noise_features=[2], random_state=0).fit(X, y)
    trained = _Recorder.seen[0]
    assert_array_equal(trained[:, [0, 1, 3, 4]], np.tile(X[:, [0, 1, 3, 4]], (2, 1)))
    assert not np.array_equal(trained[:, 2], np.tile(X[:, 2], 2))


def test_subspace_certificates_do_not_depend_on_batches_or_jobs():
    X, y = _linear_data(24)
    kw = dict(n_samples=300, noise_features=[1, 4], random_state=0)
    ref = SmoothedClassifier(RandomForestClassifier(5, random_state=0), **kw).fit(X, y)
    expected = ref.certify(X)
    for params in ({"batch_size": 97}, {"n_jobs": 2}):
        cert = clone_with(ref, **params).certify(X[::-1])
        assert_array_equal(cert.radius[::-1], expected.radius)
        assert_array_equal(cert.noise_features, [1, 4])


def clone_with(fitted, **params):
    """A fitted estimator's copy with other inference parameters."""
    return pickle.loads(pickle.dumps(fitted)).set_params(**params)


@pytest.mark.parametrize("columns, beyond_full", [([0, 2], True), ([1], True), ([0, 1, 3, 4], False)])
def test_radius_never_exceeds_the_exact_subspace_distance(columns, beyond_full):
    # alpha = 1e-6: over 400 inputs, an over-claim is allowed with probability < 4e-4
    X, y = _linear_data(400)
    clf = SmoothedClassifier(LogisticRegression(), sigma=0.5, n_samples=2000, alpha=1e-6,
                             noise_features=columns, random_state=0).fit(X, y)
    cert = clf.certify(X)
    exact = _subspace_distance(clf.estimator_, X, columns)
    assert cert.certified.sum() > 350
    assert np.all(cert.radius <= exact + 1e-9)
    # not vacuous: the radii follow the subspace distance
    assert np.median(cert.radius[cert.certified] / exact[cert.certified]) > 0.4
    if beyond_full:
        # moving only the chosen columns, the boundary is further than in the full
        # space, and the certificates say so: noise on every column cannot do that
        full = _subspace_distance(clf.estimator_, X, np.arange(5))
        assert np.mean(cert.radius > full) > 0.5


@pytest.mark.parametrize("method", ["isotropic", "riemannian"])
def test_region_radius_never_exceeds_the_exact_subspace_distance(method):
    X, y = _linear_data(60)
    columns = [0, 3]
    clf = CertifiedRegion(LogisticRegression(), method=method, n_iter=4, n_samples_optim=64,
                          n_samples=2000, alpha=1e-6, noise_features=columns, random_state=0, guarantee="per-covariance")
    cert = clf.fit(X, y).certify(X)
    assert cert.certified.sum() > 30
    assert np.all(cert.radius <= _subspace_distance(clf.estimator_, X, columns) + 1e-9)
    assert cert.covariance.shape == (60, 5, 5)
    assert np.all(cert.covariance[:, [1, 2, 4], :] == 0)
    assert clf.optimize_covariance(X[:2]).shape == (2, 5, 5)


def test_sequential_paths_respect_noise_features():
    X, y = _linear_data(200)
    columns = [1, 3]
    clf = SmoothedClassifier(LogisticRegression(), sigma=0.5, n_samples=4000, alpha=1e-6,
                             noise_features=columns, random_state=0).fit(X, y)
    exact = _subspace_distance(clf.estimator_, X, columns)
    cert = clf.certify(X, radius=0.4)
    assert cert.certified.any() and cert.abstained.any()
    assert np.all(cert.radius[cert.certified] >= 0.4)
    assert np.all(exact[cert.certified] >= 0.4)
    seq = clf.set_params(sampling="sequential").certify(X)
    assert np.all(seq.radius <= exact + 1e-9)
    assert_array_equal(seq.noise_features, columns)
    # the scorer measures the subspace radius too
    scorer = make_certified_scorer(0.4)
    assert scorer(clf, X, y) == pytest.approx(certified_accuracy(y, cert, 0.4))


def test_input_forms_give_the_same_certificates():
    frame, y = _frame(80)
    kw = dict(n_samples=300, sigma=0.5, random_state=0)
    expected = SmoothedClassifier(LogisticRegression(), noise_features=[0, 2], **kw).fit(frame, y)
    ref = expected.certify(frame[:10])
    for form in (["age", "height"], [-4, -2], [True, False, True, False], np.array([2, 0]),
                 ("height", "age")):
        clf = SmoothedClassifier(LogisticRegression(), noise_features=form, **kw).fit(frame, y)
        cert = clf.certify(frame[:10])
        assert_array_equal(cert.noise_features, [0, 2])
        assert_array_equal(cert.radius, ref.radius)
        assert_array_equal(cert.prediction, ref.prediction)
    # every column selected is the default
    every = SmoothedClassifier(LogisticRegression(), noise_features=[0, 1, 2, 3], **kw).fit(frame, y)
    default = SmoothedClassifier(LogisticRegression(), **kw).fit(frame, y)
    assert every.certify(frame[:5]).noise_features is None
    assert_array_equal(every.certify(frame[:5]).radius, default.certify(frame[:5]).radius)


@pytest.mark.parametrize(
    "value, error, match",
    [
        ([5], ValueError, r"noise_features has column indices \[5\] out of range for 4"),
        ([-5], ValueError, r"noise_features has column indices \[-5\]"),
        ([], ValueError, "noise_features must select at least one column"),
        ([True, False], ValueError, r"boolean mask must have one entry per feature \(4\)"),
        ([False] * 4, ValueError, "the mask is all False"),
        ([0, 0], ValueError, "selects some columns twice"),
        ([0.5, 1.0], TypeError, "noise_features must hold column indices"),
        ([[0, 1]], ValueError, "noise_features must be a 1-D list"),
        (["age"], ValueError, "was not fitted on a DataFrame"),
        ("age", ValueError, "noise_features"),
    ],
)
def test_bad_noise_features_on_arrays(value, error, match):
    X, y = _linear_data(30, d=4)
    _Recorder.seen = []
    with pytest.raises(error, match=match):
        SmoothedClassifier(_Recorder(), noise_features=value).fit(X, y)
    assert _Recorder.seen == []  # refused before anything was drawn or predicted


def test_bad_noise_features_names_on_frames_and_after_set_params():
    frame, y = _frame(30)
    with pytest.raises(ValueError, match=r"names columns \['weight'\] that are not among"):
        CertifiedRegion(noise_features=["age", "weight"], guarantee="per-covariance").fit(frame, y)
    clf = SmoothedClassifier(n_samples=10, noise_features=["age"]).fit(frame, y)
    clf.set_params(noise_features=[7])
    with pytest.raises(ValueError, match="out of range"):
        clf.certify(frame[:2])


# ------------------------------------------------------------------ certificate
def _subspace_cert():
    return Certificate(
        center=np.array([[0.0, 0.0, 5.0], [1.0, 2.0, 3.0]]), prediction=np.array([0, 1]),
        abstained=np.array([False, False]), covariance=np.array([[1.0, 4.0], [0.25, 0.25]]),
        mahalanobis_radius=np.array([1.0, 2.0]), p_lower=np.array([0.8, 0.9]), alpha=0.001,
        noise_features=[0, 2],
    )


def test_certificate_field_survives_slicing_pickling_and_frames():
    cert = _subspace_cert()
    assert_array_equal(cert.noise_features, [0, 2])
    assert_allclose(cert.radius, [1.0, 1.0])
    assert cert.covariance.shape == (2, 3, 3)
    assert_allclose(cert.covariance[0], np.diag([1.0, 0.0, 4.0]))
    assert_allclose(cert.log_volume[0], np.log(np.pi * 1.0 * 2.0))  # area of a 2-D ellipse
    assert_array_equal(cert[1:].noise_features, [0, 2])
    assert_array_equal(pickle.loads(pickle.dumps(cert)).noise_features, [0, 2])
    frame = cert.to_frame()
    assert list(frame["noise_features"]) == ["0,2", "0,2"]
    assert frame.attrs["noise_features"] == [0, 2]
    assert "noise_features=[0, 2]" in repr(cert)
    # a point that moves a column without noise is outside the region
    inside = cert.contains_points(np.array([[0.5, 0.0, 5.0], [1.0, 2.1, 3.0]]))
    assert_array_equal(inside, [True, False])
    assert "noise_features" not in Certificate(
        center=np.zeros((1, 2)), prediction=[0], abstained=[False], covariance=[1.0],
        mahalanobis_radius=[1.0], p_lower=[0.9], alpha=1e-6).to_frame()


def test_certificate_rejects_inconsistent_noise_features():
    kw = dict(center=np.zeros((1, 3)), prediction=[0], abstained=[False],
              mahalanobis_radius=[1.0], p_lower=[0.9], alpha=1e-6)
    with pytest.raises(ValueError, match="of which 2 receive noise"):
        Certificate(covariance=np.eye(3)[None], noise_features=[0, 1], **kw)
    with pytest.raises(ValueError, match="increasing column indices"):
        Certificate(covariance=[1.0], noise_features=[2, 0], **kw)
    with pytest.raises(ValueError, match="increasing column indices"):
        Certificate(covariance=[1.0], noise_features=[3], **kw)


# -------------------------------------------------------------------- pull-back
def test_pullback_of_a_subspace_certificate_through_a_scaler():
    X, y = _linear_data(300)
    X = X * [1.0, 10.0, 0.1, 3.0, 1.0] + 2.0
    pipe = make_pipeline(StandardScaler(), SmoothedClassifier(
        LogisticRegression(), sigma=0.5, n_samples=2000, alpha=1e-6, noise_features=[1, 2],
        random_state=0)).fit(X, y)
    cert = certify(pipe, X)
    assert_array_equal(cert.noise_features, [1, 2])
    A, a = affine_map(pipe[:-1], 5)
    lr = pipe[-1].estimator_
    g = A.T @ lr.coef_[0]
    exact = np.abs(X @ g + lr.coef_[0] @ a + lr.intercept_[0]) / np.linalg.norm(g[[1, 2]])
    assert cert.certified.sum() > 150
    assert np.all(cert.radius <= exact + 1e-9)
    at = certify(pipe, X[:100], radius=0.5)
    assert np.all(at.radius[at.certified] >= 0.5) and np.all(exact[:100][at.certified] >= 0.5)


# ------------------------------------------------------- ColumnTransformer pull-back
def _ct_pipeline(transformer, noise_features=None, n=300):
    frame, y = _frame(n)
    frame = frame * [1.0, 20.0, 0.2, 3.0] + [0.0, 50.0, 1.0, -2.0]
    pipe = make_pipeline(transformer, SmoothedClassifier(
        LogisticRegression(), sigma=0.5, n_samples=2000, alpha=1e-6,
        noise_features=noise_features, random_state=0)).fit(frame, y)
    return pipe, frame


def _raw_decision(pipe, frame):
    A, a = affine_map(pipe[:-1], frame.shape[1])
    lr = pipe[-1].estimator_
    return frame.to_numpy() @ (A.T @ lr.coef_[0]) + lr.coef_[0] @ a + lr.intercept_[0], A.T @ lr.coef_[0]


@pytest.mark.parametrize(
    "transformer",
    [
        ColumnTransformer([("num", StandardScaler(), ["age", "height"]),
                           ("mm", MinMaxScaler(), [1])], remainder="passthrough"),
        ColumnTransformer([("num", StandardScaler(), [0, 1, 2, 3])]),
        ColumnTransformer([("a", "passthrough", ["score"]), ("b", StandardScaler(), slice(0, 3))]),
        make_column_transformer((StandardScaler(), ["income"]), remainder=MinMaxScaler()),
    ],
)
def test_column_transformer_pullback_is_exact(transformer):
    pipe, frame = _ct_pipeline(transformer)
    cert = certify(pipe, frame)
    u, g = _raw_decision(pipe, frame)
    exact = np.abs(u) / np.linalg.norm(g)
    assert cert.pullback_info["injective"]
    assert cert.certified.sum() > 150
    assert np.all(cert.radius <= exact + 1e-9)
    # the pipeline's preprocessing agrees with the map that was read, and the raw
    # region is the exact preimage of the ball of radius sigma * r: its inscribed
    # ball has radius sigma * r / s_max(A)
    A, a = affine_map(pipe[:-1], 4)
    assert_allclose(pipe[:-1].transform(frame), frame.to_numpy() @ A.T + a, atol=1e-9)
    s_max = np.linalg.svd(A, compute_uv=False).max()
    assert_allclose(cert.radius, 0.5 * cert.mahalanobis_radius / s_max, rtol=1e-9)


def test_column_transformer_with_a_dropped_column_is_a_cylinder():
    transformer = ColumnTransformer([("num", StandardScaler(), ["age", "height"]),
                                     ("gone", "drop", ["income"])], remainder="passthrough")
    pipe, frame = _ct_pipeline(transformer)
    cert = certify(pipe, frame)
    u, g = _raw_decision(pipe, frame)
    assert not cert.pullback_info["injective"]
    assert g[1] == 0  # the dropped column does not matter
    assert np.all(cert.radius <= np.abs(u) / np.linalg.norm(g) + 1e-9)
    with pytest.raises(ValueError, match="unbounded cylinder"):
        certify(pipe, frame, non_injective="raise")


def test_column_transformer_pullback_of_noise_features():
    transformer = ColumnTransformer([("num", StandardScaler(), ["age", "height"]),
                                     ("mm", MinMaxScaler(), ["income"])], remainder="passthrough")
    # transformed columns: age, height, income, score; noise on height and income
    pipe, frame = _ct_pipeline(transformer, noise_features=[1, 2])
    cert = certify(pipe, frame)
    assert_array_equal(cert.noise_features, [1, 2])  # raw: income, height
    u, g = _raw_decision(pipe, frame)
    exact = np.abs(u) / np.linalg.norm(g[[1, 2]])
    assert cert.certified.sum() > 150
    assert np.all(cert.radius <= exact + 1e-9)


@pytest.mark.parametrize(
    "part, name",
    [
        (OneHotEncoder(handle_unknown="ignore", sparse_output=False), "OneHotEncoder"),
        (QuantileTransformer(n_quantiles=20), "QuantileTransformer"),
        (PolynomialFeatures(2), "PolynomialFeatures"),
    ],
)
def test_non_affine_column_transformer_parts_are_named(part, name):
    frame, y = _frame(60)
    pipe = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["age"]), ("odd", part, ["income"])],
                          remainder="passthrough"),
        SmoothedClassifier(LogisticRegression(), n_samples=50, random_state=0),
    ).fit(frame, y)
    with pytest.raises(ValueError, match=rf"step 'columntransformer__odd' \({name}\)") as info:
        certify(pipe, frame[:3])
    message = str(info.value)
    assert "pipeline[-1].certify(pipeline[:-1].transform(X))" in message
    assert "noise_features" in message


def test_string_category_column_is_named_before_conversion():
    frame, y = _frame(60)
    frame["city"] = np.where(y == 1, "Paris", "Lyon")
    pipe = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough"),
        SmoothedClassifier(LogisticRegression(), n_samples=50, random_state=0),
    ).fit(frame, y)
    with pytest.raises(ValueError, match=r"OneHotEncoder.*noise_features"):
        certify(pipe, frame[:3])


@pytest.mark.parametrize("how", ["drop", "remainder"])
def test_text_columns_that_the_column_transformer_drops(how):
    frame, y = _frame(300)
    frame = frame * [1.0, 20.0, 0.2, 3.0] + [0.0, 50.0, 1.0, -2.0]
    frame.insert(1, "city", np.where(np.arange(300) % 3 == 0, "Paris", "Lyon"))
    frame["id"] = [f"row{i}" for i in range(300)]
    numeric = ["age", "income", "height", "score"]
    if how == "drop":
        transformer = ColumnTransformer([("num", StandardScaler(), numeric),
                                         ("gone", "drop", ["city", "id"])])
    else:
        transformer = ColumnTransformer([("num", StandardScaler(), ["age", "height"]),
                                         ("mm", MinMaxScaler(), ["income", "score"])],
                                        remainder="drop")
    pipe = make_pipeline(transformer, SmoothedClassifier(
        LogisticRegression(), sigma=0.5, n_samples=2000, alpha=1e-6, random_state=0)).fit(frame, y)
    cert = certify(pipe, frame)
    # the certificate lives in the raw space of the numeric columns, exactly
    assert cert.pullback_info["raw_columns"] == numeric
    assert cert.pullback_info["injective"]
    assert_allclose(cert.center, frame[numeric].to_numpy())
    assert cert.covariance.shape == (300, 4, 4)
    lr = pipe[-1].estimator_
    numbers = frame[numeric].to_numpy()
    transformed = pipe[:-1].transform(frame)
    # the raw decision function on the numeric columns: linear in them
    direction = np.linalg.lstsq(np.c_[numbers, np.ones(300)], transformed, rcond=None)[0]
    w_raw = direction[:-1] @ lr.coef_[0]
    u = transformed @ lr.coef_[0] + lr.intercept_[0]
    exact = np.abs(u) / np.linalg.norm(w_raw)
    assert cert.certified.sum() > 150
    assert np.all(cert.radius <= exact + 1e-9)
    # the same certificates as the numeric columns alone, through the same map
    assert_array_equal(cert.p_lower, pipe[-1].certify(transformed).p_lower)
    # certify(X, radius=R) in raw units too
    target = certify(pipe, frame[:20], radius=0.1)
    assert target.pullback_info["raw_columns"] == numeric
    assert np.all(target.radius[target.certified] >= 0.1)


def test_text_columns_in_the_smoothing_path_get_our_message():
    frame, y = _frame(60)
    frame["city"] = np.where(y == 1, "Paris", "Lyon")
    base = make_pipeline(ColumnTransformer([("num", StandardScaler(), ["age", "income"])]),
                         LogisticRegression())
    with pytest.raises(ValueError, match=r"not numbers: \['city'\].*noise_features.*"
                                         r"smoothcert.certify\(pipeline, X\)"):
        SmoothedClassifier(base, n_samples=50).fit(frame, y)
    fitted = SmoothedClassifier(base, n_samples=50).fit(frame.drop(columns="city"), y)
    with pytest.raises(ValueError, match=r"not numbers: \['city'\]"):
        fitted.certify(frame)


# -------------------------------------------------------------- encoded columns
def _categorical_frame(n=120, seed=0):
    frame, y = _frame(n, seed)
    frame["city"] = np.random.default_rng(seed).integers(0, 3, n).astype(float)
    frame["grade"] = np.random.default_rng(seed + 1).integers(0, 4, n).astype(float)
    return frame, y


@pytest.mark.parametrize("encoder", [OneHotEncoder(handle_unknown="ignore"),
                                     OrdinalEncoder(handle_unknown="use_encoded_value",
                                                    unknown_value=-1)])
def test_noise_on_encoded_columns_warns_at_fit(encoder):
    frame, y = _categorical_frame()
    base = make_pipeline(
        ColumnTransformer([("cat", encoder, ["city", "grade"])], remainder="passthrough"),
        LogisticRegression(),
    )
    with pytest.warns(EncodedNoiseWarning, match=r"\['city', 'grade'\]") as record:
        SmoothedClassifier(base, n_samples=10).fit(frame, y)
    assert "noise_features=['age', 'income', 'height', 'score']" in str(record[0].message)
    with pytest.warns(EncodedNoiseWarning, match=r"\['grade'\]"):
        CertifiedRegion(base, noise_features=["age", "grade"], guarantee="per-covariance").fit(frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = SmoothedClassifier(base, n_samples=200, random_state=0,
                                 noise_features=["age", "income", "height", "score"])
        cert = clf.fit(frame, y).certify(frame[:5])
    assert_array_equal(cert.noise_features, [0, 1, 2, 3])


def test_noise_on_encoded_columns_of_a_prefitted_pipeline_warns():
    from sklearn.frozen import FrozenEstimator

    frame, y = _categorical_frame()
    fitted = make_pipeline(
        ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])],
                          remainder="passthrough"),
        LogisticRegression(),
    ).fit(frame, y)
    with pytest.warns(EncodedNoiseWarning, match=r"\['city'\]"):
        SmoothedClassifier(FrozenEstimator(fitted), n_samples=10).fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SmoothedClassifier(FrozenEstimator(fitted), n_samples=10,
                           noise_features=[0, 1, 2, 3, 5]).fit(frame, y)


def test_no_warning_without_encoders():
    frame, y = _frame(60)
    base = make_pipeline(ColumnTransformer([("num", StandardScaler(), ["age"])],
                                           remainder="passthrough"), LogisticRegression())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SmoothedClassifier(base, n_samples=10).fit(frame, y)
        SmoothedClassifier(RandomForestClassifier(5), n_samples=10).fit(frame, y)


# ----------------------------------------------------------------- memory, plots
def test_memory_keeps_regions_of_different_fixed_columns_apart():
    rows = np.array([[0.0, 0.0, 1.0], [0.5, 0.0, 2.0], [0.2, 0.0, 1.0], [0.2, 0.3, 1.0]])
    cert = Certificate(
        center=rows, prediction=np.array([0, 1, 1, 1]), abstained=np.zeros(4, bool),
        covariance=np.ones(4), mahalanobis_radius=np.ones(4), p_lower=np.full(4, 0.9),
        alpha=0.001, noise_features=[0, 1],
    )
    memory = CertificateMemory()
    sound = memory.process(cert)
    assert_array_equal(sound.noise_features, [0, 1])
    # row 1 has another value in the fixed column: no conflict, not shrunk
    assert not sound.shrunk[1] and sound.mahalanobis_radius[1] == 1.0
    # rows 2 and 3 share row 0's fixed column and lie in its region
    assert_array_equal(sound.from_memory, [False, False, True, True])
    assert_array_equal(sound.prediction, [0, 1, 0, 0])
    assert_array_equal(memory.query([[0.1, 0.1, 1.0], [0.1, 0.1, 1.5], [0.4, 0.0, 2.0]]), [0, -1, 1])
    assert memory.conflicts().shape == (0, 2)
    # a full-noise certificate cannot join a memory of subspace regions
    with pytest.raises(ValueError, match="noise_features"):
        memory.process(cert._replace(noise_features=None, covariance=np.ones(4)))


def test_region_memory_with_noise_features_end_to_end(tmp_path):
    X, y = _linear_data(40)
    clf = CertifiedRegion(LogisticRegression(), method="isotropic", n_iter=2, n_samples_optim=16,
                          n_samples=300, noise_features=[0, 1], random_state=0, guarantee="per-covariance").fit(X, y)
    memory = CertificateMemory()
    cert = clf.certify(np.vstack([X[:10], X[:10] + [0.01, 0, 0, 0, 0]]), memory=memory)
    assert cert.guarantee == "memory"
    assert_array_equal(cert.noise_features, [0, 1])
    assert cert.from_memory[10:].sum() >= 1
    path = tmp_path / "memory.npz"
    memory.save(path)
    loaded = CertificateMemory.load(path)
    assert_array_equal(loaded.noise_features, [0, 1])
    assert_array_equal(loaded.query(X[:10]), memory.query(X[:10]))
    assert loaded.centers.shape == (len(memory), 5)


def test_regions_plot_draws_segments_for_one_noisy_column():
    import matplotlib

    matplotlib.use("Agg")
    from smoothcert.plotting import CertifiedRegionsDisplay

    cert = Certificate(
        center=np.array([[0.0, 0.0], [3.0, 1.0]]), prediction=np.array([0, 1]),
        abstained=np.zeros(2, bool), covariance=np.array([1.0, 4.0]),
        mahalanobis_radius=np.array([1.0, 1.0]), p_lower=np.full(2, 0.9), alpha=0.001,
        noise_features=[1],
    )
    display = CertifiedRegionsDisplay.from_certificate(cert, show_balls=True)
    widths = display.ellipses_._widths * 2
    heights = display.ellipses_._heights * 2
    # each region is a vertical segment: no extent along the fixed column 0
    assert_allclose(np.sort(np.concatenate([widths, heights])), [0.0, 0.0, 2.0, 4.0])
    ball_w, ball_h = display.balls_._widths * 2, display.balls_._heights * 2
    assert_allclose(ball_w, [0.0, 0.0])
    assert_allclose(ball_h, 2 * cert.radius)


# ------------------------------------------------------------------------ torch
@pytest.mark.torch
def test_pathwise_search_in_the_subspace():
    from nets import tanh_net

    X, y = _linear_data(60, d=4)
    net = tanh_net(module__n_in=4, max_epochs=5)
    from smoothcert.search import DiagonalSearch

    clf = CertifiedRegion(net, search=DiagonalSearch(gradient="pathwise"), n_iter=3,
                          n_samples_optim=32, n_samples=300, noise_features=[1, 2],
                          random_state=0, guarantee="per-covariance").fit(X.astype(np.float32), y)
    cert = clf.certify(X[:4])
    assert cert.covariances.n_features == 2
    assert_array_equal(cert.noise_features, [1, 2])
    assert np.all(cert.covariance[:, [0, 3], :] == 0)


@pytest.mark.torch
def test_linear_route_of_a_net_in_the_subspace():
    import torch
    from nets import classifier, relu_sequential

    X, y = _linear_data(300, d=4)
    module = relu_sequential([4, 2], seed=0)  # one linear layer: the engine's linear route
    net = classifier(module, max_epochs=20, lr=0.1, optimizer=torch.optim.Adam, batch_size=100)
    clf = SmoothedClassifier(net, sigma=0.5, n_samples=2000, alpha=1e-6, noise_features=[0, 3],
                             random_state=0).fit(X.astype(np.float32), y)
    X = X[:150]
    cert = clf.certify(X)
    layer = clf.estimator_.module_[0]
    W = layer.weight.detach().double().numpy()
    b = layer.bias.detach().double().numpy()
    w, c = W[1] - W[0], b[1] - b[0]
    exact = np.abs(X @ w + c) / np.linalg.norm(w[[0, 3]])
    assert cert.certified.sum() > 100
    assert np.all(cert.radius <= exact * (1 + 1e-5) + 1e-6)  # float32 net
    assert np.median(cert.radius[cert.certified] / exact[cert.certified]) > 0.4
