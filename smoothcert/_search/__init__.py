"""The per-input covariance search: objectives, gradient estimators, the ascent."""
