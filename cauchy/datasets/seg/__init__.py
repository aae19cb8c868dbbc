"""Semantic segmentation readers; importing this package registers them in ``DATASETS``."""
