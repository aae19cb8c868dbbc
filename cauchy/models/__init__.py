"""Models per task; importing this package registers them all (one module per family)."""
from cauchy.models import cls, det, seg  # noqa: F401
