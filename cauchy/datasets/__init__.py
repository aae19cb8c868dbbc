"""Dataset readers and transforms; importing this package fills ``DATASETS`` and ``TRANSFORMS``."""
from cauchy.datasets import cls, det, seg, transforms  # noqa: F401
