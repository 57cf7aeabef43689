"""Warnings that smoothcert emits, so that they can be filtered by category."""

__all__ = ["CostWarning", "EncodedNoiseWarning", "UnreachableRadiusWarning"]


class UnreachableRadiusWarning(UserWarning):
    """No input's certified region reaches the radius at which accuracy is measured.

    Emitted (once per scorer) by :func:`~smoothcert.make_certified_scorer` and by
    :meth:`~smoothcert.CertifiedRegion.score` when the certified accuracy is 0
    because no input can be certified at the radius, with the largest radius
    reached and what to check (units of the radius, feature scales, ``sigma``).
    """


class CostWarning(UserWarning):
    """A call will need a very large number of base-model predictions.

    Emitted before any draw when a call (covariance search and certification
    included) is about to make more than
    :data:`smoothcert._engine._progress.COST_WARNING_PREDICTIONS` base-model
    predictions, with the count and what reduces it.
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
