"""Evaluators per task (reset / process / evaluate); importing this package registers them all."""
from cauchy.metrics import cls, det, seg  # noqa: F401
