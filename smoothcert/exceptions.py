"""Warnings that smoothcert emits, so that they can be filtered by category."""

__all__ = ["CostWarning", "EncodedNoiseWarning", "NoCertificateWarning", "UnreachableRadiusWarning"]


class UnreachableRadiusWarning(UserWarning):
    """No input's certified region reaches the radius at which accuracy is measured.

    Emitted (once per scorer) by :func:`~smoothcert.make_certified_scorer` and by
    :meth:`~smoothcert.CertifiedRegion.score` when the certified accuracy is 0
    because no input can be certified at the radius, with the largest radius
    reached and what to check (units of the radius, feature scales, ``sigma``).
    """


class CostWarning(UserWarning):
    """A call is projected to take long (more than 10 minutes).

    Emitted before any draw when a call's base-model predictions (covariance
    search and certification included), at the speed of the base model measured
    on a small batch of the inputs and shared among the workers, would take more
    than :data:`smoothcert._engine._progress.COST_WARNING_SECONDS`; the message
    gives the count, the measured speed, the projected time and what reduces it.
    """


class NoCertificateWarning(UserWarning):
    """``alpha`` and ``n_samples`` make every certificate impossible.

    Emitted at ``fit`` and before each Monte-Carlo call when even ``n_samples``
    draws that all vote for the top class give a lower confidence bound of its
    probability of at most 1/2 (with hard votes, when ``alpha ** (1 / n_samples)
    <= 1/2``): every input would abstain, silently.
    """


class EncodedNoiseWarning(UserWarning):
    """Gaussian noise reaches input columns that the base model encodes as categories.

    Emitted by ``fit`` of :class:`~smoothcert.SmoothedClassifier` and
    :class:`~smoothcert.CertifiedRegion` when the base model is a pipeline
    whose :class:`~sklearn.compose.ColumnTransformer` passes some input
    columns to an encoder (``OneHotEncoder``, ``OrdinalEncoder``,
    ``TargetEncoder``) and ``noise_features`` lets noise reach them: a noisy
    category code is no category (an all-zero one-hot row, or an "unknown
    category" error). The message names those columns; exclude them with
    ``noise_features``.
    """
