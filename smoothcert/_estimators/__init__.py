"""The estimators: BaseSmoothing, SmoothedClassifier, CertifiedRegion and base-model adapters."""
