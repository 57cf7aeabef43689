"""Covariance searches of :class:`~smoothcert.CertifiedRegion`, one class per form of the noise.

``CertifiedRegion(method="diagonal")`` builds ``DiagonalSearch()``; pass a
search object to set its own parameters, e.g.
``CertifiedRegion(search=DiagonalSearch(learning_rate=0.1))``, and tune them
in a grid search as ``search__learning_rate``. Every search is the same
projected adaptive-moment ascent of ``gap * M(Sigma)`` on its form (see
:class:`CovarianceSearch` and the user guide, *Four ways to choose the noise*).
"""

from ._search._searches import (
    MAX_FULL_FEATURES,
    CovarianceSearch,
    DiagonalSearch,
    FixedNoise,
    IsotropicSearch,
    LowRankSearch,
    RiemannianSearch,
)

__all__ = [
    "CovarianceSearch",
    "DiagonalSearch",
    "FixedNoise",
    "IsotropicSearch",
    "LowRankSearch",
    "MAX_FULL_FEATURES",
    "RiemannianSearch",
]
