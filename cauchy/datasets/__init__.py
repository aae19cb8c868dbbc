"""Dataset readers and transforms; importing this package fills ``DATASETS`` and ``TRANSFORMS``."""
from cauchy.datasets import cls, det, transforms  # noqa: F401
