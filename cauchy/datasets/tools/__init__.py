"""Dataset tools: format detection (later validation, statistics, conversion)."""
from cauchy.datasets.tools.detect import detect_cls_format

__all__ = ["detect_cls_format"]
