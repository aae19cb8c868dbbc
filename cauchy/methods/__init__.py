"""Methods per task; importing this package registers them all."""
from cauchy.methods import cls, det, seg  # noqa: F401
