"""Semantic segmentation readers; importing this package registers them in ``DATASETS``."""
from cauchy.datasets.seg import coco, mask_folder, voc  # noqa: F401
