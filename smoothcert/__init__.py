"""smoothcert: certified robustness for scikit-learn and skorch classifiers.

Randomized smoothing with Gaussian noise (:class:`SmoothedClassifier`) and
data-dependent smoothing with a per-input noise covariance optimized up to the
full SPD manifold with the Fisher-Rao metric (:class:`CertifiedRegion`).
"""

from importlib import metadata as _metadata

from ._certify._certificate import Certificate
from ._certify._memory import CertificateMemory
from ._certify._pullback import certify
from ._estimators._region import CertifiedRegion
from ._estimators._smoothed import SmoothedClassifier
from .metrics import (
    certificate_summary,
    certified_accuracy,
    certified_accuracy_curve,
    make_certified_scorer,
)

try:
    __version__ = _metadata.version("smoothcert")
except _metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
    __version__ = "0+unknown"

__all__ = ["Certificate", "CertifiedRegion", "SmoothedClassifier", "__version__"]
__all__ += ["CertificateMemory"]
__all__ += [
    "certify",
    "certified_accuracy",
    "certified_accuracy_curve",
    "certificate_summary",
    "make_certified_scorer",
]
