"""CertifiedRegion: data-dependent smoothing with a per-input noise covariance."""

import functools
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import validate_data

from ._base import BaseSmoothing
from ._adapters import _unwrap_frozen, is_torch_net, make_adapter
from ._family import (
    SELECTION_SHARE,
    choose_prototypes,
    family_ratios,
    fit_selector,
    label_inputs,
    training_subset,
)
from .._certify._procedures import certify_rows, count_votes, predict_rows
from .._certify._selection import (
    best_interval,
    median_member,
    median_undecided,
    threshold_certificates,
)
from .._certify._stats import target_probability
from .._engine._streams import (
    STAGE_ESTIMATION,
    STAGE_FAMILY,
    STAGE_PREDICTION,
    STAGE_SELECTION,
    STAGE_SELECTOR,
    derived_seed,
)
from .._geometry._forms import RowCovariances
from .._search._ascent import (
    MAX_FULL_FEATURES,
    merge_search_info,
    search_covariances,
    search_predictions,
)
from ..exceptions import UnreachableRadiusWarning
from ..metrics import _unreachable_radius_message, certified_accuracy

__all__ = ["CertifiedRegion", "MAX_RIEMANNIAN_FEATURES", "MAX_RIEMANNIAN_SCALE_RATIO"]

#: Largest input dimension at which ``method="riemannian"`` optimizes full
#: matrices; above, it optimizes the low-rank form.
MAX_RIEMANNIAN_FEATURES = MAX_FULL_FEATURES
#: ``selection_sigma=None`` smooths the selector with this multiple of ``sigma``
#: (measured on the benchmarks page: larger selector noise certifies larger
#: selection balls far from the boundary, smaller noise keeps the selection
#: sharp near it).
SELECTION_SIGMA_FACTOR = 1.2
#: Largest ``sigma_bounds[1] / sigma_bounds[0]`` accepted by ``method="riemannian"``:
#: a full covariance with eigenvalues spread over ``ratio^2`` must stay resolvable
#: in float64 (condition number at most 1e12).
MAX_RIEMANNIAN_SCALE_RATIO = 1e6


class CertifiedRegion(BaseSmoothing):
    """Data-dependent randomized smoothing: one optimized noise covariance per input.

    For each input ``x`` the noise covariance ``Sigma_x`` of the smoothed
    classifier is optimized to enlarge the certified region, then ``x`` is
    certified with CERTIFY (Cohen et al., 2019) on fresh draws: the prediction
    of ``g_{Sigma_x}`` is constant on the ellipsoid
    ``{x + d : d^T Sigma_x^-1 d <= r^2}``, ``r = Phi^-1(p_lower)``.

    The methods form a chain, each started from the optimum of the previous
    one:

    ========================  ============================  ========================
    ``method``                ``Sigma_x``                   reference
    ========================  ============================  ========================
    ``"fixed"``               ``sigma^2 I``                 Cohen et al. (2019)
    ``"isotropic"``           ``sigma_x^2 I``               Alfarra et al. (DDRS)
    ``"diagonal"``            ``diag(s_x^2)``               Eiras et al. (ANCER)
    ``"riemannian"``          full SPD matrix               Labarbarie, Hajri, Arnaudon
    ``"lowrank"``             ``(D^-1 + V V^T)^-1``         (diagonal, shrunk along
                                                            ``k = 2`` directions)
    ========================  ============================  ========================

    The Riemannian search is a natural-gradient ascent on the manifold of SPD
    matrices with the Fisher-Rao metric of ``N(0, Sigma)``,
    ``<U, V> = 1/2 tr(Sigma^-1 U Sigma^-1 V)``, stepping with its exponential
    map, which keeps every ``Sigma_x`` SPD. Above 512 features it optimizes
    the ``"lowrank"`` form instead (a full ``d x d`` eigendecomposition per
    input and step would dominate): ``O(d)`` numbers per input, any
    orientation of the few directions across which the noise is small.

    In dimension the search follows the structure of a decision boundary
    that is locally flat: a *path* (the running sum of first-moment
    estimates of the gradient of the smoothed score) estimates the boundary
    normal, the natural gradient is projected on "along the normal / the
    rest", and each step is split between the two. Its draws are *tempered*
    (``x + tau Sigma^(1/2) z`` with ``tau`` about 3, so that enough draws
    fail to give a direction), which is exact for a flat boundary; each stage
    checks on independent draws, untempered, that tempering did not mislead
    it, and searches a row again untempered where it did. See the user guide,
    *Four ways to choose the noise* and *The Fisher-Rao geometry*.

    Parameters
    ----------
    estimator : classifier, default=None
        The base classifier (``None``: LogisticRegression). Black-box models
        (trees, forests, SVMs, kNN, boosting) are optimized with score-function
        gradients; skorch nets can use pathwise (autograd) gradients.
    method : {"fixed", "isotropic", "diagonal", "riemannian", "lowrank"}, default="riemannian"
        Parametrization of ``Sigma_x`` (see above).
    objective : {"volume", "ball"}, default="volume"
        With ``gap = 2 r_cert(t)``, ``t`` the margin of the top class read on
        optimization draws and ``r_cert(t)`` the radius CERTIFY returns, in
        expectation, at that margin with ``n_samples`` draws and level
        ``alpha`` (so the search is paid for what will be certified):
        ``"volume"`` maximizes
        ``gap * det(Sigma)^(1/(2d)) + kappa * gap * sqrt(lambda_min(Sigma))``
        (ANCER / RDDRS proxy); ``"ball"`` maximizes
        ``gap * sqrt(lambda_min(Sigma))``, the radius of the largest l2 ball in
        the certified region (what :meth:`score` rewards).
    sigma : float, default=0.25
        Initial noise level, and the noise of ``method="fixed"``.
    n_iter : int, default=100
        Ascent iterations per stage of the chain.
    learning_rate : float, default=0.6
        Initial step length in Fisher-Rao distance per ``sqrt(d / 2)``;
        iteration ``t`` uses ``learning_rate / sqrt(t + 1)``.
    n_samples_optim : int, default=256
        Optimization draws per input and step (antithetic pairs). They are
        independent of the certification draws.
    gradient : {"auto", "score", "pathwise"}, default="auto"
        ``"score"``: score-function (natural evolution strategies) estimator,
        for any black box. ``"pathwise"``: autograd through a skorch/torch
        base. ``"auto"``: pathwise for skorch nets, else score.
    kappa : float, default=2.0
        Weight of the inscribed-ball term of the ``"volume"`` objective.
    sigma_bounds : tuple of two floats, default=(0.25, 4.0)
        Every noise scale ``sqrt(eigenvalue(Sigma_x))`` is at least
        ``sigma_bounds[0] * sigma``; ``sigma_bounds[1] * sigma`` caps them as
        ``scale_cap`` says. The cap stops noise from growing without end far
        from any decision boundary.
    scale_cap : {"volume", "axis"}, default="volume"
        ``"volume"``: the geometric mean of the noise scales
        (``det(Sigma_x)^(1/(2d))``) is at most ``sigma_bounds[1] * sigma`` and
        each scale at most ``sigma_bounds[1]^2 / sigma_bounds[0] * sigma``.
        What diverges without a cap is noise where the classifier is constant,
        which grows every scale; a cap on their mean stops it and still lets an
        ellipsoid be long along a boundary and thin across it. ``"axis"``:
        every scale at most ``sigma_bounds[1] * sigma`` (ellipsoids near a
        curved boundary then stay nearly round).
    floor : {"isotropic", "bounds"}, default="isotropic"
        Smallest noise scale of the ``"diagonal"``, ``"riemannian"`` and
        ``"lowrank"`` stages: the input's isotropic optimum (the "superset"
        rule of ANCER: the ellipsoid is never thinner than the isotropic ball,
        which keeps the certified ball of each input at least about the
        isotropic one's), or ``sigma_bounds[0] * sigma`` (``"bounds"``: on
        problems with a flat boundary, larger certified volumes, in dimension
        by many nats, at the price of a smaller inscribed ball where a long
        thin ellipsoid pays; not on every problem, see the benchmarks page).
    n_samples : int, default=100_000
        Certification (and prediction) draws per input.
    n_samples_selection : int, default=100
        Draws that select the top class before certification.
    alpha : float, default=0.001
        Failure probability of each certificate.
    radius : float, default=0.25
        l2 radius at which :meth:`score` measures certified accuracy.
    vote : {"hard", "soft"}, default="hard"
        Vote of the certification. Score-function searches count the same
        votes (predicted labels, or ``predict_proba`` scores); pathwise
        searches differentiate the soft scores.
    noise_augmentation : int, default=0
        Train the base model on this many noisy copies of the training data
        (noise ``N(0, sigma^2 I)``).
    sampling : {"fixed", "sequential"}, default="fixed"
        ``"fixed"``: every input gets ``n_samples`` certification draws
        (Cohen et al.'s CERTIFY exactly). ``"sequential"``: draws arrive in
        doubling blocks, ``alpha`` is spent over the looks, and an input stops
        once its radius is within ``radius_tol`` of what its full budget could
        give (:meth:`predict` and :meth:`predict_abstain` stop once decided);
        ``n_samples`` is then the budget. ``certify(X, radius=R)`` and
        :meth:`score` are always sequential. The covariance search does not
        depend on it.
    radius_tol : float, default=0.05
        Relative radius tolerance of ``sampling="sequential"``, in (0, 1).
    batch_size : int or "auto", default="auto"
        Largest number of noisy points passed to the base model at once.
        ``"auto"`` bounds the noise by 32 MiB and picks, within that bound,
        the fastest block size on the first calls.
    n_jobs : int, default=None
        Joblib workers over chunks of inputs. Results do not depend on it.
    verbose : int or bool, default=0
        Progress bar (tqdm) during certification.
    random_state : int, RandomState instance or None, default=None
        Seeds every draw; with an int, results are reproducible and
        independent of ``batch_size``, ``n_jobs`` and the order of inputs.

    Attributes
    ----------
    estimator_ : classifier
        The fitted base classifier.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit` (string column names only).

    Notes
    -----
    Cost per input: the search draws ``n_samples_optim`` points twice per
    iteration (current point and candidate) for ``n_iter`` iterations per
    stage (1 stage for ``"isotropic"``, 2 for ``"diagonal"``, 3 for
    ``"riemannian"`` and ``"lowrank"``), plus at most ``16 * n_samples_optim``
    per stage for a final check on independent draws (a stage's result is
    kept only where it is significantly better there than the stage's start,
    and not worse untempered); a row whose tempered search that check
    distrusts is searched once more, untempered. Certification adds
    ``n_samples_selection + n_samples``.
    The full Riemannian stage also costs a few ``d x d`` eigendecompositions
    per input and step, hence the low-rank form above ``d = 512``; the
    low-rank stage costs ``O(d)`` per draw.

    A certificate covers the classifier smoothed with *that input's*
    covariance (``guarantee="per-covariance"``), not the map
    ``x -> g_{Sigma_x}(x)`` (Sukenik et al., 2022).

    References
    ----------
    .. [1] J. Cohen, E. Rosenfeld, Z. Kolter. "Certified Adversarial Robustness
       via Randomized Smoothing". ICML 2019.
    .. [2] M. Alfarra, A. Bibi, P. Torr, B. Ghanem. "Data Dependent Randomized
       Smoothing". UAI 2022.
    .. [3] F. Eiras et al. "ANCER: Anisotropic Certification via Sample-wise
       Volume Maximization". TMLR 2022.
    .. [4] P. Labarbarie, H. Hajri, M. Arnaudon. "Riemannian data-dependent
       randomized smoothing for neural network certification". 2022.
    .. [5] P. Sukenik, A. Kuvshinov, S. Guennemann. "Intriguing Properties of
       Input-Dependent Randomized Smoothing". ICML 2022.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from smoothcert import CertifiedRegion
    >>> X, y = make_moons(n_samples=200, noise=0.1, random_state=0)
    >>> region = CertifiedRegion(RandomForestClassifier(20, random_state=0),
    ...                          method="diagonal", n_iter=5, n_samples=500,
    ...                          random_state=0).fit(X, y)
    >>> cert = region.certify(X[:3])
    >>> cert.covariance.shape
    (3, 2, 2)
    """

    _parameter_constraints: dict = {
        **BaseSmoothing._parameter_constraints,
        "method": [StrOptions({"fixed", "isotropic", "diagonal", "riemannian", "lowrank"})],
        "objective": [StrOptions({"volume", "ball"})],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "n_samples_optim": [Interval(Integral, 2, None, closed="left")],
        "gradient": [StrOptions({"auto", "score", "pathwise"})],
        "kappa": [Interval(Real, 0, None, closed="left")],
        "sigma_bounds": [tuple, list],
        "scale_cap": [StrOptions({"volume", "axis"})],
        "floor": [StrOptions({"isotropic", "bounds"})],
        "radius": [Interval(Real, 0, None, closed="left")],
        "guarantee": [StrOptions({"deployed", "per-covariance"})],
        "n_prototypes": [Interval(Integral, 1, None, closed="left")],
        "selector": [HasMethods(["fit", "predict"]), None],
        "selection_sigma": [Interval(Real, 0, None, closed="neither"), None],
        "n_family_inputs": [Interval(Integral, 1, None, closed="left")],
        "n_selector_inputs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        estimator=None,
        *,
        method="riemannian",
        guarantee="deployed",
        objective="volume",
        sigma=0.25,
        n_iter=100,
        learning_rate=0.6,
        n_samples_optim=256,
        gradient="auto",
        kappa=2.0,
        sigma_bounds=(0.25, 4.0),
        scale_cap="volume",
        floor="isotropic",
        n_samples=100_000,
        n_samples_selection=100,
        alpha=0.001,
        radius=0.25,
        vote="hard",
        noise_augmentation=0,
        sampling="fixed",
        radius_tol=0.05,
        n_prototypes=2,
        selector=None,
        selection_sigma=None,
        n_family_inputs=128,
        n_selector_inputs=1024,
        batch_size="auto",
        n_jobs=None,
        verbose=0,
        random_state=None,
    ):
        self.estimator = estimator
        self.method = method
        self.guarantee = guarantee
        self.n_prototypes = n_prototypes
        self.selector = selector
        self.selection_sigma = selection_sigma
        self.n_family_inputs = n_family_inputs
        self.n_selector_inputs = n_selector_inputs
        self.objective = objective
        self.sigma = sigma
        self.n_iter = n_iter
        self.learning_rate = learning_rate
        self.n_samples_optim = n_samples_optim
        self.gradient = gradient
        self.kappa = kappa
        self.sigma_bounds = sigma_bounds
        self.scale_cap = scale_cap
        self.floor = floor
        self.n_samples = n_samples
        self.n_samples_selection = n_samples_selection
        self.alpha = alpha
        self.radius = radius
        self.vote = vote
        self.noise_augmentation = noise_augmentation
        self.sampling = sampling
        self.radius_tol = radius_tol
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _validate_extra_params(self):
        bounds = self.sigma_bounds
        if (
            len(bounds) != 2
            or not all(isinstance(b, Real) and np.isfinite(b) for b in bounds)
            or not 0 < bounds[0] <= 1 <= bounds[1]
        ):
            raise ValueError(
                "sigma_bounds must be two finite numbers (low, high) with "
                f"0 < low <= 1 <= high, got {bounds!r}."
            )
        low, high = (float(b) for b in bounds)
        largest = high**2 / low if self.scale_cap == "volume" else high
        self._check_sigma_range(low * float(self.sigma), largest * float(self.sigma))
        spread = (high / low) ** 2 if self.scale_cap == "volume" else high / low
        if self.method in ("riemannian", "lowrank") and spread > MAX_RIEMANNIAN_SCALE_RATIO:
            raise ValueError(
                f"sigma_bounds={bounds!r} lets the noise scales of one covariance "
                f"differ by a factor {spread:g} (scale_cap={self.scale_cap!r}); "
                f"method={self.method!r} accepts at most "
                f"{MAX_RIEMANNIAN_SCALE_RATIO:g} (beyond, the covariance is numerically "
                "singular in float64). Narrow sigma_bounds or use method='diagonal'."
            )
        base = _unwrap_frozen(self._base_estimator())
        if self.gradient == "pathwise" and not is_torch_net(base):
            raise ValueError(
                "gradient='pathwise' needs a differentiable base model (a skorch "
                f"net); {type(base).__name__} has no input gradients. "
                "Use gradient='score' (or 'auto')."
            )

    # ------------------------------------------------------------------ search
    def _gradient_kind(self, adapter):
        if self.gradient == "auto":
            return "pathwise" if adapter.supports_gradient else "score"
        if self.gradient == "pathwise" and not adapter.supports_gradient:
            raise ValueError("gradient='pathwise' needs a skorch/torch base model.")
        return self.gradient

    def _per_input_search_cost(self):
        return search_predictions(self.method, self.n_iter, self.n_samples_optim, self.n_features_in_)

    def _search_cost(self):
        if self._selects():
            # the smoothed selector, instead of a search at every input
            return self.n_samples_selection + self.n_samples
        return self._per_input_search_cost()

    def _search(self, X, adapter, seed, progress=None):
        return search_covariances(
            adapter,
            X,
            method=self.method,
            objective=self.objective,
            sigma=float(self.sigma),
            sigma_bounds=tuple(float(b) for b in self.sigma_bounds),
            n_iter=self.n_iter,
            learning_rate=float(self.learning_rate),
            n_samples_optim=self.n_samples_optim,
            gradient=self._gradient_kind(adapter),
            kappa=float(self.kappa),
            n_samples=self.n_samples,
            alpha=float(self.alpha),
            seed=seed,
            votes=self.vote,
            scale_cap=self.scale_cap,
            superset=self.floor == "isotropic",
            batch_size=self._batch_size(X.shape[1]),
            progress=progress,
        )

    def optimize_covariance(self, X):
        """Optimized noise covariance of each input, without certifying.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        covariance : ndarray of shape (n_samples, n_features, n_features)
        """
        X = self._check_X(X)
        work = functools.partial(self._search_chunk, seed=self._seed())
        parts = self._run(X, work, self._search_cost(), "optimize_covariance")
        return RowCovariances.concatenate(parts).matrices()

    def _search_chunk(self, X, progress, *, seed):
        return self._search(X, self._adapter(), seed, progress)[0]

    # ------------------------------------------------- the deployed guarantee
    def fit(self, X, y=None, sample_weight=None, **fit_params):
        """Fit the base classifier, then (``guarantee="deployed"``) the covariance family.

        With ``guarantee="deployed"`` (and a method other than ``"fixed"``),
        the covariance search runs on ``n_family_inputs`` training inputs;
        the covariances it finds are clustered into at most ``n_prototypes -
        1`` prototypes, which join ``sigma^2 I`` in the family;
        ``n_selector_inputs`` training inputs are labelled with their best
        family member (on draws independent of every later certificate) and
        the selector is trained on them. These inputs are chosen by their
        content (a hash of each row), once each, among the inputs of non-zero
        weight: the family does not depend on the order or the repetition of
        the training rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs, finite.
        y : array-like of shape (n_samples,), default=None
            Class labels. Required, except for a pre-fitted base model wrapped
            in :class:`~sklearn.frozen.FrozenEstimator` (see
            :meth:`SmoothedClassifier.fit`).
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the base estimator's ``fit``; it must accept it.
        **fit_params : dict
            Other parameters passed to the base estimator's ``fit``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        super().fit(X, y, sample_weight=sample_weight, **fit_params)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if sample_weight is not None:
            # inputs of weight 0 are not training inputs (each input counts once)
            X = X[np.asarray(sample_weight) != 0]
        self._fit_family(X)
        return self

    def _fit_family(self, X):
        """The family of covariances and the selector of ``guarantee="deployed"``."""
        for name in ("_family", "_family_ratio", "selector_", "family_search_info_"):
            if hasattr(self, name):
                delattr(self, name)
        if self.guarantee != "deployed" or self.method == "fixed":
            return
        seed = derived_seed(self._seed(), STAGE_FAMILY)
        words = np.random.SeedSequence(seed).generate_state(2)
        labelled = training_subset(X, self.n_selector_inputs)
        searched = training_subset(X, self.n_family_inputs)
        work = functools.partial(self._search_info_chunk, seed=seed)
        parts = self._run(X[searched], work, self._per_input_search_cost(), "fit")
        found = RowCovariances.concatenate([part[0] for part in parts])
        self.family_search_info_ = merge_search_info([part[1] for part in parts])
        family = choose_prototypes(found, self.n_prototypes, float(self.sigma), int(words[0]))
        labels, _ = label_inputs(
            self._adapter(), X[labelled], family, sigma=float(self.sigma),
            n_draws=self.n_samples_optim,
            n_samples=self.n_samples, alpha=float(self.alpha) * (1.0 - SELECTION_SHARE),
            vote=self.vote, seed=seed, stage=STAGE_FAMILY,
            batch_size=self._batch_size(X.shape[1]),
        )
        used, labels = np.unique(labels, return_inverse=True)
        self._family = family.take(used)
        self._family_ratio = family_ratios(self._family)
        self.selector_ = (
            None if len(used) == 1
            else fit_selector(self.selector, X[labelled], labels, int(words[1]))
        )

    def _search_info_chunk(self, X, progress, *, seed):
        return self._search(X, self._adapter(), seed, progress)

    @property
    def covariance_family_(self):
        """Covariances of the deployed family, ndarray of shape (n_members, d, d)."""
        if not hasattr(self, "_family"):
            raise AttributeError(
                "covariance_family_ exists after fit with guarantee='deployed' and a "
                "method other than 'fixed'."
            )
        return self._family.matrices()

    def _selects(self):
        """Whether certify / predict use the family and its smoothed selector."""
        if self.guarantee != "deployed" or self.method == "fixed":
            return False
        if not hasattr(self, "_family"):
            raise ValueError(
                "guarantee='deployed' needs the covariance family fitted by fit; this "
                "estimator was fitted with another guarantee or method. Call fit again."
            )
        return True

    def _selection_sigma(self):
        if self.selection_sigma is None:
            return SELECTION_SIGMA_FACTOR * float(self.sigma)
        return float(self.selection_sigma)

    def _select_noise(self, n, d):
        return RowCovariances.isotropic(np.full(n, self._selection_sigma() ** 2), d)

    def _selector_adapter(self):
        return make_adapter(self.selector_, np.arange(len(self._family)), True)

    def _certify_chunk(self, X, progress, *, seed, radius, min_eigenvalue, memory=False):
        if memory or not self._selects():
            return super()._certify_chunk(
                X, progress, seed=seed, radius=radius, min_eigenvalue=min_eigenvalue
            )
        n, d = X.shape
        family, K = self._family, len(self._family)
        lam = family.min_eigenvalue() if min_eigenvalue is None else min_eigenvalue(family)
        batch = self._batch_size(d)
        alpha = float(self.alpha)
        member_alpha = alpha if K == 1 else alpha * (1.0 - SELECTION_SHARE) / K
        # 1. every member's class certificate (at the target radius if any)
        tops, p_lows, rs, draws = (np.zeros((n, K)) for _ in range(4))
        member_class = np.full((n, K), -1, dtype=np.intp)
        for k in range(K):
            covariances = family.take(np.full(n, k))
            top, p_lower, abstained, r, n_draws = certify_rows(
                self._adapter(), X, covariances, n_samples=self.n_samples,
                n_samples_selection=self.n_samples_selection, alpha=member_alpha,
                vote=self.vote, seed=seed, batch_size=batch, progress=progress,
                target_p=None if radius is None else target_probability(radius, np.full(n, lam[k])),
                radius_tol=self.radius_tol if radius is None and self.sampling == "sequential" else None,
            )
            tops[:, k], p_lows[:, k], rs[:, k], draws[:, k] = top, p_lower, r, n_draws
            member_class[:, k] = np.where(abstained, -1, top)
        member_radius = rs * np.sqrt(lam)[None, :]
        # 2. the selector's thresholds (fixed number of draws)
        if K == 1:
            at_most = np.zeros((n, 0), dtype=bool)
            threshold_radius = np.zeros((n, 0))
            median = np.zeros(n, dtype=np.intp)
        else:
            noise = self._select_noise(n, d)
            sel_seed = derived_seed(seed, STAGE_SELECTOR)
            options = dict(vote="hard", batch_size=batch, progress=progress)
            counts0, _ = count_votes(self._selector_adapter(), X, noise, self.n_samples_selection,
                                     seed=sel_seed, stage=STAGE_SELECTION, **options)
            counts, _ = count_votes(self._selector_adapter(), X, noise, self.n_samples,
                                    seed=sel_seed, stage=STAGE_ESTIMATION, **options)
            at_most, r_h = threshold_certificates(counts0, counts, alpha * SELECTION_SHARE)
            s_lam = noise.min_eigenvalue() if min_eigenvalue is None else min_eigenvalue(noise)
            threshold_radius = r_h * np.sqrt(s_lam)[:, None]
            median = median_member(counts)
        ratio = self._family_ratio

        def inner_scale(rows, a, b):
            best_k = np.full(rows.size, a, dtype=np.intp)
            best_t, best_r = np.zeros(rows.size), np.full(rows.size, -1.0)
            for j in range(a, b + 1):
                t = np.ones(rows.size)
                for k in range(a, b + 1):
                    if k != j:
                        with np.errstate(divide="ignore", invalid="ignore"):
                            limit = rs[rows, k] / (rs[rows, j] * np.sqrt(ratio[j, k]))
                        t = np.minimum(t, np.nan_to_num(limit, nan=0.0, posinf=1.0))
                r = t * member_radius[rows, j]
                better = r > best_r
                best_k[better], best_t[better], best_r[better] = j, t[better], r[better]
            return best_k, best_t, best_r

        chosen, scale, selection, region = best_interval(
            at_most, threshold_radius, member_class, member_radius, inner_scale
        )
        abstained = chosen < 0
        if radius is not None:
            # at a target radius a row is certified exactly when its region holds the ball
            abstained |= region < radius
        k = np.where(abstained, median, chosen)
        rows = np.arange(n)
        r = np.where(abstained, 0.0, scale * rs[rows, k])
        extra = {}
        if K > 1:
            # back to the selector's Mahalanobis units (inf: the whole family)
            r_sel = selection / np.sqrt(s_lam)
            extra = dict(
                selection_covariance=noise,
                selection_mahalanobis_radius=np.where(abstained, 0.0, r_sel),
            )
        return (
            family.take(k), tops[rows, k].astype(np.intp), p_lows[rows, k], abstained, r,
            draws[rows, k].astype(np.int64), "deployed", None, extra,
        )

    def _deployed_member(self, X, seed, progress, *, alpha=None):
        """The member the deployed classifier selects at each row (and whether undecided)."""
        n, d = X.shape
        if len(self._family) == 1:
            return np.zeros(n, dtype=np.intp), np.zeros(n, dtype=bool)
        counts, _ = count_votes(
            self._selector_adapter(), X, self._select_noise(n, d), self.n_samples,
            seed=derived_seed(seed, STAGE_SELECTOR), stage=STAGE_PREDICTION, vote="hard",
            batch_size=self._batch_size(d), progress=progress,
        )
        member = median_member(counts)
        undecided = (
            np.zeros(n, dtype=bool) if alpha is None else median_undecided(counts, member, alpha)
        )
        return member, undecided

    def _sampling_chunk(self, X, progress, *, procedure, seed, **options):
        if not self._selects():
            return super()._sampling_chunk(X, progress, procedure=procedure, seed=seed, **options)
        abstaining = procedure is predict_rows
        member, undecided = self._deployed_member(
            X, seed, progress, alpha=float(self.alpha) if abstaining else None
        )
        out = procedure(
            self._adapter(), X, self._family.take(member), n_samples=self.n_samples,
            vote=self.vote, seed=seed, batch_size=self._batch_size(X.shape[1]),
            progress=progress, **options,
        )
        if abstaining:
            top, abstained, n_draws = out
            return top, abstained | undecided, n_draws
        return out

    # --------------------------------------------------------------- inference
    def _noise(self, X, adapter, seed, progress):
        covariances, info = self._search(X, adapter, seed, progress)
        guarantee = "fixed-noise" if self.method == "fixed" else "per-covariance"
        return covariances, guarantee, info

    def predict(self, X, memory=None):
        """Predicted class, each input smoothed with its own optimized covariance.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        memory : CertificateMemory, default=None
            With a memory, inputs are answered in order by memory-based
            certification (see :meth:`certify`): an input inside a stored
            region gets that region's class, and the memory is updated.
            Without, the argmax of :meth:`predict_proba`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        if memory is None:
            return super().predict(X)
        return self.certify(X, memory=memory).prediction

    def certify(self, X, radius=None, memory=None):
        """Optimize each input's covariance, then CERTIFY it on fresh draws.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        radius : float, default=None
            Target l2 radius (finite, >= 0). Without it, CERTIFY with
            ``n_samples`` estimation draws (``sampling="fixed"``) or stopping
            each input once its radius is within ``radius_tol`` of what its
            budget could give (``sampling="sequential"``). With it, each input
            is decided sequentially: it stops as soon as its region contains
            ``B2(x, radius)`` (certified, with a radius at least ``radius``)
            or ``radius`` is out of reach (abstained). Each claim fails with
            probability at most ``alpha``; the covariance search is the same.
        memory : CertificateMemory, default=None
            A user-owned store of certified regions. Without it, each
            certificate covers the classifier smoothed with that input's own
            covariance (``guarantee="per-covariance"``), which does not cover
            the deployed map ``x -> g_{Sigma_x}(x)`` (Sukenik et al., 2022).
            With it, the rows are processed in order by memory-based
            certification (:meth:`CertificateMemory.process`): a row inside a
            stored region gets that region's class and a region inside it; a
            new region is shrunk until disjoint from the stored regions of the
            other classes (or abstains), then stored. The certificates then
            hold for the stateful classifier made of the model *and* its
            memory (``guarantee="memory"``). The memory is updated in place.

        Returns
        -------
        certificate : Certificate
            Per-sample ``covariance`` (n, d, d), ``mahalanobis_radius``,
            ``radius`` (largest inscribed l2 ball), ``prediction``,
            ``abstained``, ``p_lower``, ``n_draws``; ``search_info`` holds the
            search's acceptance rates and seconds per iteration.
        """
        if memory is not None:
            from .._certify._memory import CertificateMemory

            if not isinstance(memory, CertificateMemory):
                raise TypeError(
                    f"memory must be a CertificateMemory, got {type(memory).__name__}."
                )
        return self._certify(X, radius=radius, memory=memory)

    def score(self, X, y, sample_weight=None):
        """Certified accuracy at ``self.radius``.

        The (weighted) fraction of inputs that are certified, correctly
        classified, and whose ball ``B2(x, radius)`` lies inside their certified
        ellipsoid. Abstentions count as failures. The inputs are certified at
        that radius sequentially (``certify(X, radius=self.radius)``), so most
        of them need a few hundred draws rather than ``n_samples``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        cert = self.certify(X, radius=self.radius)
        message = _unreachable_radius_message(cert, self.radius)
        if message is not None:
            warnings.warn(f"CertifiedRegion.score: {message}", UnreachableRadiusWarning,
                          stacklevel=2)
        return certified_accuracy(y, cert, self.radius, sample_weight=sample_weight)
