"""Linear algebra, covariance forms, Fisher-Rao geometry and exact ellipsoid tests (the lowest layer)."""
