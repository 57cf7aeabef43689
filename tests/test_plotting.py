"""Certified-accuracy curves and 2-D certified regions (matplotlib, Agg backend)."""

import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import EllipseCollection  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from smoothcert import (  # noqa: E402
    Certificate,
    CertifiedRegion,
    SmoothedClassifier,
    certified_accuracy_curve,
)
from smoothcert._geometry._forms import RowCovariances  # noqa: E402
from smoothcert.plotting import plot_certified_accuracy, plot_certified_regions  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _cert(n=8, seed=0, d=2):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, d, d))
    abstained = np.zeros(n, bool)
    abstained[-1] = True
    return Certificate(
        center=rng.standard_normal((n, d)),
        prediction=rng.integers(0, 2, n),
        abstained=abstained,
        covariance=RowCovariances.from_matrices(0.05 * (m @ m.transpose(0, 2, 1)) + 0.01 * np.eye(d)),
        mahalanobis_radius=np.where(abstained, 0.0, rng.uniform(0.5, 2.0, n)),
        p_lower=np.where(abstained, 0.4, 0.9),
        alpha=0.001,
    )


def test_accuracy_curves_of_several_certificates_share_one_axis():
    a, b = _cert(seed=0), _cert(seed=1)
    y = a.prediction
    ax = plot_certified_accuracy({"a": a, "b": b}, y_true=y)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["a", "b"]
    assert_allclose(lines[0].get_xdata(), lines[1].get_xdata())  # common grid
    r, acc = certified_accuracy_curve(y, a, radii=lines[0].get_xdata())
    assert_allclose(lines[0].get_ydata(), acc)
    assert ax.get_legend() is not None
    assert ax.get_xlabel() == "l2 radius R"


def test_accuracy_curve_inputs():
    a = _cert()
    fig, ax = plt.subplots()
    out = plot_certified_accuracy([a, ([0, 1], [1, 0.5])], y_true=a.prediction, ax=ax,
                                  labels=["cert", "curve"], radii=[0.0, 0.1, 0.2], lw=3)
    assert out is ax
    assert len(ax.get_lines()) == 2 and ax.get_lines()[0].get_linewidth() == 3
    assert_allclose(ax.get_lines()[0].get_xdata(), [0.0, 0.1, 0.2])
    ax2 = plot_certified_accuracy(([0.0, 1.0], [1.0, 0.2]))
    assert len(ax2.get_lines()) == 1 and ax2.get_legend() is None
    with pytest.raises(ValueError, match="y_true"):
        plot_certified_accuracy(a)
    with pytest.raises(ValueError, match="labels"):
        plot_certified_accuracy([a, a], y_true=a.prediction, labels=["one"])
    with pytest.raises(TypeError, match="Certificate"):
        plot_certified_accuracy(["nope"])


def _ellipse_collections(ax):
    return [c for c in ax.collections if isinstance(c, EllipseCollection)]


def test_regions_of_a_certificate_match_its_ellipses():
    cert = _cert()
    ax = plot_certified_regions(cert)
    ellipses, balls = _ellipse_collections(ax)
    keep = cert.certified
    w = np.linalg.eigvalsh(cert.covariance[keep])
    r = cert.mahalanobis_radius[keep]
    assert_allclose(ellipses.get_widths(), 2 * r * np.sqrt(w[:, 1]))
    assert_allclose(ellipses.get_heights(), 2 * r * np.sqrt(w[:, 0]))
    assert_allclose(balls.get_widths(), 2 * cert.radius[keep])
    assert_allclose(ellipses.get_offsets(), cert.center[keep])
    # the abstained input is drawn as a cross with a legend entry
    assert ax.get_legend() is not None


def test_regions_of_an_estimator_with_background(blobs):
    X, y = blobs
    clf = CertifiedRegion(
        LogisticRegression(), method="riemannian", n_iter=2, n_samples_optim=16,
        n_samples=200, random_state=0,
    ).fit(X, y)
    fig, ax = plt.subplots()
    out = plot_certified_regions(clf, X[:10], y[:10], ax=ax, grid_resolution=30, max_regions=4)
    assert out is ax
    assert len(ax.collections) >= 3  # background contour, ellipses, balls, points
    assert len(_ellipse_collections(ax)[0].get_offsets()) <= 4
    cert = clf.certify(X[:10])
    ax = plot_certified_regions(clf, X[:10], ax=plt.subplots()[1], certificate=cert,
                                background="none", show_balls=False)
    assert len(_ellipse_collections(ax)) == 1
    # smoothed background (slow path), small grid
    plot_certified_regions(SmoothedClassifier(n_samples=20, random_state=0).fit(X, y), X[:5],
                           background="smoothed", grid_resolution=8)


def test_regions_of_a_pipeline_are_in_raw_space(blobs):
    X, y = blobs
    X = X * np.array([4.0, 1.0])
    pipe = make_pipeline(StandardScaler(), SmoothedClassifier(n_samples=200, random_state=0))
    pipe.fit(X, y)
    ax = plot_certified_regions(pipe, X[:6], y[:6], grid_resolution=20)
    ellipses = _ellipse_collections(ax)[0]
    # noise after the scaler: ellipses elongated along the first raw feature
    assert np.all(ellipses.get_widths() > 3 * ellipses.get_heights())


def test_regions_errors(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="2-D"):
        plot_certified_regions(_cert(d=3))
    with pytest.raises(ValueError, match="background"):
        plot_certified_regions(_cert(), background="pretty")
    clf = SmoothedClassifier(n_samples=50, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X is required"):
        plot_certified_regions(clf)
    with pytest.raises(ValueError, match="labels"):
        plot_certified_regions(_cert(), y=[0, 1])
    with pytest.raises(ValueError, match="inputs of the certificate"):
        plot_certified_regions(_cert(), X=np.zeros((8, 2)))


def test_missing_matplotlib_gives_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="requires matplotlib"):
        plot_certified_accuracy(([0.0, 1.0], [1.0, 0.0]))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="requires matplotlib"):
        plot_certified_regions(_cert(), ax=object())


def test_regions_on_a_pyplot_free_figure():
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert plot_certified_regions(_cert(), ax=ax, cmap="viridis") is ax
