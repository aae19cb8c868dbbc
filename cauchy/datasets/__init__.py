"""Dataset readers and transforms; importing this package fills ``DATASETS`` and ``TRANSFORMS``."""
from cauchy.datasets import cls, transforms  # noqa: F401
