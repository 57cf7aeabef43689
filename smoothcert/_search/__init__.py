"""The per-input covariance search: one class per parametrization, objectives, gradient estimators."""

from ._searches import (
    MAX_FULL_FEATURES,
    CovarianceSearch,
    DiagonalSearch,
    FixedNoise,
    IsotropicSearch,
    LowRankSearch,
    RiemannianSearch,
    make_search,
)

__all__ = [
    "CovarianceSearch",
    "DiagonalSearch",
    "FixedNoise",
    "IsotropicSearch",
    "LowRankSearch",
    "MAX_FULL_FEATURES",
    "RiemannianSearch",
    "make_search",
]
