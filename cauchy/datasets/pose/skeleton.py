"""Keypoint metadata shared by readers, methods and evaluators: left/right pairs from keypoint names,
the flip permutation, and COCO's per-keypoint OKS sigmas. Torch-free."""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

COCO_SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
               0.087, 0.087, 0.089, 0.089]
"""COCO's 17 person keypoints' OKS constants (pycocotools' ``kpt_oks_sigmas``)."""

_SIDES = {"left": "right", "right": "left", "l": "r", "r": "l"}
_PARTS = re.compile(r"[^_\-\s.]+|[_\-\s.]+")


def mirror_name(name: str) -> str | None:
    """The name of ``name``'s mirror keypoint (``left_eye`` -> ``right_eye``, ``l_knee`` -> ``r_knee``,
    ``wrist_left`` -> ``wrist_right``), or None when the name says no side. Case is kept."""
    parts = _PARTS.findall(name)
    for i, part in enumerate(parts):
        other = _SIDES.get(part.lower())
        if other is not None and (len(part) > 1 or len(parts) > 1):
            swapped = other.upper() if part.isupper() else other.capitalize() if part[0].isupper() else other
            return "".join(parts[:i] + [swapped] + parts[i + 1:])
    return None


def flip_pairs_from_names(names: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs ``(left, right)`` of keypoints whose names mirror each other, in name order."""
    index = {name: i for i, name in enumerate(names)}
    pairs = []
    for i, name in enumerate(names):
        other = mirror_name(name)
        j = index.get(other) if other is not None else None
        if j is not None and i < j:
            pairs.append((i, j))
    return pairs


def flip_index(num_keypoints: int, pairs: Sequence[Sequence[int]]) -> np.ndarray:
    """The permutation a mirror image applies to keypoints: ``out[i]`` is the keypoint ``i`` becomes."""
    index = np.arange(num_keypoints, dtype=np.int64)
    for a, b in pairs:
        index[a], index[b] = b, a
    return index
