"""Cauchy control service (Flask): jobs, their processes, the REST and legacy APIs. Never imports torch."""
