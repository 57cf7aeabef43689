"""Evaluation of certificates: certified accuracy, its curve, summaries and a scorer.

The headline metric of randomized smoothing is the *certified accuracy at
radius R*: the fraction of labelled inputs that are certified (not abstained),
correctly classified, and whose l2 ball ``B2(x, R)`` lies inside the certified
region. For an ellipsoid ``{x + d : d^T Sigma^-1 d <= r^2}`` the ball is inside
exactly when ``R <= r * sqrt(lambda_min(Sigma))`` (:attr:`Certificate.radius`),
so the metric compares every method (fixed, isotropic, diagonal, Riemannian
noise) on the same footing. A ball whose radius equals the certified radius
counts as inside.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_consistent_length
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import _check_sample_weight, column_or_1d

from ._certify._certificate import Certificate
from .exceptions import UnreachableRadiusWarning

__all__ = [
    "certified_accuracy",
    "certified_accuracy_curve",
    "certificate_summary",
    "make_certified_scorer",
]

#: Number of radii of the default grid of :func:`certified_accuracy_curve`.
DEFAULT_N_RADII = 100


def _check_targets(y_true, certificate, sample_weight):
    y_true = column_or_1d(y_true, warn=True)
    check_consistent_length(y_true, certificate.prediction)
    if sample_weight is not None:
        check_consistent_length(y_true, sample_weight)
    weights = _check_sample_weight(
        sample_weight, certificate.center, dtype=np.float64, ensure_non_negative=True
    )
    if len(y_true) == 0:
        raise ValueError("certified accuracy of an empty set of inputs is undefined.")
    try:
        unique_labels(y_true, np.asarray(certificate.prediction))
    except ValueError as exc:
        raise ValueError(
            "y_true and the certificate's predictions must hold labels of the same type "
            f"(e.g. both strings or both numbers): {exc}"
        ) from None
    if weights.sum() <= 0:
        raise ValueError("sample_weight must have a positive sum.")
    return y_true, weights


def _correct(y_true, certificate):
    """Certified and correctly classified rows (boolean mask)."""
    return certificate.certified & (np.asarray(certificate.prediction) == y_true)


@validate_params(
    {
        "y_true": ["array-like"],
        "certificate": [Certificate],
        "radius": [Interval(Real, 0, None, closed="left")],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def certified_accuracy(y_true, certificate, radius, *, sample_weight=None):
    """Certified accuracy at l2 radius ``radius``.

    The (weighted) fraction of inputs that are certified (not abstained),
    correctly classified, and whose ball ``B2(x, radius)`` lies inside the
    certified region (:meth:`Certificate.contains_ball`). A ball whose radius
    equals the certified radius counts as inside; abstentions count as
    failures.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels of the certified inputs.
    certificate : Certificate
        Result of ``certify(X)`` on the same inputs.
    radius : float
        Non-negative, finite l2 radius.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights (positive sum).

    Returns
    -------
    accuracy : float
        In [0, 1].

    See Also
    --------
    certified_accuracy_curve : the same metric over a range of radii.
    make_certified_scorer : a scorer for model selection.

    Examples
    --------
    >>> import numpy as np
    >>> from smoothcert import Certificate, certified_accuracy
    >>> cert = Certificate(
    ...     center=np.zeros((3, 2)), prediction=np.array([0, 1, 1]),
    ...     abstained=np.array([False, False, True]),
    ...     covariance=[1.0, 1.0, 1.0],
    ...     mahalanobis_radius=np.array([0.5, 1.0, 0.0]),
    ...     p_lower=np.array([0.7, 0.85, 0.3]), alpha=0.001)
    >>> round(certified_accuracy([0, 1, 1], cert, 0.5), 4)
    0.6667
    >>> round(certified_accuracy([0, 1, 1], cert, 0.75), 4)
    0.3333
    """
    y_true, weights = _check_targets(y_true, certificate, sample_weight)
    hits = _correct(y_true, certificate) & certificate.contains_ball(float(radius))
    return float(np.dot(weights, hits) / weights.sum())


@validate_params(
    {
        "y_true": ["array-like"],
        "certificate": [Certificate],
        "radii": [Interval(Integral, 2, None, closed="left"), "array-like", None],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def certified_accuracy_curve(y_true, certificate, radii=None, *, sample_weight=None):
    """Certified accuracy as a function of the l2 radius.

    The curve measures the guarantee the certificate states
    (``certificate.guarantee``, see :class:`Certificate`): with
    ``"per-covariance"`` certificates, the radii hold for the classifier
    smoothed with each input's own covariance, not for the deployed classifier.

    Parameters
    ----------
    y_true, certificate
        As in :func:`certified_accuracy`.
    radii : int or array-like of shape (n_radii,), default=None
        Radii at which to evaluate. ``None``: 100 evenly spaced radii from 0 to
        the largest certified radius; an int: that many radii on the same
        range. Given radii must be finite and non-negative and are returned in
        the given order.
    sample_weight : array-like of shape (n_samples,), default=None
        As in :func:`certified_accuracy`.

    Returns
    -------
    radii : ndarray of shape (n_radii,)
        The radii.
    accuracies : ndarray of shape (n_radii,)
        Certified accuracy at each radius; non-increasing in the radius.

    Examples
    --------
    >>> from smoothcert import Certificate, certified_accuracy_curve
    >>> cert = Certificate(
    ...     center=[[0.0, 0.0], [0.0, 0.0]], prediction=[0, 1], abstained=[False, False],
    ...     covariance=[1.0, 1.0], mahalanobis_radius=[0.5, 1.0], p_lower=[0.7, 0.85],
    ...     alpha=0.001)
    >>> radii, acc = certified_accuracy_curve([0, 1], cert, radii=[0.0, 0.5, 0.8, 1.2])
    >>> acc
    array([1. , 1. , 0.5, 0. ])
    >>> certified_accuracy_curve([0, 1], cert, radii=3)[0]  # 3 radii up to the largest
    array([0. , 0.5, 1. ])
    """
    y_true, weights = _check_targets(y_true, certificate, sample_weight)
    if radii is None or isinstance(radii, Integral):
        n_radii = DEFAULT_N_RADII if radii is None else int(radii)
        top = float(certificate.radius[certificate.certified].max(initial=0.0))
        radii = np.linspace(0.0, top, n_radii)
    else:
        radii = np.asarray(radii, dtype=np.float64)
        if radii.ndim != 1 or radii.size == 0:
            raise ValueError(f"radii must be a non-empty 1-D array, got shape {radii.shape}.")
        if np.any(~np.isfinite(radii)) or np.any(radii < 0):
            raise ValueError("radii must be finite and non-negative.")
    correct = _correct(y_true, certificate)
    # accuracy(R) = sum of weights of correct rows with radius >= R: sort once.
    rad = certificate.radius[correct]
    w = weights[correct]
    order = np.argsort(rad, kind="stable")
    rad, w = rad[order], w[order]
    tail = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])
    below = np.searchsorted(rad, radii, side="left")  # rows with radius < R
    return radii, tail[below] / weights.sum()


@validate_params(
    {"certificate": [Certificate], "y_true": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def certificate_summary(certificate, y_true=None):
    """Summary statistics of a certificate.

    Parameters
    ----------
    certificate : Certificate
        Result of ``certify(X)``.
    y_true : array-like of shape (n_samples,), default=None
        True labels; when given, the accuracies are filled in.

    Returns
    -------
    summary : dict
        With keys

        - ``"n_inputs"``, ``"n_certified"`` (not abstained), ``"abstention_rate"``;
        - ``"mean_radius"``, ``"median_radius"``: inscribed l2 radius over all
          inputs (0 where abstaining, as in Cohen et al.);
        - ``"mean_log_volume"``, ``"median_log_volume"``: log-volume of the
          certified regions over the certified rows (NaN if none);
        - ``"mean_proxy_radius"``: ANCER's proxy radius
          ``r * det(Sigma)^(1/(2d))`` over all inputs (0 where abstaining);
        - ``"accuracy"``: accuracy of the predictions of the certified rows,
          abstentions counting as failures, and ``"certified_accuracy"``: the
          certified accuracy at radius 0 (they coincide; both NaN without
          ``y_true``).

    Examples
    --------
    One input certified with diagonal noise (variances 1 and 0.25), one
    abstention: the l2 radius is ``0.5 * sqrt(0.25)``, the proxy radius
    ``0.5 * 0.25 ** (1 / 4)``, both averaged with the abstention's 0.

    >>> import numpy as np
    >>> from smoothcert import Certificate, certificate_summary
    >>> cert = Certificate(
    ...     center=np.zeros((2, 2)), covariance=np.array([[1.0, 0.25], [1.0, 1.0]]),
    ...     prediction=np.array([0, 1]), abstained=np.array([False, True]),
    ...     mahalanobis_radius=np.array([0.5, 0.0]), p_lower=np.array([0.7, 0.4]),
    ...     alpha=0.001)
    >>> summary = certificate_summary(cert, y_true=[0, 1])
    >>> summary["abstention_rate"], summary["mean_radius"], round(summary["mean_proxy_radius"], 4)
    (0.5, 0.125, 0.1768)
    >>> summary["certified_accuracy"]
    0.5
    """
    n = len(certificate)
    certified = certificate.certified
    n_certified = int(certified.sum())
    log_volume = certificate.log_volume[certified]
    has_rows = n > 0
    summary = {
        "n_inputs": n,
        "n_certified": n_certified,
        "abstention_rate": float(1.0 - n_certified / n) if has_rows else float("nan"),
        "mean_radius": float(certificate.radius.mean()) if has_rows else float("nan"),
        "median_radius": float(np.median(certificate.radius)) if has_rows else float("nan"),
        "mean_log_volume": float(log_volume.mean()) if n_certified else float("nan"),
        "median_log_volume": float(np.median(log_volume)) if n_certified else float("nan"),
        "mean_proxy_radius": (
            float(np.where(certified, certificate.proxy_radius, 0.0).mean())
            if has_rows
            else float("nan")
        ),
        "accuracy": float("nan"),
        "certified_accuracy": float("nan"),
    }
    if y_true is not None:
        acc = certified_accuracy(y_true, certificate, 0.0)
        summary["accuracy"] = acc
        summary["certified_accuracy"] = acc
    return summary


def _unreachable_radius_message(certificate, radius):
    """Why a certified accuracy at ``radius`` is 0 for want of radius, or None.

    The message names the largest certified radius and what to check; it is
    None when some certified region contains the ball ``B2(x, radius)``.
    """
    if radius <= 0 or len(certificate) == 0 or certificate.contains_ball(radius).any():
        return None
    # the radius each row's bound supports (a row certified at a target radius
    # that it cannot reach stops early and abstains, but keeps its bound)
    from ._certify._stats import mahalanobis_radius

    p_lower = np.nan_to_num(certificate.p_lower, nan=0.0)
    reached = mahalanobis_radius(p_lower) * np.sqrt(certificate.covariances.min_eigenvalue())
    largest = float(np.max(reached, initial=0.0))
    return (
        f"no input reaches the radius {radius:g}: the largest l2 radius reached is "
        f"{largest:.3g} (over {len(certificate)} inputs), so the certified accuracy is 0 "
        "whatever the model. Check that the "
        "radius is in the units of the X given to the scorer (with a scaler in front of "
        "the smoother, radii are measured in raw feature units and a feature with a tiny "
        "scale caps every radius), the scales of the features, and sigma (the certified "
        "radius is at most about 4 * sigma with 100,000 draws)."
    )


class _CertifiedScorer:
    """Scorer ``(estimator, X, y) -> certified accuracy at a fixed radius``."""

    def __init__(self, radius):
        self.radius = radius
        self._warned = False

    def __call__(self, estimator, X, y, sample_weight=None):
        from ._certify._pullback import certify

        cert = certify(estimator, X, radius=self.radius)
        if not self._warned:
            message = _unreachable_radius_message(cert, self.radius)
            if message is not None:
                self._warned = True
                warnings.warn(f"make_certified_scorer: {message}", UnreachableRadiusWarning,
                              stacklevel=2)
        return certified_accuracy(y, cert, self.radius, sample_weight=sample_weight)

    def _accept_sample_weight(self):
        # Lets scikit-learn's multimetric scorer forward sample_weight.
        return True

    def __repr__(self):
        return f"make_certified_scorer(radius={self.radius!r})"


@validate_params(
    {"radius": [Interval(Real, 0, None, closed="left")]},
    prefer_skip_nested_validation=True,
)
def make_certified_scorer(radius):
    """A scorer computing the certified accuracy at a fixed l2 radius.

    ``make_scorer(response_method=...)`` cannot call ``certify``, so this
    returns a plain callable ``scorer(estimator, X, y, sample_weight=None)``,
    usable as ``scoring=`` of :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_val_score` and friends, alone or as
    a value of a dict of scorers (with ``refit=`` naming it). Greater is better.

    The estimator may be a fitted :class:`SmoothedClassifier`,
    :class:`CertifiedRegion` (or anything with a ``certify`` method), or a
    :class:`~sklearn.pipeline.Pipeline` whose last step is one of them: the
    certificate is then pulled back to raw input space (see
    :func:`smoothcert.certify`), so ``radius`` is always measured in the space
    of the ``X`` given to the scorer.

    The score measures the guarantee of the certificates the estimator makes
    (``Certificate.guarantee``): for a :class:`SmoothedClassifier` the
    ``"fixed-noise"`` guarantee, which covers its own ``predict``; for a
    data-dependent :class:`CertifiedRegion` the ``"per-covariance"`` one, in
    which each input's radius holds for the classifier smoothed with that
    input's own covariance and not for the deployed classifier, whose noise
    changes with the input (``"deployed"`` where the estimator certifies its
    own ``predict``).

    Parameters
    ----------
    radius : float
        Non-negative, finite l2 radius.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sample_weight=None) -> float``.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.model_selection import GridSearchCV
    >>> from smoothcert import SmoothedClassifier, make_certified_scorer
    >>> X, y = make_blobs(60, centers=[[-2, 0], [2, 0]], cluster_std=0.3, random_state=0)
    >>> search = GridSearchCV(
    ...     SmoothedClassifier(n_samples=1000, random_state=0),
    ...     {"sigma": [0.05, 0.5]}, scoring=make_certified_scorer(0.5), cv=3,
    ... ).fit(X, y)
    >>> search.best_params_
    {'sigma': 0.5}
    """
    return _CertifiedScorer(float(radius))
