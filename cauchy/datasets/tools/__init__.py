"""Dataset tools: format detection (later validation, statistics, conversion)."""
from cauchy.datasets.tools.detect import detect_cls_format
from cauchy.datasets.tools.detect_seg import detect_seg_format

__all__ = ["detect_cls_format", "detect_seg_format"]
