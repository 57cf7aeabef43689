"""Plots of certificates: scikit-learn style displays.

:class:`CertifiedAccuracyDisplay` draws the certified accuracy against the l2
radius, :class:`CertifiedRegionsDisplay` the certified regions of 2-D inputs.
Each is built with ``from_estimator`` (which certifies) or ``from_certificate``
(which uses a certificate you already have), draws with ``plot`` and keeps its
matplotlib artists as attributes.

matplotlib is optional (``pip install 'smoothcert[plot]'``); it is imported
only when a display is made or drawn.
"""

from ._accuracy import CertifiedAccuracyDisplay
from ._deprecated import plot_certified_accuracy, plot_certified_regions
from ._regions import CertifiedRegionsDisplay

__all__ = [
    "CertifiedAccuracyDisplay",
    "CertifiedRegionsDisplay",
    "plot_certified_accuracy",
    "plot_certified_regions",
]
