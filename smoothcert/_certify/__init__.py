"""Statistics, CERTIFY / PREDICT, the Certificate, pull-back through pipelines, memory."""
