"""Detection readers; importing this package registers them in ``DATASETS``."""
from cauchy.datasets.det import coco, torchcv_json, voc  # noqa: F401
