"""The per-input covariance search: one class per parametrization (:mod:`smoothcert.search`), objectives, gradient estimators."""
