"""Guarantees of :class:`~smoothcert.CertifiedRegion`: one class per classifier the certificates cover.

A guarantee object says which classifier a :class:`CertifiedRegion`'s
certificates hold for and carries the parameters of that choice, so that the
estimator's own parameters stay those every guarantee reads. Its ``name`` is
the string ``Certificate.guarantee`` carries, and the string that
``CertifiedRegion(guarantee=...)`` accepts to build the default object.

* :class:`DeployedGuarantee` (``"deployed"``): the stateless classifier of
  ``predict``, which smooths each input with one member of a small family of
  covariances fitted in ``fit``, chosen by a randomized-smoothed selector.
* :class:`PerCovarianceGuarantee` (``"per-covariance"``): each input's own
  searched covariance; the certificate covers the classifier smoothed with
  that covariance.

The objects hold parameters only: the estimator fits the family and certifies
(through the one Monte-Carlo engine), reading them.
"""

from numbers import Integral, Real

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import HasMethods, Interval

__all__ = [
    "DeployedGuarantee",
    "Guarantee",
    "PerCovarianceGuarantee",
    "SELECTION_SIGMA_FACTOR",
    "guarantee_name",
    "make_guarantee",
]

#: ``selection_sigma=None`` smooths the selector with this multiple of the
#: estimator's ``sigma`` (measured on the benchmarks page: with the selection
#: quantile :data:`~smoothcert._estimators._family.SELECTION_QUANTILE` of 0.1,
#: the large members' selection balls reach about ``2 s``, past the radius
#: ``sigma^2 I`` can certify, while ``sigma^2 I``'s own selection stays
#: certified near decision boundaries).
SELECTION_SIGMA_FACTOR = 2.5


class Guarantee(BaseEstimator):
    """Base class of the guarantees of :class:`~smoothcert.CertifiedRegion` (not used directly).

    A guarantee names the classifier the certificates hold for (``name``,
    the value of ``Certificate.guarantee``) and holds the parameters of that
    choice, tuned in a grid search as ``guarantee__<parameter>``.

    Attributes
    ----------
    name : str
        The guarantee's name: ``"deployed"`` or ``"per-covariance"``.
    """

    #: The value of ``Certificate.guarantee`` (subclasses).
    name = None

    _parameter_constraints: dict = {}

    def check(self):
        """Validate the parameters (before any draw).

        Returns
        -------
        self : Guarantee
            This guarantee.

        Raises
        ------
        ValueError or TypeError
            Naming the parameter that is out of its range or of the wrong type.
        """
        self._validate_params()
        return self


class DeployedGuarantee(Guarantee):
    """Certificates that hold for the deployed classifier of ``predict``.

    :meth:`CertifiedRegion.fit <smoothcert.CertifiedRegion.fit>` runs the
    covariance search on ``n_family_inputs`` training inputs, clusters the
    covariances it finds into a *family* of at most ``n_prototypes``
    members (``sigma^2 I`` and medoids of the searched covariances), labels
    ``n_selector_inputs`` training inputs with their best member and trains
    the ``selector`` on them. At a query the selector is smoothed with
    isotropic noise of scale ``selection_sigma`` and picks the member; the
    certified region is the intersection of a *selection region* (where the
    choice is certified not to leave members that certify the class) with the
    class ellipsoids. No search runs at prediction time. See the user guide,
    *What a certificate guarantees*.

    Parameters
    ----------
    n_prototypes : int, default=2
        Largest number of covariances in the family (``sigma^2 I`` and
        medoids of the covariances searched on training inputs); members no
        training input is labelled with are dropped.
    selector : classifier, default=None
        The classifier from inputs to family members (``None``: a random
        forest of 25 trees with leaves of at least 5 inputs). It is cloned
        and trained in ``fit``.
    selection_sigma : float, default=None
        Noise scale of the selector's isotropic smoothing, finite and
        positive (``None``: ``2.5`` times the estimator's ``sigma``).
    n_family_inputs : int, default=128
        Training inputs on which ``fit`` runs the covariance search to build
        the family.
    n_selector_inputs : int, default=1024
        Training inputs labelled with their best member to train the
        selector.

    Attributes
    ----------
    name : str
        ``"deployed"``.

    See Also
    --------
    PerCovarianceGuarantee : Certificates of each input's own covariance.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from smoothcert import CertifiedRegion
    >>> from smoothcert.guarantees import DeployedGuarantee
    >>> X, y = make_moons(n_samples=200, noise=0.1, random_state=0)
    >>> guarantee = DeployedGuarantee(n_prototypes=3, n_family_inputs=16)
    >>> region = CertifiedRegion(method="isotropic", guarantee=guarantee, n_iter=3,
    ...                          n_samples=200, random_state=0).fit(X, y)
    >>> region.get_params()["guarantee__n_prototypes"]
    3
    >>> region.certify(X[:2]).guarantee
    'deployed'
    >>> guarantee.selection_scale(sigma=0.25)
    0.625
    """

    name = "deployed"

    _parameter_constraints: dict = {
        "n_prototypes": [Interval(Integral, 1, None, closed="left")],
        "selector": [HasMethods(["fit", "predict"]), None],
        "selection_sigma": [Interval(Real, 0, None, closed="neither"), None],
        "n_family_inputs": [Interval(Integral, 1, None, closed="left")],
        "n_selector_inputs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, n_prototypes=2, selector=None, selection_sigma=None, n_family_inputs=128,
                 n_selector_inputs=1024):
        self.n_prototypes = n_prototypes
        self.selector = selector
        self.selection_sigma = selection_sigma
        self.n_family_inputs = n_family_inputs
        self.n_selector_inputs = n_selector_inputs

    def selection_scale(self, sigma):
        """Noise scale of the selector's smoothing.

        Parameters
        ----------
        sigma : float
            The estimator's ``sigma``.

        Returns
        -------
        scale : float
            ``selection_sigma``, or ``2.5 * sigma`` when it is ``None``.
        """
        if self.selection_sigma is None:
            return SELECTION_SIGMA_FACTOR * float(sigma)
        return float(self.selection_sigma)


class PerCovarianceGuarantee(Guarantee):
    """Certificates of the classifier smoothed with each input's own searched covariance.

    Each input is certified with the covariance the search finds for it: the
    certificate covers ``g_{Sigma_x}``, the classifier smoothed with *that*
    covariance, not the deployed map ``x -> g_{Sigma_x}(x)`` (Sukenik et al.,
    2022); this is the literature's certificate. It has no parameters.

    Attributes
    ----------
    name : str
        ``"per-covariance"``.

    See Also
    --------
    DeployedGuarantee : Certificates of the deployed classifier.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from smoothcert import CertifiedRegion
    >>> from smoothcert.guarantees import PerCovarianceGuarantee
    >>> X, y = make_moons(n_samples=100, noise=0.1, random_state=0)
    >>> region = CertifiedRegion(method="isotropic", guarantee=PerCovarianceGuarantee(),
    ...                          n_iter=3, n_samples=200, random_state=0).fit(X, y)
    >>> region.certify(X[:2]).guarantee
    'per-covariance'
    """

    name = "per-covariance"


#: The guarantee each string of ``CertifiedRegion(guarantee=...)`` builds.
GUARANTEES = {cls.name: cls for cls in (DeployedGuarantee, PerCovarianceGuarantee)}


def make_guarantee(guarantee):
    """The guarantee object of ``guarantee``: the object itself, or the default one of a name.

    Parameters
    ----------
    guarantee : {"deployed", "per-covariance"} or Guarantee

    Returns
    -------
    guarantee : Guarantee
    """
    if isinstance(guarantee, Guarantee):
        return guarantee
    if isinstance(guarantee, str):
        if guarantee in GUARANTEES:
            return GUARANTEES[guarantee]()
        raise ValueError(f"guarantee must be one of {sorted(GUARANTEES)} or a guarantee object, "
                         f"got {guarantee!r}.")
    raise TypeError(
        f"guarantee must be one of {sorted(GUARANTEES)} or a guarantee object "
        f"(smoothcert.guarantees.DeployedGuarantee(...)), got {guarantee!r}."
    )


def guarantee_name(guarantee):
    """The name (``"deployed"``, ``"per-covariance"``) of a guarantee string or object."""
    return make_guarantee(guarantee).name
