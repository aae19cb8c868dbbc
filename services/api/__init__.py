"""Blueprints of the control service: the REST API (``/api/v1``) and the legacy endpoints (``/cauchy``)."""
