"""Covariance forms: one class per way of storing a batch of noise covariances.

A form holds one Gaussian noise covariance per input in the cheapest exact
representation and knows everything the rest of the library asks of it:

* **storage** -- ``values``, ``take``, ``concatenate``, ``matrices``;
* **spectrum** -- eigenvalues, their bounds, log-determinant;
* **sampling** -- a square-root :class:`NoiseFactor` (``e = Sigma^(1/2) z``
  with the *symmetric* root, so that standard normals ``z`` are the whitened
  coordinates of the search), whitening, the factor of a linear image;
* **affine images** -- ``scaled`` (``D Sigma D``), ``congruence``
  (``B Sigma B^T``), ``rescaled`` and the precision, for the pull-back through
  pipelines, and ``L^T`` / ``L^-T`` of the noise factor ``L`` (directions
  between input space and the whitened coordinates of the search).

The search's mathematics on a form (its parametrization, bounds, Fisher-Rao
norm and step, the projection of whitened tangent vectors and of the shape
term's gradient) is not here: it lives in the search stage of that form
(``smoothcert._search._stages``).

The forms are :class:`IsotropicCovariances` (``sigma_i^2 I``),
:class:`DiagonalCovariances` (``diag(s_i^2)``), :class:`FullCovariances`
(SPD matrices) and :class:`LowRankCovariances` (``(D^-1 + V V^T)^-1``: a
diagonal shrunk along ``k`` directions, ``O(d k)`` per row, for large ``d``). Adding a form is adding one subclass of
:class:`RowCovariances`, which registers itself under its ``kind``, and one
search stage for it.
"""

from ._base import FORMS, NoiseFactor, RowCovariances
from ._diagonal import DiagonalCovariances
from ._full import FullCovariances
from ._isotropic import IsotropicCovariances
from ._lowrank import LowRankCovariances, LowRankFactor, lowrank_svd

__all__ = [
    "RowCovariances",
    "IsotropicCovariances",
    "DiagonalCovariances",
    "FullCovariances",
    "LowRankCovariances",
    "LowRankFactor",
    "lowrank_svd",
    "NoiseFactor",
    "FORMS",
]
