"""CertifiedRegion: data-dependent smoothing with a per-input noise covariance."""

import functools
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ._base import BaseSmoothing
from ._adapters import _unwrap_frozen, is_torch_net, make_adapter
from ._guarantees import Guarantee, make_guarantee
from ._family import (
    SELECTION_QUANTILE,
    SELECTION_SHARE,
    choose_prototypes,
    family_ratios,
    fit_selector,
    label_inputs,
    member_levels,
    training_subset,
)
from .._certify._procedures import certify_rows, count_votes, predict_rows
from .._certify._selection import (
    best_interval,
    selected_member,
    selection_undecided,
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
from .._search._searches import (
    MAX_FULL_FEATURES,
    CovarianceSearch,
    FixedNoise,
    make_search,
    merge_search_info,
)
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

    Every search is one projected adaptive-moment (Adam) ascent of
    ``gap * M(Sigma)``, ``gap = Phi^-1(psi_A) - Phi^-1(psi_B)`` the gap of the
    two largest smoothed scores (clipped away from 0 and 1) and ``M`` the
    certified volume's scale plus the inscribed ball, on the log of the noise
    scales (and, for the full form, in the whitened coordinates of the
    exponential map), with one Monte-Carlo pass per iteration
    (:mod:`smoothcert.search`). See the user guide, *Four ways to choose the
    noise* and *The Fisher-Rao geometry*.

    Parameters
    ----------
    estimator : classifier, default=None
        The base classifier (``None``: LogisticRegression). Black-box models
        (trees, forests, SVMs, kNN, boosting) are optimized with score-function
        gradients; skorch nets with pathwise (autograd) gradients.
    method : {"fixed", "isotropic", "diagonal", "riemannian", "lowrank"}, default="riemannian"
        Parametrization of ``Sigma_x`` (see above); builds the default search
        of that form (:mod:`smoothcert.search`).
    guarantee : {"deployed", "per-covariance"} or Guarantee, default="deployed"
        Which classifier the certificates hold for. ``"deployed"``: the
        classifier of :meth:`predict`, :meth:`predict_abstain` and
        :meth:`predict_proba`, which smooths each input with a member of a
        small family of covariances fitted in :meth:`fit`, chosen by a
        randomized-smoothed selector; each certified region is the
        intersection of a selection region (where the choice is certified not
        to leave members that certify the class) with the class ellipsoids.
        No search runs at prediction time. ``"per-covariance"``: each input's
        own searched covariance; the certificate covers the classifier
        smoothed with that covariance, not the deployed map
        ``x -> g_{Sigma_x}(x)`` (the literature's certificate). The strings
        build the default objects of :mod:`smoothcert.guarantees`; pass
        ``DeployedGuarantee(n_prototypes=3, ...)`` to set the family's size,
        the selector and its noise, tuned in a grid search as
        ``guarantee__n_prototypes``. See the user guide, *What a certificate
        guarantees*.
    search : CovarianceSearch, default=None
        The covariance search with its own parameters (learning rate,
        objective, bounds, gradient estimator), e.g.
        ``DiagonalSearch(learning_rate=0.1)``; it replaces ``method``. Its
        parameters are tuned as ``search__learning_rate`` in a grid search.
    sigma : float, default=0.25
        Initial noise level, and the noise of ``method="fixed"``.
    n_iter : int, default=100
        Ascent iterations per stage of the search.
    n_samples_optim : int, default=128
        Optimization draws per input and iteration (antithetic pairs). They are
        independent of the certification draws.
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
        Vote of the certification. The searches read the base model's scores
        whatever the vote (see the ``votes`` parameter of the searches).
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
    noise_features : array-like of int, str or bool, default=None
        The input columns that receive noise: column indices, column names
        (when fitted on a DataFrame with string column names) or a boolean
        mask of length ``n_features``. ``None``: every column. The other
        columns (categories, one-hot codes, identifiers, flags) are left as
        they are in every draw, and the certificates cover perturbations of
        the chosen columns with the others fixed (their ``noise_features``
        field).
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
    covariance_family_ : ndarray of shape (n_members, n_features, n_features)
        ``guarantee="deployed"``: the family, ordered by smallest eigenvalue.
    selector_ : classifier or None
        ``guarantee="deployed"``: the fitted selector (None when the family
        has one member).
    family_search_info_ : dict
        ``guarantee="deployed"``: the ``search_info`` of the search run in
        :meth:`fit`.

    Notes
    -----
    Cost per input: the search makes ``n_iter + 1`` passes of
    ``n_samples_optim`` draws per stage at most (1 stage for ``"isotropic"``,
    2 for ``"diagonal"``, 3 for ``"riemannian"`` and ``"lowrank"``; the
    isotropic stage stops a row once its objective no longer rises, after 50
    iterations at least); certification
    adds ``n_samples_selection + n_samples``. The full Riemannian stage also
    costs a few ``d x d`` eigendecompositions per input and step, hence the
    low-rank form above ``d = 512``, which costs ``O(d)`` per draw.

    With ``guarantee="per-covariance"`` a certificate covers the classifier
    smoothed with *that input's* covariance, not the map
    ``x -> g_{Sigma_x}(x)`` (Sukenik et al., 2022). With the default
    ``guarantee="deployed"``, :meth:`fit` pays the search on the guarantee's
    ``n_family_inputs`` inputs, and :meth:`certify` costs
    ``n_samples_selection + n_samples`` per family member and once more for
    the selector, per input, with no search.

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
        "search": [CovarianceSearch, None],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "n_samples_optim": [Interval(Integral, 2, None, closed="left")],
        "radius": [Interval(Real, 0, None, closed="left")],
        "guarantee": [StrOptions({"deployed", "per-covariance"}), Guarantee],
    }

    def __init__(
        self,
        estimator=None,
        *,
        method="riemannian",
        guarantee="deployed",
        search=None,
        sigma=0.25,
        n_iter=100,
        n_samples_optim=128,
        n_samples=100_000,
        n_samples_selection=100,
        alpha=0.001,
        radius=0.25,
        vote="hard",
        noise_augmentation=0,
        sampling="fixed",
        radius_tol=0.05,
        noise_features=None,
        batch_size="auto",
        n_jobs=None,
        verbose=0,
        random_state=None,
    ):
        self.estimator = estimator
        self.method = method
        self.guarantee = guarantee
        self.search = search
        self.sigma = sigma
        self.n_iter = n_iter
        self.n_samples_optim = n_samples_optim
        self.n_samples = n_samples
        self.n_samples_selection = n_samples_selection
        self.alpha = alpha
        self.radius = radius
        self.vote = vote
        self.noise_augmentation = noise_augmentation
        self.sampling = sampling
        self.radius_tol = radius_tol
        self.noise_features = noise_features
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _covariance_search(self):
        return make_search(self.method, self.search)

    def _guarantee(self):
        """The guarantee object: ``guarantee`` itself, or the default one of its name."""
        return make_guarantee(self.guarantee)

    def set_params(self, **params):
        """Set the parameters of this estimator and of its nested objects.

        Parameters
        ----------
        **params : dict
            Estimator parameters, and ``<component>__<parameter>`` for the
            nested objects (``search__learning_rate``,
            ``guarantee__n_prototypes``, ``estimator__C``).

        Returns
        -------
        self : CertifiedRegion
            This estimator.
        """
        # a component named by a placeholder (a string, or None for the
        # method's default) has no object whose parameters could be set
        for name, placeholder, what, instead in (
            ("guarantee", str, "is a string", "guarantee=DeployedGuarantee() (smoothcert.guarantees)"),
            ("search", type(None), "(the method's default search)", "e.g. search=DiagonalSearch() (smoothcert.search)"),
        ):
            value = params.get(name, getattr(self, name, None))
            nested = sorted(key for key in params if key.startswith(f"{name}__"))
            if nested and isinstance(value, placeholder):
                raise ValueError(
                    f"{nested[0]} sets a parameter of a {name} object, but {name}={value!r} {what}: "
                    f"pass {instead} to set or tune its parameters."
                )
        return super().set_params(**params)

    def _validate_extra_params(self):
        self._guarantee().check()
        search = self._covariance_search()
        low, high = search.check(self.sigma)
        self._check_sigma_range(low, high)
        spread = high / low
        stages = search.stages(MAX_RIEMANNIAN_FEATURES)
        if any(stage.kind in ("full", "lowrank") for stage in stages) and spread > MAX_RIEMANNIAN_SCALE_RATIO:
            raise ValueError(
                f"sigma_bounds={search.sigma_bounds!r} lets the noise scales of one covariance "
                f"differ by a factor {spread:g} (scale_cap={search.scale_cap!r}); "
                f"{type(search).__name__} accepts at most "
                f"{MAX_RIEMANNIAN_SCALE_RATIO:g} (beyond, the covariance is numerically "
                "singular in float64). Narrow sigma_bounds or use DiagonalSearch (method='diagonal')."
            )
        base = _unwrap_frozen(self._base_estimator())
        if search.gradient == "pathwise" and not is_torch_net(base):
            raise ValueError(
                "gradient='pathwise' needs a differentiable base model (a skorch "
                f"net); {type(base).__name__} has no input gradients. "
                "Use gradient='score' (or 'auto')."
            )

    # ------------------------------------------------------------------ search
    def _search_cost(self):
        if self._selects():
            # the smoothed selector, instead of a search at every input
            return self.n_samples_selection + self.n_samples
        return self._per_input_search_cost()

    def _per_input_search_cost(self):
        return self._covariance_search().n_predictions(self.n_iter, self.n_samples_optim, self._n_noise_features())

    def _search_passes(self):
        return len(self._covariance_search().stages(self.n_features_in_)) * int(self.n_iter)

    def _search(self, X, adapter, seed, progress=None):
        return self._covariance_search().search(
            adapter,
            X,
            sigma=float(self.sigma),
            n_iter=self.n_iter,
            n_samples_optim=self.n_samples_optim,
            seed=seed,
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
            Zero outside the columns ``noise_features`` (when set).
        """
        X = self._check_X(X)
        work = functools.partial(self._search_chunk, seed=self._seed())
        parts = self._run(X, work, self._search_cost(), "optimize_covariance")
        return self._embedded_matrices(RowCovariances.concatenate(parts))

    def _search_chunk(self, X, progress, *, seed):
        return self._search(X, self._adapter(), seed, progress)[0]

    # ------------------------------------------------- the deployed guarantee
    def fit(self, X, y=None, sample_weight=None, **fit_params):
        """Fit the base classifier, then (``guarantee="deployed"``) the covariance family.

        With ``guarantee="deployed"`` (and a method other than ``"fixed"``),
        the covariance search runs on the guarantee's ``n_family_inputs``
        training inputs; the covariances it finds are clustered into at most
        ``n_prototypes - 1`` prototypes, which join ``sigma^2 I`` in the
        family; ``n_selector_inputs`` training inputs are labelled with their
        best family member (on draws independent of every later certificate)
        and the guarantee's ``selector`` is trained on them (see
        :class:`~smoothcert.guarantees.DeployedGuarantee`). These inputs are chosen by their
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
        if not self._deployed_family():
            return
        guarantee = self._guarantee()
        seed = derived_seed(self._seed(), STAGE_FAMILY)
        words = np.random.SeedSequence(seed).generate_state(2)
        labelled = training_subset(X, guarantee.n_selector_inputs)
        searched = training_subset(X, guarantee.n_family_inputs)
        work = functools.partial(self._search_info_chunk, seed=seed)
        parts = self._run(X[searched], work, self._per_input_search_cost(), "fit")
        found = RowCovariances.concatenate([part[0] for part in parts])
        self.family_search_info_ = merge_search_info([part[1] for part in parts])
        family = choose_prototypes(found, guarantee.n_prototypes, float(self.sigma), int(words[0]))
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
            else fit_selector(guarantee.selector, X[labelled], labels, int(words[1]))
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

    def _deployed_family(self):
        """Whether this estimator's guarantee calls for a family (not fixed noise)."""
        fixed = isinstance(self._covariance_search(), FixedNoise)
        return self._guarantee().name == "deployed" and not fixed

    def _selects(self):
        """Whether certify / predict use the family and its smoothed selector."""
        if not self._deployed_family():
            return False
        if not hasattr(self, "_family"):
            raise ValueError(
                "guarantee='deployed' needs the covariance family fitted by fit; this "
                "estimator was fitted with another guarantee or method. Call fit again."
            )
        return True

    def _selection_sigma(self):
        return self._guarantee().selection_scale(self.sigma)

    def _select_noise(self, n, d):
        # the selector's noise perturbs the same columns as the class noise
        return RowCovariances.isotropic(
            np.full(n, self._selection_sigma() ** 2), self._family.n_features
        )

    def _selector_adapter(self):
        return make_adapter(self.selector_, np.arange(len(self._family)), True)

    def _certify_chunk(self, X, progress, *, seed, radius, min_eigenvalue, covariances=None,
                       memory=False):
        if memory or covariances is not None or not self._selects():
            # memory-based certification and given covariances search (or take)
            # each input's own covariance, whatever the guarantee
            return super()._certify_chunk(
                X, progress, seed=seed, radius=radius, min_eigenvalue=min_eigenvalue,
                covariances=covariances,
            )
        n, d = X.shape
        family, K = self._family, len(self._family)
        lam = family.min_eigenvalue() if min_eigenvalue is None else min_eigenvalue(family)
        batch = self._batch_size(d)
        alpha = float(self.alpha)
        member_alpha = member_levels(family, float(self.sigma), alpha)
        # 1. every member's class certificate (at the target radius if any)
        tops, p_lows, rs, draws = (np.zeros((n, K)) for _ in range(4))
        member_class = np.full((n, K), -1, dtype=np.intp)
        for k in range(K):
            covariances = family.take(np.full(n, k))
            top, p_lower, abstained, r, n_draws = certify_rows(
                self._adapter(), X, covariances, n_samples=self.n_samples,
                n_samples_selection=self.n_samples_selection, alpha=member_alpha[k],
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
            selected = np.zeros(n, dtype=np.intp)
        else:
            noise = self._select_noise(n, d)
            sel_seed = derived_seed(seed, STAGE_SELECTOR)
            options = dict(vote="hard", batch_size=batch, progress=progress)
            counts0, _ = count_votes(self._selector_adapter(), X, noise, self.n_samples_selection,
                                     seed=sel_seed, stage=STAGE_SELECTION, **options)
            counts, _ = count_votes(self._selector_adapter(), X, noise, self.n_samples,
                                    seed=sel_seed, stage=STAGE_ESTIMATION, **options)
            at_most, r_h = threshold_certificates(counts0, counts, alpha * SELECTION_SHARE,
                                                  SELECTION_QUANTILE)
            s_lam = noise.min_eigenvalue() if min_eigenvalue is None else min_eigenvalue(noise)
            threshold_radius = r_h * np.sqrt(s_lam)[:, None]
            selected = selected_member(counts, SELECTION_QUANTILE)
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
        k = np.where(abstained, selected, chosen)
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
            draws[rows, k].astype(np.int64), self._guarantee().name, None, extra,
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
        member = selected_member(counts, SELECTION_QUANTILE)
        undecided = (
            np.zeros(n, dtype=bool) if alpha is None
            else selection_undecided(counts, member, alpha, SELECTION_QUANTILE)
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
        guarantee = "per-covariance" if info["stages"] else "fixed-noise"
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

    def certify(self, X, radius=None, memory=None, covariance=None):
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
        covariance : array-like of shape (n_samples, n_features, n_features), default=None
            Given noise covariances, one SPD matrix per input: the search is
            skipped and each input is certified with its own (e.g. to compare
            the covariances of another tool under one CERTIFY). Inputs are
            then certified in this process (``n_jobs`` is not used); results
            are the same.

        Returns
        -------
        certificate : Certificate
            Per-sample ``covariance`` (n, d, d), ``mahalanobis_radius``,
            ``radius`` (largest inscribed l2 ball), ``prediction``,
            ``abstained``, ``p_lower``, ``n_draws``; ``search_info`` holds the
            search's stages, seconds per iteration and base-model predictions
            per input.
        """
        if memory is not None:
            from .._certify._memory import CertificateMemory

            if not isinstance(memory, CertificateMemory):
                raise TypeError(
                    f"memory must be a CertificateMemory, got {type(memory).__name__}."
                )
        given = None
        if covariance is not None:
            given = functools.partial(self._given_covariances, covariance)
        return self._certify(X, radius=radius, memory=memory, covariances=given)

    def _given_covariances(self, covariance, X):
        """The rows' given covariances, validated (called once ``X`` is validated)."""
        try:
            matrices = np.asarray(covariance, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"covariance must be an array of numbers, got {type(covariance).__name__}.") from exc
        n, d = X.shape
        if matrices.shape != (n, d, d):
            raise ValueError(f"covariance must have shape (n_samples, n_features, n_features) = {(n, d, d)}, "
                             f"got {matrices.shape}.")
        if not np.all(np.isfinite(matrices)):
            raise ValueError("covariance must be finite.")
        if not np.allclose(matrices, np.swapaxes(matrices, 1, 2), rtol=1e-10, atol=1e-12):
            raise ValueError("covariance must hold symmetric matrices.")
        if np.any(np.linalg.eigvalsh(matrices)[:, 0] <= 0):
            raise ValueError("covariance must hold positive definite matrices.")
        return RowCovariances.from_matrices(matrices)

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
