"""CertifiedRegion: data-dependent smoothing with a per-input noise covariance."""

import functools
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseSmoothing
from ._adapters import _unwrap_frozen, is_torch_net
from .._geometry._forms import RowCovariances
from .._search._ascent import MAX_FULL_FEATURES, search_covariances, search_predictions
from ..exceptions import UnreachableRadiusWarning
from ..metrics import _unreachable_radius_message, certified_accuracy

__all__ = ["CertifiedRegion", "MAX_RIEMANNIAN_FEATURES", "MAX_RIEMANNIAN_SCALE_RATIO"]

#: Largest input dimension at which ``method="riemannian"`` optimizes full
#: matrices; above, it optimizes the low-rank form.
MAX_RIEMANNIAN_FEATURES = MAX_FULL_FEATURES
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
        Certification (and prediction) draws per input. Not the number of
        training samples: ``HalvingGridSearchCV(resource="n_samples")``
        subsamples the training rows and never sets this parameter.
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
    }

    def __init__(
        self,
        estimator=None,
        *,
        method="riemannian",
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
        batch_size="auto",
        n_jobs=None,
        verbose=0,
        random_state=None,
    ):
        self.estimator = estimator
        self.method = method
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

    def _search_cost(self):
        return search_predictions(self.method, self.n_iter, self.n_samples_optim, self.n_features_in_)

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
