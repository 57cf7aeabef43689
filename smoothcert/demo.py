"""The method comparison of the talk, shared by ``smoothcert demo`` and the gallery.

On a 2-D two-moons problem, one fixed base model is smoothed four ways --
fixed noise (Cohen et al.), isotropic data-dependent noise (DDRS), diagonal
noise (ANCER) and full SPD noise optimized on the Fisher-Rao manifold
(Riemannian) -- and every test input is certified. The table reports, for a
range of radii R, the percentage of inputs ``x`` whose ball ``B2(x, R)`` lies
inside the certified region, and the mean and median log-volume of the regions.

The settings of the talk are ``alpha = 0.001``, ``N = 100,000`` certification
draws and 100 optimization iterations (``full=True``); the default settings
are smaller so that the comparison runs in well under a minute on 2 cores.
"""

import time

import numpy as np
from sklearn.datasets import make_moons
from sklearn.neural_network import MLPClassifier

from ._estimators._region import CertifiedRegion

__all__ = [
    "METHODS",
    "FULL_SETTINGS",
    "SMALL_SETTINGS",
    "DEFAULT_RADII",
    "make_demo_data",
    "make_base_model",
    "compare_methods",
    "plot_comparison",
    "figure_caption",
    "METHOD_STYLES",
    "OVERLAP_CAPTION",
    "run_demo",
]

#: Method of :class:`CertifiedRegion` -> label in the table and figure.
METHODS = {
    "fixed": "RS (fixed)",
    "isotropic": "DDRS (isotropic)",
    "diagonal": "ANCER (diagonal)",
    "riemannian": "Riemannian (SPD)",
}

#: The settings of the talk.
FULL_SETTINGS = {"n_samples": 100_000, "n_iter": 100, "n_points": 100}
#: Quick settings (default).
SMALL_SETTINGS = {"n_samples": 10_000, "n_iter": 30, "n_points": 80}
#: Radii of the table.
DEFAULT_RADII = (0.0, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0)


def make_demo_data(n_train=500, n_test=200, noise=0.15, seed=0):
    """The embedded demo data set: two moons, generated deterministically.

    Parameters
    ----------
    n_train, n_test : int, default=500, 200
        Numbers of training and test points.
    noise : float, default=0.15
        Standard deviation of the Gaussian noise of :func:`~sklearn.datasets.make_moons`.
    seed : int, default=0
        Seed of the data.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        Inputs of shape (n, 2) and labels in {0, 1}.

    Examples
    --------
    >>> from smoothcert.demo import make_demo_data
    >>> X_train, y_train, X_test, y_test = make_demo_data(n_train=10, n_test=5)
    >>> X_train.shape, X_test.shape
    ((10, 2), (5, 2))
    """
    X, y = make_moons(n_samples=n_train + n_test, noise=noise, random_state=seed)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def make_base_model(seed=0):
    """The demo's base classifier: a small scikit-learn MLP (a black box here).

    It is smoothed as is: the covariance search uses score-function gradients
    only, as it would for any non-differentiable model.

    Parameters
    ----------
    seed : int, default=0
        Seed of the weight initialization.

    Returns
    -------
    estimator : MLPClassifier
        Unfitted.

    Examples
    --------
    >>> from smoothcert.demo import make_base_model
    >>> make_base_model().hidden_layer_sizes
    (32, 32)
    """
    return MLPClassifier(hidden_layer_sizes=(32, 32), max_iter=2000, random_state=seed)


def _resolve_settings(full, n_samples, n_iter, n_points):
    settings = dict(FULL_SETTINGS if full else SMALL_SETTINGS)
    for key, value in (("n_samples", n_samples), ("n_iter", n_iter), ("n_points", n_points)):
        if value is not None:
            minimum = 0 if key == "n_iter" else 1
            if int(value) < minimum:
                raise ValueError(f"{key} must be an integer >= {minimum}, got {value!r}.")
            settings[key] = int(value)
    return settings


def compare_methods(
    estimator,
    X,
    y,
    *,
    methods=tuple(METHODS),
    radii=DEFAULT_RADII,
    full=False,
    n_samples=None,
    n_iter=None,
    n_points=None,
    sigma=0.25,
    alpha=0.001,
    random_state=0,
    n_jobs=None,
    verbose=0,
    as_frame=True,
):
    """Certify the same inputs with fixed, isotropic, diagonal and Riemannian noise.

    Parameters
    ----------
    estimator : fitted classifier
        The base model, shared by every method (wrapped in
        :class:`~sklearn.frozen.FrozenEstimator`, never refitted).
    X : array-like of shape (n_samples, n_features)
        Inputs to certify (the first ``n_points`` are used).
    y : array-like of shape (n_samples,)
        Their labels.
    methods : sequence of str, default=all four
        Methods of :class:`CertifiedRegion`, in table order.
    radii : sequence of float, default=DEFAULT_RADII
        Radii of the table columns.
    full : bool, default=False
        The settings of the talk (``n_samples=100_000``, ``n_iter=100``,
        100 inputs) instead of quick ones (10,000 draws, 30 iterations, 80
        inputs).
    n_samples, n_iter, n_points : int, default=None
        Override the certification draws, the optimization iterations per
        stage and the number of inputs.
    sigma : float, default=0.25
        Noise level of the fixed method and start of the searches.
    alpha : float, default=0.001
        Failure probability of each certificate.
    random_state : int, default=0
        Seeds every draw.
    n_jobs : int, default=None
        Joblib workers of the estimators.
    verbose : int, default=0
        Progress bars of the estimators.
    as_frame : bool, default=True
        Return the table as a :class:`pandas.DataFrame` (needs pandas); else a
        dict ``{column: list}`` with a ``"method"`` column.

    Returns
    -------
    table : DataFrame or dict
        One row per method: for each radius R, the percentage of inputs whose
        ball ``B2(x, R)`` lies in the certified region (column ``"R=..."``),
        the mean and median log-volume of the certified regions, and the
        seconds spent. (The certified accuracy, which also asks for a correct
        prediction, is the figure's curve.)
    certificates : dict
        Method label -> :class:`Certificate` of the inputs.

    Examples
    --------
    >>> from smoothcert.demo import compare_methods, make_base_model, make_demo_data
    >>> X_train, y_train, X_test, y_test = make_demo_data(n_train=100, n_test=10)
    >>> base = make_base_model().fit(X_train, y_train)
    >>> table, certs = compare_methods(base, X_test, y_test, methods=["fixed", "isotropic"],
    ...                                n_samples=200, n_iter=2, as_frame=False)
    >>> table["method"]
    ['RS (fixed)', 'DDRS (isotropic)']
    """
    from sklearn.frozen import FrozenEstimator
    from threadpoolctl import threadpool_limits

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; choose among {list(METHODS)}.")
    settings = _resolve_settings(full, n_samples, n_iter, n_points)
    X = np.asarray(X, dtype=np.float64)[: settings["n_points"]]
    y = np.asarray(y)[: settings["n_points"]]
    radii = [float(r) for r in radii]
    frozen = FrozenEstimator(estimator)
    certificates = {}
    rows = []
    # The base models of the demo are small: their matrix products gain nothing
    # from BLAS threads, and threads contending for 2 cores slow them down a lot.
    with threadpool_limits(limits=1, user_api="blas"):
        for method in methods:
            rows.append(
                _certify_one(
                    frozen, method, X, y, radii, certificates,
                    sigma=sigma, alpha=alpha, settings=settings,
                    random_state=random_state, n_jobs=n_jobs, verbose=verbose,
                )
            )
    table = {key: [row[key] for row in rows] for key in rows[0]} if rows else {}
    if as_frame:
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is optional
            raise ImportError("as_frame=True requires pandas; use as_frame=False.") from exc
        table = pd.DataFrame(table).set_index("method")
    return table, certificates


def _certify_one(
    frozen, method, X, y, radii, certificates, *, sigma, alpha, settings,
    random_state, n_jobs, verbose,
):
    """Certify ``X`` with one method; store the certificate, return the table row."""
    region = CertifiedRegion(
        frozen,
        method=method,
        # the talk's comparison: each input's own searched region, as the
        # methods' papers certify it (the caption says what it covers)
        guarantee="per-covariance",
        sigma=sigma,
        n_iter=settings["n_iter"],
        n_samples=settings["n_samples"],
        alpha=alpha,
        random_state=random_state,
        n_jobs=n_jobs,
        verbose=verbose,
    ).fit(X, y)
    start = time.perf_counter()
    cert = region.certify(X)
    seconds = time.perf_counter() - start
    label = METHODS[method]
    certificates[label] = cert
    log_volume = cert.log_volume[cert.certified]
    row = {"method": label}
    for R in radii:
        row[f"R={R:g}"] = 100.0 * float(cert.contains_ball(R).mean())
    row["mean log-volume"] = float(log_volume.mean()) if log_volume.size else float("nan")
    row["median log-volume"] = float(np.median(log_volume)) if log_volume.size else float("nan")
    row["seconds"] = seconds
    return row


#: Caption of the comparison figure when a certificate is data-dependent (printed
#: with the figure, not drawn in it: see :func:`figure_caption`).
OVERLAP_CAPTION = (
    "Regions of opposite classes may overlap: each data-dependent certificate covers the "
    "classifier smoothed with that input's own covariance (per-covariance guarantee); "
    "a CertificateMemory makes them disjoint."
)

#: Style of each method's curve and panel title: colour, line style, width and
#: marker (Okabe-Ito colours), so that curves stay apart in print and in grey scale;
#: where curves coincide, the later (narrower) line is drawn on the wider one.
METHOD_STYLES = {
    "RS (fixed)": {"color": "#000000", "ls": "-", "lw": 2.0, "marker": None},
    "DDRS (isotropic)": {"color": "#56B4E9", "ls": "-", "lw": 4.5, "marker": "o"},
    "ANCER (diagonal)": {"color": "#009E73", "ls": "--", "lw": 2.4, "marker": "s"},
    "Riemannian (SPD)": {"color": "#CC79A7", "ls": ":", "lw": 2.2, "marker": "^"},
}
_EXTRA_STYLES = [
    {"color": "#E69F00", "ls": (0, (5, 1, 1, 1)), "lw": 2.0, "marker": "D"},
    {"color": "#0072B2", "ls": (0, (1, 1)), "lw": 2.0, "marker": "v"},
    {"color": "#D55E00", "ls": (0, (8, 2)), "lw": 2.0, "marker": "P"},
]


def _method_style(i, label):
    return METHOD_STYLES.get(label, _EXTRA_STYLES[i % len(_EXTRA_STYLES)])


def figure_caption(certificates):
    """The caption of the comparison figure, to print or typeset beside it.

    Parameters
    ----------
    certificates : dict
        Method label -> :class:`Certificate`, as for :func:`plot_comparison`.

    Returns
    -------
    caption : str
        What the panels and the curves show, and, when a certificate is
        data-dependent (``guarantee="per-covariance"``), why regions of
        opposite classes may overlap (:data:`OVERLAP_CAPTION`).

    Examples
    --------
    >>> from smoothcert import Certificate
    >>> from smoothcert.demo import figure_caption
    >>> cert = Certificate(center=[[0.0, 0.0]], prediction=[0], abstained=[False],
    ...                    covariance=[1.0], mahalanobis_radius=[1.0], p_lower=[0.84],
    ...                    alpha=0.001, guarantee="fixed-noise")
    >>> figure_caption({"RS (fixed)": cert}).startswith("Certified regions")
    True
    """
    caption = (
        "Certified regions (solid outlines, coloured by the predicted class) and their "
        "largest inscribed l2 balls (dashed) over the base model's decision regions "
        "(tinted); right: certified accuracy against the l2 radius R, one line style "
        "per method, each curve running to 0."
    )
    if any(c.guarantee == "per-covariance" for c in certificates.values()):
        caption += " " + OVERLAP_CAPTION
    return caption


def plot_comparison(certificates, y, *, estimator=None, fig=None, max_regions=20):
    """The comparison figure: one panel of certified regions per method, and the curves.

    Each panel is a :class:`~smoothcert.plotting.CertifiedRegionsDisplay`
    (outlined ellipses: certified regions, in a darker shade of the predicted
    class's colour over a light tint of the base model's decision regions;
    dashed circles: their inscribed l2 balls; crosses: abstentions), its title
    in the colour of the method's curve. The right column holds one
    :class:`~smoothcert.plotting.CertifiedAccuracyDisplay` per method on one
    grid of radii that runs past the largest certified radius, so every curve
    ends at 0; each method has its own colour, line style and markers. A legend
    above the panels explains the symbols. The figure holds no caption: take it
    from :func:`figure_caption`.

    Parameters
    ----------
    certificates : dict
        Method label -> :class:`Certificate`, as returned by
        :func:`compare_methods` (2-D inputs, the same inputs for every method).
    y : array-like of shape (n_samples,)
        Labels of the certified inputs.
    estimator : fitted classifier, default=None
        The base model, drawn as decision regions in the background (its
        ``predict`` on a grid).
    fig : matplotlib Figure, default=None
        Figure to draw on (a new pyplot figure of 15 x 8 inches when
        ``None``); use constrained layout, as the new figure does.
    max_regions : int or None, default=20
        Draw the regions of at most this many inputs per panel (all inputs
        are drawn as points); ``None`` draws every region.

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from smoothcert.demo import compare_methods, make_base_model, make_demo_data
    >>> from smoothcert.demo import plot_comparison
    >>> X_train, y_train, X_test, y_test = make_demo_data(n_train=100, n_test=10)
    >>> base = make_base_model().fit(X_train, y_train)
    >>> _, certs = compare_methods(base, X_test, y_test, methods=["fixed", "isotropic"],
    ...                            n_samples=200, n_iter=2, as_frame=False)
    >>> fig = plot_comparison(certs, y_test[:10], estimator=base)
    >>> [ax.get_title() for ax in fig.axes]
    ['RS (fixed)', 'DDRS (isotropic)', 'certified accuracy']
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('x1', 'x2')
    """
    from matplotlib.colors import to_rgba_array
    from matplotlib.patches import Patch

    from .plotting import CertifiedAccuracyDisplay, CertifiedRegionsDisplay
    from .plotting._base import check_matplotlib_support

    check_matplotlib_support("plot_comparison")
    if not certificates:
        raise ValueError("certificates must hold at least one certificate.")
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(15, 8), layout="constrained")
    labels = list(certificates)
    certs = [certificates[label] for label in labels]
    y = np.asarray(y)
    centers = certs[0].center
    if any(c.center.shape != centers.shape or not np.allclose(c.center, centers) for c in certs):
        raise ValueError("every certificate must certify the same inputs.")
    if len(y) != len(centers):
        raise ValueError(f"y has {len(y)} labels for {len(centers)} certified inputs.")
    if estimator is not None and hasattr(estimator, "classes_"):
        classes = np.asarray(estimator.classes_)
    else:
        classes = np.unique(np.concatenate([y, *(c.prediction for c in certs)]))
    extent = _view_extent(centers)
    xx0 = xx1 = response = None
    if estimator is not None:
        xx0, xx1, response = _base_regions(estimator, extent, classes)

    n = len(labels)
    n_cols = min(n, 2)
    n_rows = -(-n // 2)
    # Panels keep the data's aspect (equal axes): give their columns the width
    # that the rows' height asks for (inches; about 1 for the legend, 0.6 per
    # row for a title and an x label, 0.6 for a y label), so that constrained
    # layout leaves no blank band between the rows.
    width, height = fig.get_size_inches()
    aspect = (extent[1] - extent[0]) / (extent[3] - extent[2])
    panel = aspect * max((height - 1.0) / n_rows - 0.6, 0.5) + 0.6
    panel = min(panel, 0.4 * width)
    grid = fig.add_gridspec(
        n_rows, n_cols + 1, width_ratios=[panel] * n_cols + [width - n_cols * panel]
    )
    entries = {}  # legend text -> handle, over every panel (abstentions vary)
    for i, (label, cert) in enumerate(zip(labels, certs)):
        ax = fig.add_subplot(grid[i // 2, i % 2])
        # Regions as outlines in a darker shade of the class colour: readable over
        # the (lighter) decision regions, and overlaps stay visible.
        colors = to_rgba_array([f"C{k}" for k in range(classes.size)]) if classes.size <= 10 \
            else None
        edges = None
        if colors is not None and cert.certified.any():
            rows = np.flatnonzero(cert.certified)
            if max_regions is not None:
                rows = rows[:max_regions]
            index = np.searchsorted(classes, cert.prediction[rows], sorter=np.argsort(classes))
            index = np.argsort(classes)[index]
            edges = colors[index] * [0.6, 0.6, 0.6, 1.0]
        style = {"facecolors": "none", "linewidths": 1.4}
        if edges is not None:
            style["edgecolors"] = edges
        display = CertifiedRegionsDisplay(
            certificate=cert, classes=classes, y=y, xx0=xx0, xx1=xx1, response=response,
            extent=extent, xlabel="x1", ylabel="x2",
        ).plot(ax=ax, name=label, max_regions=max_regions, legend=True, colors=colors, **style)
        if display.surface_ is not None:
            display.surface_.set_alpha(0.12)
        ax.title.set_color(_method_style(i, label)["color"])
        ax.title.set_fontweight("bold")
        for handle, text in zip(display.legend_.legend_handles, display.legend_.get_texts()):
            entries.setdefault(text.get_text(), handle)
        display.legend_.remove()
    if "certified region" in entries:
        entries["certified region"] = Patch(facecolor="none", edgecolor="0.3", linewidth=1.4,
                                            label="certified region")
    fig.legend(
        list(entries.values()), list(entries), loc="outside upper center", ncols=len(entries),
        frameon=False,
    )

    ax = fig.add_subplot(grid[:, n_cols])
    for i, (label, cert) in enumerate(zip(labels, certs)):
        style = dict(_method_style(i, label))
        CertifiedAccuracyDisplay.from_certificate(
            cert, y, radii=200, name=label, ax=ax, zorder=2 + i, markevery=(8 * i, 30),
            markersize=6, markeredgecolor="white", markeredgewidth=0.6, **style,
        )
    ax.set_title("certified accuracy")
    ax.grid(alpha=0.3)
    return fig


def _view_extent(points, margin=0.15):
    """(x_min, x_max, y_min, y_max) around ``points``, ``margin`` of their range added."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = np.where(hi > lo, margin * (hi - lo), 1.0)
    return (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])


def _base_regions(estimator, extent, classes, resolution=200):
    """The base model's class index on a ``resolution`` x ``resolution`` grid of ``extent``."""
    x0, x1, y0, y1 = extent
    xx0, xx1 = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    pred = np.asarray(estimator.predict(np.c_[xx0.ravel(), xx1.ravel()]))
    order = np.argsort(classes)
    index = order[np.searchsorted(classes, pred, sorter=order)]
    return xx0, xx1, index.reshape(xx0.shape)


def run_demo(
    *, full=False, seed=0, n_samples=None, n_iter=None, n_points=None, verbose=0, as_frame=True
):
    """Data, base model and comparison of ``smoothcert demo`` in one call.

    Parameters
    ----------
    full : bool, default=False
        The settings of the talk (slow) instead of quick ones.
    seed : int, default=0
        Seed of the data, the base model and the draws.
    n_samples, n_iter, n_points : int, default=None
        Override the settings (see :func:`compare_methods`).
    verbose : int, default=0
        Progress bars.
    as_frame : bool, default=True
        Table as a DataFrame (needs pandas) or a dict.

    Returns
    -------
    result : dict
        ``"table"``, ``"certificates"``, ``"estimator"`` (the fitted base
        model), ``"X"`` and ``"y"`` (the certified inputs) and ``"settings"``.

    Examples
    --------
    >>> from smoothcert.demo import run_demo
    >>> result = run_demo(n_samples=100, n_iter=1, n_points=4, as_frame=False)
    >>> sorted(result["certificates"])
    ['ANCER (diagonal)', 'DDRS (isotropic)', 'RS (fixed)', 'Riemannian (SPD)']
    """
    settings = _resolve_settings(full, n_samples, n_iter, n_points)
    X_train, y_train, X_test, y_test = make_demo_data(
        n_test=max(200, settings["n_points"]), seed=seed
    )
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        base = make_base_model(seed).fit(X_train, y_train)
    table, certs = compare_methods(
        base, X_test, y_test, random_state=seed, verbose=verbose, as_frame=as_frame, **settings
    )
    n = settings["n_points"]
    return {
        "table": table,
        "certificates": certs,
        "estimator": base,
        "X": X_test[:n],
        "y": y_test[:n],
        "settings": settings,
    }
