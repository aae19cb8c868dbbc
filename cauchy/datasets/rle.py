"""Instance masks as COCO run-length encodings (pycocotools): readers turn a COCO ``segmentation``
(polygons, uncompressed or compressed RLE) into one compressed RLE per object, checked once when
the dataset is built; samples decode them into an [N,H,W] uint8 stack; predictions are encoded
back for evaluation and for COCO results files. An RLE is ``{"size": [h, w], "counts": bytes}``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from cauchy.datasets.errors import DatasetError

RLE = dict[str, Any]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def compressed_counts(counts: bytes) -> list[int]:
    """The run lengths of a compressed RLE string (pycocotools' ``rleFrString``), to check them."""
    runs: list[int] = []
    p = 0
    while p < len(counts):
        x = k = 0
        more = True
        while more:
            if p >= len(counts):
                raise ValueError("the string ends inside a run length")
            c = counts[p] - 48
            x |= (c & 0x1F) << 5 * k
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << 5 * k
        runs.append(x + runs[-2] if len(runs) > 2 else x)
    return runs


def from_segmentation(segmentation: Any, height: int, width: int, where: str) -> RLE:
    """A COCO ``segmentation`` of an ``height`` x ``width`` image as one compressed RLE; a malformed
    one is a DatasetError naming ``where``."""
    if isinstance(segmentation, list):
        if not segmentation:
            raise DatasetError(f"{where}: segmentation is an empty list of polygons")
        for k, poly in enumerate(segmentation):
            if not (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0 and all(map(_is_number, poly))):
                raise DatasetError(f"{where}: segmentation must be polygons of at least 3 x, y pairs; polygon {k} "
                                   f"is {str(poly)[:80]}")
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if not (isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), (list, str, bytes))):
        raise DatasetError(f"{where}: segmentation must be a list of polygons or an RLE "
                           f"{{\"size\", \"counts\"}}, got {str(segmentation)[:80]}")
    if list(segmentation.get("size", [])) != [height, width]:
        raise DatasetError(f"{where}: RLE size {segmentation.get('size')} is not the image's [{height}, {width}]")
    counts = segmentation["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != height * width:
            raise DatasetError(f"{where}: uncompressed RLE counts must be integers >= 0 summing to {height * width}")
        return mask_utils.frPyObjects(segmentation, height, width)
    raw = counts.encode("ascii", "replace") if isinstance(counts, str) else counts
    try:
        runs = compressed_counts(raw)
    except ValueError as exc:
        raise DatasetError(f"{where}: compressed RLE counts are malformed ({exc})") from None
    if min(runs, default=0) < 0 or sum(runs) != height * width:
        raise DatasetError(f"{where}: compressed RLE counts must be run lengths >= 0 summing to {height * width}")
    return {"size": [height, width], "counts": raw}


def decode(rles: Sequence[RLE], height: int, width: int) -> np.ndarray:
    """An [N,H,W] uint8 stack (0/1) of ``rles``, which all are of an ``height`` x ``width`` image."""
    if not rles:
        return np.zeros((0, height, width), dtype=np.uint8)
    return np.ascontiguousarray(mask_utils.decode(list(rles)).transpose(2, 0, 1))


def encode(masks: np.ndarray) -> list[RLE]:
    """[N,H,W] binary masks (bool or 0/1) as compressed RLEs."""
    if len(masks) == 0:
        return []
    return mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))


def area(rles: Sequence[RLE]) -> np.ndarray:
    return mask_utils.area(list(rles)).astype(np.float64) if rles else np.zeros(0)


def to_json(rle: RLE) -> dict[str, Any]:
    """The RLE as COCO results files write it (``counts`` as an ASCII string)."""
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]], "counts": counts.decode("ascii") if isinstance(counts, bytes)
            else counts}
