"""Guarantees of :class:`~smoothcert.CertifiedRegion`, one class per classifier the certificates cover.

``CertifiedRegion(guarantee="deployed")`` (the default) builds
``DeployedGuarantee()`` and ``guarantee="per-covariance"`` builds
``PerCovarianceGuarantee()``; pass a guarantee object to set its own
parameters, e.g.
``CertifiedRegion(guarantee=DeployedGuarantee(n_prototypes=3))``, and tune
them in a grid search as ``guarantee__n_prototypes``. Each object's ``name``
is the value of ``Certificate.guarantee`` its certificates carry (see
:class:`Guarantee` and the user guide, *What a certificate guarantees*).
"""

from ._estimators._guarantees import DeployedGuarantee, Guarantee, PerCovarianceGuarantee

__all__ = ["DeployedGuarantee", "Guarantee", "PerCovarianceGuarantee"]
