"""SmoothedClassifier: Gaussian randomized smoothing (Cohen et al., 2019)."""

import numpy as np

from ._base import BaseSmoothing
from .._geometry._forms import RowCovariances

__all__ = ["SmoothedClassifier"]


class SmoothedClassifier(BaseSmoothing):
    """Randomized-smoothing classifier with isotropic Gaussian noise.

    Wraps any classifier ``f`` into the smoothed classifier
    ``g(x) = argmax_c P(f(x + e) = c)``, ``e ~ N(0, sigma^2 I)`` (hard votes),
    or ``G(x) = E[F(x + e)]`` with ``F = predict_proba`` (soft votes), and
    certifies for each input an l2 radius inside which the prediction of the
    smoothed classifier cannot change, with probability at least ``1 - alpha``
    over the Monte-Carlo draws (Cohen et al., 2019; Salman et al., 2019).

    Parameters
    ----------
    estimator : classifier, default=None
        The base classifier, cloned and fitted by :meth:`fit`. ``None`` means
        :class:`~sklearn.linear_model.LogisticRegression`. A pre-fitted model
        is used as is when wrapped in :class:`sklearn.frozen.FrozenEstimator`.
        skorch ``NeuralNetClassifier`` nets are called through their torch
        module (float32, inference mode, on the net's device).
    sigma : float, default=0.25
        Standard deviation of the Gaussian noise (> 0).
    n_samples : int, default=100_000
        Monte-Carlo draws per input used to estimate (CERTIFY), to predict and
        to compute :meth:`predict_proba`. At least 2; with too few draws for
        ``alpha`` no input can be certified, and fitting warns
        (:class:`~smoothcert.exceptions.NoCertificateWarning`). Not the number
        of training samples: ``HalvingGridSearchCV(resource="n_samples")``
        subsamples the training rows and never sets this parameter.
    n_samples_selection : int, default=100
        Separate draws used by :meth:`certify` to select the top class before
        estimating it (``N0`` in Cohen et al.).
    alpha : float, default=0.001
        Failure probability of each certificate, in (0, 1).
    vote : {"hard", "soft"}, default="hard"
        ``"hard"`` smooths the predicted labels and certifies with the
        Clopper-Pearson bound; ``"soft"`` smooths ``predict_proba`` and
        certifies with a bound valid for means of [0, 1] scores (Hoeffding /
        empirical Bernstein).
    noise_augmentation : int, default=0
        Train the base model on this many Gaussian-noised copies
        ``X + N(0, sigma^2 I)`` of the training set instead of the clean data
        (the training that makes smoothing accurate); 0 trains on clean data.
    sampling : {"fixed", "sequential"}, default="fixed"
        ``"fixed"``: every input gets ``n_samples`` estimation draws (Cohen et
        al.'s CERTIFY and PREDICT exactly). ``"sequential"``: draws arrive in
        doubling blocks, ``alpha`` is spent over the looks, and an input stops
        once :meth:`certify` has a radius within ``radius_tol`` of what its
        full budget could give, or once :meth:`predict_abstain` (and
        :meth:`predict`) has decided; ``n_samples`` is then the budget.
        ``certify(X, radius=R)`` is always sequential.
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
        Largest number of noisy points passed to the base model at once (and
        held in memory). ``"auto"`` bounds the noise by 32 MiB and picks,
        within that bound, the fastest block size on the first calls.
    n_jobs : int, default=None
        Number of joblib workers over chunks of inputs. Results do not depend
        on it.
    verbose : int or bool, default=0
        Show a progress bar (requires tqdm) during long certifications.
    random_state : int, RandomState instance or None, default=None
        Seeds the noise. With an int, every result is reproducible and does not
        depend on ``batch_size``, ``n_jobs`` or the order of the inputs.

    Attributes
    ----------
    estimator_ : classifier
        The fitted base classifier.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit` (only for inputs with string
        column names).

    See Also
    --------
    CertifiedRegion : data-dependent smoothing with a per-input covariance.

    References
    ----------
    .. [1] J. Cohen, E. Rosenfeld, Z. Kolter. "Certified Adversarial Robustness
       via Randomized Smoothing". ICML 2019.
    .. [2] H. Salman et al. "Provably Robust Deep Learning via Adversarially
       Trained Smoothed Classifiers". NeurIPS 2019.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from sklearn.svm import SVC
    >>> from smoothcert import SmoothedClassifier
    >>> X, y = make_moons(n_samples=200, noise=0.1, random_state=0)
    >>> clf = SmoothedClassifier(SVC(), sigma=0.25, n_samples=1000, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    >>> cert = clf.certify(X[:5])
    >>> cert.radius.shape
    (5,)
    """

    def __init__(
        self,
        estimator=None,
        *,
        sigma=0.25,
        n_samples=100_000,
        n_samples_selection=100,
        alpha=0.001,
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
        self.sigma = sigma
        self.n_samples = n_samples
        self.n_samples_selection = n_samples_selection
        self.alpha = alpha
        self.vote = vote
        self.noise_augmentation = noise_augmentation
        self.sampling = sampling
        self.radius_tol = radius_tol
        self.noise_features = noise_features
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    def _noise(self, X, adapter, seed, progress):
        n = X.shape[0]
        covariances = RowCovariances.isotropic(
            np.full(n, float(self.sigma) ** 2), self._n_noise_features()
        )
        return covariances, "fixed-noise", None

    def certify(self, X, radius=None):
        """CERTIFY (Cohen et al., 2019): prediction and certified l2 radius per input.

        ``n_samples_selection`` draws choose the top class ``A``; fresh draws
        give a lower confidence bound ``p_lower`` of its probability at level
        ``alpha``. Where ``p_lower > 1/2`` the smoothed prediction is constant
        on the ball of radius ``sigma * Phi^-1(p_lower)``; elsewhere the
        certificate abstains.

        * ``radius=None``, ``sampling="fixed"``: exactly Cohen et al.'s
          CERTIFY with ``n_samples`` estimation draws per input.
        * ``radius=None``, ``sampling="sequential"``: each input stops once its
          radius is within ``radius_tol`` (relative) of what ``n_samples``
          draws could give it.
        * ``radius=R``: answers "is the ball ``B2(x, R)`` certified?" with as
          few draws as possible. Draws arrive in doubling blocks and an input
          stops as soon as it is certified at ``R`` (its radius is then at
          least ``R``) or ``R`` is out of reach (it then abstains). Each claim
          "``B2(x, R)`` is inside" fails with probability at most ``alpha``:
          the repeated looks are paid for by spending ``alpha`` over them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        radius : float, default=None
            Target l2 radius (finite, >= 0).

        Returns
        -------
        certificate : Certificate
            With ``covariance = sigma^2 I`` for every row,
            ``guarantee="fixed-noise"``, the estimation draws each row used in
            ``n_draws`` and ``target_radius=radius``.

        Examples
        --------
        >>> from sklearn.datasets import make_moons
        >>> from sklearn.linear_model import LogisticRegression
        >>> from smoothcert import SmoothedClassifier
        >>> X, y = make_moons(100, noise=0.1, random_state=0)
        >>> clf = SmoothedClassifier(LogisticRegression(), random_state=0).fit(X, y)
        >>> cert = clf.certify(X[:20], radius=0.1)
        >>> bool(cert.contains_ball(0.1).mean() > 0.5), bool(cert.n_draws.mean() < 1_000)
        (True, True)
        """
        return self._certify(X, radius=radius)
