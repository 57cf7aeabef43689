"""The displays of smoothcert.plotting (matplotlib, Agg backend)."""

import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from smoothcert import (  # noqa: E402
    Certificate,
    CertifiedRegion,
    SmoothedClassifier,
    certified_accuracy_curve,
    certify,
)
from smoothcert.guarantees import DeployedGuarantee  # noqa: E402
from smoothcert.plotting import (  # noqa: E402
    CertifiedAccuracyDisplay,
    CertifiedRegionsDisplay,
    plot_certified_accuracy,
    plot_certified_regions,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _cert(n=8, seed=0, d=2, n_classes=2):
    """A certificate of random SPD covariances; the last row abstains."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, d, d))
    abstained = np.zeros(n, bool)
    abstained[-1] = True
    return Certificate(
        center=rng.standard_normal((n, d)),
        prediction=np.arange(n) % n_classes,
        abstained=abstained,
        covariance=0.05 * (m @ m.transpose(0, 2, 1)) + 0.01 * np.eye(d),
        mahalanobis_radius=np.where(abstained, 0.0, rng.uniform(0.5, 2.0, n)),
        p_lower=np.where(abstained, 0.4, 0.9),
        alpha=0.001,
    )


def _legend_texts(display_or_legend):
    legend = getattr(display_or_legend, "legend_", display_or_legend)
    return [t.get_text() for t in legend.get_texts()]


@pytest.fixture
def smoothed(blobs):
    X, y = blobs
    return SmoothedClassifier(LogisticRegression(), n_samples=200, random_state=0).fit(X, y)


# ------------------------------------------------------------ accuracy curves
def test_accuracy_display_draws_the_certified_accuracy_curve():
    cert = _cert()
    y = cert.prediction.copy()
    y[0] = 1 - y[0]  # one misclassified input
    radii = np.linspace(0.0, 1.0, 11)
    display = CertifiedAccuracyDisplay.from_certificate(cert, y, radii=radii, name="cert")
    assert isinstance(display, CertifiedAccuracyDisplay)
    expected_r, expected_acc = certified_accuracy_curve(y, cert, radii=radii)
    assert_allclose(display.line_.get_xdata(), expected_r)
    assert_allclose(display.line_.get_ydata(), expected_acc)
    assert_allclose(display.accuracies, expected_acc)
    assert display.ax_.get_xlabel() == "l2 radius R"
    assert display.ax_.get_ylabel() == "certified accuracy"
    assert display.figure_ is display.ax_.figure
    assert _legend_texts(display.ax_.get_legend()) == ["cert"]
    # default grid and an int: past the largest certified radius, the curve ends at 0
    top = cert.radius[cert.certified].max()
    for radii, n_radii in ((None, 100), (7, 7)):
        display = CertifiedAccuracyDisplay.from_certificate(cert, y, radii=radii)
        r = display.line_.get_xdata()
        assert len(r) == n_radii and r[0] == 0 and top < r[-1] <= 1.05 * top + 1e-12
        assert_allclose(display.line_.get_ydata(), certified_accuracy_curve(y, cert, radii=r)[1])
        assert display.accuracies[-1] == 0 and display.accuracies[0] > 0
        assert display.ax_.get_xlim() == (0.0, r[-1])
        assert display.ax_.get_legend() is None  # no name, no legend


def test_default_grid_curves_on_one_axis_share_a_grid_that_reaches_zero():
    a = _cert(seed=0)
    b = Certificate(**{**_public_fields(a), "mahalanobis_radius": 3 * a.mahalanobis_radius})
    first = CertifiedAccuracyDisplay.from_certificate(a, a.prediction, name="a")
    end_a = first.radii[-1]
    second = CertifiedAccuracyDisplay.from_certificate(b, b.prediction, name="b", ax=first.ax_)
    # the later, longer curve extends the grid of the earlier one
    assert_allclose(first.radii, second.radii)
    assert second.radii[-1] > 2.9 * end_a
    for display, cert in ((first, a), (second, b)):
        assert_allclose(display.line_.get_xdata(), second.radii)
        assert_allclose(display.line_.get_ydata(),
                        certified_accuracy_curve(cert.prediction, cert, second.radii)[1])
        assert display.accuracies[-1] == 0
    assert first.ax_.get_xlim()[1] == second.radii[-1]
    # a shorter curve drawn later uses the shared grid as is
    third = CertifiedAccuracyDisplay.from_certificate(a, a.prediction, ax=first.ax_, radii=20)
    assert_allclose(third.radii, second.radii)
    # another axis has its own grid
    alone = CertifiedAccuracyDisplay.from_certificate(a, a.prediction)
    assert alone.radii[-1] == end_a
    with pytest.raises(ValueError, match="radii"):
        CertifiedAccuracyDisplay.from_certificate(a, a.prediction, radii=0)


def test_several_accuracy_curves_share_one_axis_and_grid():
    a, b = _cert(seed=0), _cert(seed=1)
    radii = np.linspace(0.0, 2.0, 50)
    first = CertifiedAccuracyDisplay.from_certificate(a, a.prediction, radii=radii, name="a")
    second = CertifiedAccuracyDisplay.from_certificate(
        b, b.prediction, radii=radii, name="b", ax=first.ax_, color="red", lw=3
    )
    assert second.ax_ is first.ax_
    lines = first.ax_.get_lines()
    assert lines == [first.line_, second.line_]
    assert_allclose(lines[0].get_xdata(), lines[1].get_xdata())
    assert second.line_.get_color() == "red" and second.line_.get_linewidth() == 3
    assert _legend_texts(first.ax_.get_legend()) == ["a", "b"]
    assert_allclose(second.line_.get_ydata(), certified_accuracy_curve(b.prediction, b, radii)[1])


def test_accuracy_display_constructor_and_plot_name():
    display = CertifiedAccuracyDisplay(radii=[0.0, 1.0], accuracies=[0.8, 0.1], name="own")
    assert display.plot(name="override") is display
    assert display.line_.get_label() == "override"
    ax = Figure().add_subplot()  # a figure without pyplot
    assert display.plot(ax=ax).ax_ is ax and display.line_.get_label() == "own"


def test_accuracy_from_estimator_equals_from_certificate(blobs, smoothed):
    X, y = blobs
    radii = np.linspace(0.0, 1.5, 30)
    from_est = CertifiedAccuracyDisplay.from_estimator(smoothed, X[:30], y[:30], radii=radii)
    from_cert = CertifiedAccuracyDisplay.from_certificate(
        smoothed.certify(X[:30]), y[:30], radii=radii
    )
    assert_allclose(from_est.accuracies, from_cert.accuracies)
    assert from_est.accuracies[0] > 0.5
    assert from_est.line_.get_label() == "SmoothedClassifier"  # default name


def test_accuracy_from_estimator_of_a_pipeline_uses_raw_space_radii(blobs):
    X, y = blobs
    X = X * np.array([4.0, 1.0])
    pipe = make_pipeline(
        StandardScaler(), SmoothedClassifier(LogisticRegression(), n_samples=200, random_state=0)
    ).fit(X, y)
    display = CertifiedAccuracyDisplay.from_estimator(pipe, X[:20], y[:20], name="pipe")
    raw = certify(pipe, X[:20])
    assert_allclose(display.accuracies, certified_accuracy_curve(y[:20], raw, display.radii)[1])
    assert display.accuracies[-1] == 0
    assert display.line_.get_label() == "pipe"
    unnamed = CertifiedAccuracyDisplay.from_estimator(pipe, X[:20], y[:20])
    assert unnamed.line_.get_label() == "SmoothedClassifier"  # the last step's class


def test_accuracy_display_errors():
    cert = _cert()
    with pytest.raises(ValueError, match="y .*required"):
        CertifiedAccuracyDisplay.from_certificate(cert, None)
    with pytest.raises(ValueError, match="y must hold one label per certified input"):
        CertifiedAccuracyDisplay.from_certificate(cert, [0, 1])
    with pytest.raises(TypeError, match="certificate must be a Certificate"):
        CertifiedAccuracyDisplay.from_certificate(([0.0, 1.0], [1.0, 0.5]), [0, 1])
    with pytest.raises(ValueError, match="accuracies must have the shape of radii"):
        CertifiedAccuracyDisplay(radii=[0.0, 1.0], accuracies=[1.0])
    with pytest.raises(ValueError, match="accuracies must lie in"):
        CertifiedAccuracyDisplay(radii=[0.0, 1.0], accuracies=[1.5, 0.2])
    with pytest.raises(ValueError, match="radii must be finite and non-negative"):
        CertifiedAccuracyDisplay(radii=[-1.0, 1.0], accuracies=[1.0, 0.2])
    with pytest.raises(ValueError, match="radii must be a non-empty 1-D array"):
        CertifiedAccuracyDisplay(radii=[], accuracies=[])
    with pytest.raises(TypeError, match="name must be a str"):
        CertifiedAccuracyDisplay(radii=[0.0], accuracies=[1.0], name=3)
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        CertifiedAccuracyDisplay(radii=[0.0], accuracies=[1.0]).plot(ax="axes")


# ----------------------------------------------------------- certified regions
def test_regions_artists_hold_the_certificate_geometry():
    cert = _cert(n=10)
    y = cert.prediction
    display = CertifiedRegionsDisplay.from_certificate(cert, y)
    keep = cert.certified
    cov = cert.covariance[keep]
    r = cert.mahalanobis_radius[keep]
    evals = np.linalg.eigvalsh(cov)
    ellipses = display.ellipses_
    assert_allclose(ellipses.get_widths(), 2 * r * np.sqrt(evals[:, 1]))
    assert_allclose(ellipses.get_heights(), 2 * r * np.sqrt(evals[:, 0]))
    # direction of the major axis of [[a, b], [b, c]]: 0.5 * atan2(2b, a - c), modulo 180
    expected = np.degrees(0.5 * np.arctan2(2 * cov[:, 0, 1], cov[:, 0, 0] - cov[:, 1, 1]))
    diff = (ellipses.get_angles() - expected + 90.0) % 180.0 - 90.0
    assert_allclose(diff, 0.0, atol=1e-6)
    assert_allclose(ellipses.get_offsets(), cert.center[keep])
    assert_allclose(display.balls_.get_widths(), 2 * cert.radius[keep])
    assert_allclose(display.balls_.get_heights(), 2 * cert.radius[keep])
    assert display.balls_.get_linestyle()[0][1] is not None  # dashed, not solid
    assert_allclose(display.points_.get_offsets(), cert.center[keep])
    assert_allclose(display.abstained_.get_offsets(), cert.center[~keep])
    assert display.surface_ is None  # no estimator: no background
    assert _legend_texts(display) == [
        "class 0", "class 1", "certified region", "inscribed l2 ball", "abstained"
    ]
    assert (display.ax_.get_xlabel(), display.ax_.get_ylabel()) == ("x1", "x2")
    assert display.figure_ is display.ax_.figure


def _deployed(cert, seed=1):
    """``cert`` with a selection region per row, as guarantee="deployed" gives."""
    rng = np.random.default_rng(seed)
    n = len(cert)
    r_h = rng.uniform(0.5, 2.0, n)
    r_h[0] = np.inf  # every member certifies the class: the selection is unconstrained
    return cert._replace(
        guarantee="deployed", selection_covariance=rng.uniform(0.02, 0.2, n),
        selection_mahalanobis_radius=r_h,
    )


def test_regions_of_deployed_certificates_draw_the_intersection():
    from matplotlib.patches import Ellipse

    cert = _deployed(_cert(n=10))
    keep = cert.certified
    display = CertifiedRegionsDisplay.from_certificate(cert, cert.prediction)
    # the selection boundaries: circles of radius r_h * sigma_h (isotropic selection
    # noise), none where the selection is unconstrained (row 0)
    bounded = keep & np.isfinite(cert.selection_mahalanobis_radius)
    assert bounded.sum() == keep.sum() - 1
    r_h = cert.selection_mahalanobis_radius[bounded]
    sigma_h = np.sqrt(cert.selection_covariance[bounded][:, 0, 0])
    assert_allclose(display.selections_.get_widths(), 2 * r_h * sigma_h)
    assert_allclose(display.selections_.get_heights(), 2 * r_h * sigma_h)
    assert_allclose(display.selections_.get_offsets(), cert.center[bounded])
    assert display.selections_.get_linestyle()[0][1] is not None  # dotted, not solid
    # the class ellipses are outlines; the intersections are shaded, each clipped
    # to its selection region
    assert np.all(display.ellipses_.get_facecolor()[:, 3] == 0)
    assert len(display.intersections_) == keep.sum()
    for patch, centre, clipped in zip(display.intersections_, cert.center[keep],
                                      bounded[keep]):
        assert isinstance(patch, Ellipse) and patch.get_facecolor()[3] > 0
        assert (patch.get_clip_path() is not None) == clipped
        assert_allclose(patch.center, centre)
    assert_allclose([p.width for p in display.intersections_], display.ellipses_.get_widths())
    # the inscribed balls are those of the intersection (the smaller radius)
    assert_allclose(display.balls_.get_widths(), 2 * cert.radius[keep])
    assert _legend_texts(display) == [
        "class 0", "class 1", "certified region (intersection)", "class ellipse",
        "selection region", "inscribed l2 ball", "abstained",
    ]


def test_regions_of_per_covariance_certificates_have_no_selection_artists():
    display = CertifiedRegionsDisplay.from_certificate(_cert(n=6))
    assert display.selections_ is None and display.intersections_ is None
    assert np.all(display.ellipses_.get_facecolor()[:, 3] > 0)
    assert "selection region" not in _legend_texts(display)


def test_regions_of_a_deployed_region_from_the_estimator():
    from sklearn.datasets import make_moons

    X, y = make_moons(300, noise=0.2, random_state=0)
    region = CertifiedRegion(LogisticRegression(), method="isotropic", n_iter=3,
                             n_samples_optim=16, n_samples=300, random_state=0,
                             guarantee=DeployedGuarantee(n_family_inputs=32,
                                                         n_selector_inputs=100)).fit(X, y)
    assert len(region.covariance_family_) == 2  # a selection region exists
    display = CertifiedRegionsDisplay.from_estimator(region, X[:12], y[:12], background="none")
    assert display.certificate.guarantee == "deployed"
    assert display.selections_ is not None
    assert len(display.intersections_) == display.certificate.certified.sum() > 0


def test_regions_colours_follow_the_classes():
    cert = _cert(n=9, n_classes=3)
    y = (cert.prediction + 1) % 3  # every point wrong: points and ellipses differ
    display = CertifiedRegionsDisplay.from_certificate(cert, y)
    colors = display.class_colors_
    tab10 = matplotlib.colors.to_rgba_array(matplotlib.colormaps["tab10"].colors[:3])
    assert_allclose(colors, tab10)
    # a qualitative palette: no greyish (near-white) middle class
    assert np.all(colors[:, :3].max(axis=1) - colors[:, :3].min(axis=1) > 0.3)
    keep = cert.certified
    assert_allclose(display.points_.get_facecolors()[:, :3], colors[y[keep], :3])
    assert_allclose(display.ellipses_.get_edgecolors()[:, :3], colors[cert.prediction[keep], :3])
    assert _legend_texts(display)[:3] == ["class 0", "class 1", "class 2"]
    own = CertifiedRegionsDisplay.from_certificate(cert, y, colors=["red", "green", "blue"])
    assert_allclose(own.class_colors_, matplotlib.colors.to_rgba_array(["red", "green", "blue"]))


def test_regions_plot_options():
    cert = _cert(n=10)
    display = CertifiedRegionsDisplay.from_certificate(
        cert, max_regions=3, show_balls=False, legend=False, name="three", linewidths=2.5
    )
    assert len(display.ellipses_.get_offsets()) == 3
    assert display.balls_ is None and display.legend_ is None
    assert display.ax_.get_legend() is None
    assert display.ax_.get_title() == "three"
    assert_allclose(display.ellipses_.get_linewidths(), 2.5)
    none = CertifiedRegionsDisplay.from_certificate(cert, max_regions=0)
    assert none.ellipses_ is None and none.balls_ is None
    assert "inscribed l2 ball" not in _legend_texts(none)
    # string labels, no abstention
    all_certified = cert[:-1]
    display = CertifiedRegionsDisplay.from_certificate(
        Certificate(
            center=all_certified.center, prediction=np.where(all_certified.prediction, "b", "a"),
            abstained=all_certified.abstained, covariance=all_certified.covariance,
            mahalanobis_radius=all_certified.mahalanobis_radius,
            p_lower=all_certified.p_lower, alpha=0.001,
        )
    )
    assert display.abstained_ is None
    assert _legend_texts(display)[:2] == ["a", "b"] and "abstained" not in _legend_texts(display)


def test_regions_of_an_estimator_with_base_background(blobs):
    X, y = blobs
    clf = CertifiedRegion(
        LogisticRegression(), method="riemannian", n_iter=2, n_samples_optim=16,
        n_samples=200, random_state=0,
        guarantee="per-covariance",
    ).fit(X, y)
    display = CertifiedRegionsDisplay.from_estimator(clf, X[:12], y[:12], grid_resolution=30)
    assert display.response.shape == display.xx0.shape == (30, 30)
    grid = np.c_[display.xx0.ravel(), display.xx1.ravel()]
    expected = np.searchsorted(clf.classes_, clf.predict_base(grid)).reshape(30, 30)
    assert_array_equal(display.response, expected)
    assert len(np.unique(display.response)) == 3
    assert display.surface_ is not None
    assert _legend_texts(display)[:3] == ["class 0", "class 1", "class 2"]
    # the same certificate through from_certificate gives the same display
    same = CertifiedRegionsDisplay.from_certificate(
        clf.certify(X[:12]), y[:12], estimator=clf, grid_resolution=30
    )
    assert_array_equal(same.response, display.response)
    for attr in ("get_widths", "get_heights", "get_angles", "get_offsets"):
        assert_allclose(getattr(same.ellipses_, attr)(), getattr(display.ellipses_, attr)())
    assert_allclose(same.balls_.get_widths(), display.balls_.get_widths())


def test_regions_smoothed_background_uses_predict(smoothed, blobs):
    X, y = blobs
    display = CertifiedRegionsDisplay.from_estimator(
        smoothed, X[:5], background="smoothed", grid_resolution=6
    )
    grid = np.c_[display.xx0.ravel(), display.xx1.ravel()]
    expected = np.searchsorted(smoothed.classes_, smoothed.predict(grid))
    assert_array_equal(display.response.ravel(), expected)
    no_background = CertifiedRegionsDisplay.from_estimator(smoothed, X[:5], background="none")
    assert no_background.surface_ is None and no_background.response is None


def test_regions_of_a_pipeline_are_in_raw_space(blobs):
    X, y = blobs
    X = X * np.array([4.0, 1.0])
    pipe = make_pipeline(
        StandardScaler(), SmoothedClassifier(LogisticRegression(), n_samples=200, random_state=0)
    ).fit(X, y)
    display = CertifiedRegionsDisplay.from_estimator(pipe, X[:6], y[:6], grid_resolution=20)
    # noise after the scaler: ellipses elongated along the first raw feature
    ellipses = display.ellipses_
    assert np.all(ellipses.get_widths() > 3 * ellipses.get_heights())
    assert_allclose(np.abs(np.cos(np.radians(ellipses.get_angles()))), 1.0, atol=1e-6)
    grid = np.c_[display.xx0.ravel(), display.xx1.ravel()]
    base = pipe[-1].predict_base(pipe[:-1].transform(grid))
    assert_array_equal(display.response.ravel(), np.searchsorted(pipe.classes_, base))


def test_regions_axis_labels_are_the_feature_names(blobs):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    frame = pd.DataFrame(X, columns=["height", "width"])
    clf = SmoothedClassifier(LogisticRegression(), n_samples=100, random_state=0).fit(frame, y)
    display = CertifiedRegionsDisplay.from_estimator(clf, frame[:5], grid_resolution=5)
    assert (display.ax_.get_xlabel(), display.ax_.get_ylabel()) == ("height", "width")
    display = CertifiedRegionsDisplay.from_estimator(
        clf, frame[:5], grid_resolution=5, xlabel="h"
    )
    assert (display.ax_.get_xlabel(), display.ax_.get_ylabel()) == ("h", "width")


def test_regions_errors(smoothed, blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="2-D inputs only: the certificate has 3 features"):
        CertifiedRegionsDisplay.from_certificate(_cert(d=3))
    with pytest.raises(ValueError, match="2-D inputs only: the certificate has 3 features"):
        CertifiedRegionsDisplay(certificate=_cert(d=3), classes=[0, 1])
    X3 = np.c_[X, X[:, 0]]
    clf3 = SmoothedClassifier(LogisticRegression(), n_samples=50, random_state=0).fit(X3, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        CertifiedRegionsDisplay.from_estimator(clf3, X3[:4])
    with pytest.raises(ValueError, match=r"X must be a 2-D array"):
        CertifiedRegionsDisplay.from_estimator(smoothed, X[0])
    with pytest.raises(ValueError, match=r"y must hold one label per input \(8\)"):
        CertifiedRegionsDisplay.from_certificate(_cert(), [0, 1])
    with pytest.raises(ValueError, match=r"y must hold one label per input \(4\)"):
        CertifiedRegionsDisplay.from_estimator(smoothed, X[:4], y[:5])
    with pytest.raises(ValueError, match="background must be one of"):
        CertifiedRegionsDisplay.from_estimator(smoothed, X[:4], background="pretty")
    with pytest.raises(ValueError, match="background='base' needs the estimator"):
        CertifiedRegionsDisplay.from_certificate(_cert(), background="base")
    plain = LogisticRegression().fit(X, y)
    with pytest.raises(TypeError, match="predict_base"):
        CertifiedRegionsDisplay.from_certificate(
            smoothed.certify(X[:4]), estimator=plain, grid_resolution=4
        )
    with pytest.raises(ValueError, match="y holds labels that are not classes"):
        CertifiedRegionsDisplay.from_certificate(
            smoothed.certify(X[:4]), np.full(4, 7), estimator=smoothed, background="none"
        )
    with pytest.raises(ValueError, match="grid_resolution"):
        CertifiedRegionsDisplay.from_estimator(smoothed, X[:4], grid_resolution=1)
    with pytest.raises(ValueError, match="margin"):
        CertifiedRegionsDisplay.from_certificate(_cert(), margin=-1)
    with pytest.raises(ValueError, match="max_regions"):
        CertifiedRegionsDisplay.from_certificate(_cert(), max_regions=-2)
    with pytest.raises(ValueError, match="colors must hold one colour per class"):
        CertifiedRegionsDisplay.from_certificate(_cert(), colors=["red"])
    with pytest.raises(ValueError, match="colormap name"):
        CertifiedRegionsDisplay.from_certificate(_cert(), colors="no-such-map")
    with pytest.raises(TypeError, match="certificate must be a Certificate"):
        CertifiedRegionsDisplay.from_certificate(X[:4])
    with pytest.raises(ValueError, match="response must hold class indices"):
        CertifiedRegionsDisplay(
            certificate=_cert(), classes=[0, 1], xx0=np.zeros((2, 2)), xx1=np.zeros((2, 2)),
            response=np.full((2, 2), 5),
        )


# ------------------------------------------------------- deprecated functions
def test_plot_certified_accuracy_is_deprecated_but_works():
    a, b = _cert(seed=0), _cert(seed=1)
    y = a.prediction
    with pytest.warns(FutureWarning, match="CertifiedAccuracyDisplay"):
        ax = plot_certified_accuracy({"a": a, "b": b}, y_true=y)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["a", "b"]
    assert_allclose(lines[0].get_xdata(), lines[1].get_xdata())  # common grid
    assert_allclose(lines[0].get_ydata(), certified_accuracy_curve(y, a, lines[0].get_xdata())[1])
    with pytest.warns(FutureWarning):
        ax2 = plot_certified_accuracy(([0.0, 1.0], [1.0, 0.2]))
    assert len(ax2.get_lines()) == 1 and ax2.get_legend() is None
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="y_true"):
        plot_certified_accuracy(a)
    with pytest.warns(FutureWarning), pytest.raises(TypeError, match="Certificate"):
        plot_certified_accuracy(["nope"])


def test_plot_certified_regions_is_deprecated_but_works(smoothed, blobs):
    X, y = blobs
    cert = _cert()
    with pytest.warns(FutureWarning, match="CertifiedRegionsDisplay"):
        ax = plot_certified_regions(cert)
    widths = [c for c in ax.collections if isinstance(c, matplotlib.collections.EllipseCollection)]
    assert_allclose(widths[1].get_widths(), 2 * cert.radius[cert.certified])
    assert ax.get_legend() is not None
    fig, ax = plt.subplots()
    with pytest.warns(FutureWarning):
        out = plot_certified_regions(smoothed, X[:6], y[:6], ax=ax, grid_resolution=10)
    assert out is ax and len(ax.collections) >= 4  # background, ellipses, balls, points
    with pytest.warns(FutureWarning):
        plot_certified_regions(smoothed, X[:6], ax=plt.subplots()[1],
                               certificate=smoothed.certify(X[:6]), background="none")
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="X is required"):
        plot_certified_regions(smoothed)


# ------------------------------------------------------------------ matplotlib
def test_missing_matplotlib_gives_a_clear_import_error(monkeypatch):
    cert = _cert()
    display = CertifiedAccuracyDisplay(radii=[0.0, 1.0], accuracies=[1.0, 0.0])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    message = r"requires matplotlib.*pip install 'smoothcert\[plot\]'"
    with pytest.raises(ImportError, match="CertifiedAccuracyDisplay.plot " + message):
        display.plot()
    with pytest.raises(ImportError, match="CertifiedAccuracyDisplay.from_certificate " + message):
        CertifiedAccuracyDisplay.from_certificate(cert, cert.prediction)
    with pytest.raises(ImportError, match="CertifiedRegionsDisplay.from_certificate " + message):
        CertifiedRegionsDisplay.from_certificate(cert)
    with pytest.raises(ImportError, match="CertifiedRegionsDisplay.from_estimator " + message):
        CertifiedRegionsDisplay.from_estimator(object(), np.zeros((2, 2)))
    with pytest.warns(FutureWarning), pytest.raises(ImportError, match=message):
        plot_certified_accuracy(([0.0, 1.0], [1.0, 0.0]))


# ------------------------------------------------------------------- the demo
def test_demo_figure_has_labels_legend_and_a_caption_outside():
    from matplotlib.colors import to_rgba

    from smoothcert.demo import METHOD_STYLES, OVERLAP_CAPTION, figure_caption, plot_comparison

    fixed = _cert(n=10, seed=0)
    fixed = Certificate(**{**_public_fields(fixed), "guarantee": "fixed-noise"})
    searched = Certificate(**{**_public_fields(_cert(n=10, seed=1)), "center": fixed.center})
    y = fixed.prediction
    base = LogisticRegression().fit(fixed.center, y)
    fig = Figure(figsize=(15, 8), layout="constrained")
    certs = {"RS (fixed)": fixed, "DDRS (isotropic)": searched,
             "ANCER (diagonal)": searched, "Riemannian (SPD)": searched}
    plot_comparison(certs, y, estimator=base, fig=fig)
    panels, curves = fig.axes[:4], fig.axes[4]
    for ax in panels:
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
        assert ax.get_legend() is None  # one legend for the figure
    lines = curves.get_lines()
    assert [line.get_label() for line in lines] == list(certs)
    # curves differ by colour and by line style (or width, where they coincide)
    styles = {(line.get_color(), line.get_linestyle(), line.get_linewidth()) for line in lines}
    assert len({line.get_color() for line in lines}) == 4 and len(styles) == 4
    assert len({line.get_linestyle() for line in lines}) >= 3
    assert all(line.get_ydata()[-1] == 0 for line in lines)  # every curve runs to 0
    # each panel's title has its curve's colour
    for ax, label in zip(panels, certs):
        assert to_rgba(ax.title.get_color()) == to_rgba(METHOD_STYLES[label]["color"])
    # regions are outlines, darker than the (lighter) background of their class
    regions = panels[1].collections
    ellipses = [c for c in regions if type(c).__name__ == "EllipseCollection"][0]
    assert ellipses.get_facecolor().size == 0 or np.all(ellipses.get_facecolor()[:, 3] == 0)
    assert np.all(ellipses.get_edgecolor()[:, :3].max(axis=1) < 0.65)
    # no caption in the figure: it is printed beside it
    assert fig.get_supxlabel() == "" and not fig.texts
    assert OVERLAP_CAPTION in figure_caption(certs) and "CertificateMemory" in OVERLAP_CAPTION
    assert OVERLAP_CAPTION not in figure_caption({"RS (fixed)": fixed})


def _public_fields(cert):
    return dict(
        center=cert.center, prediction=cert.prediction, abstained=cert.abstained,
        covariance=cert.covariance, mahalanobis_radius=cert.mahalanobis_radius,
        p_lower=cert.p_lower, alpha=cert.alpha,
    )
