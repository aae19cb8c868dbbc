"""Geometric operations on a sample dict that keep image, boxes, mask and keypoints in step.

A sample holds ``image`` (HxWx3 uint8 RGB numpy array) and optionally ``boxes`` (float32 [N,4]
xyxy pixels) with per-box ``labels``/``difficult``/``iscrowd`` arrays, ``mask`` (HxW, any
integer dtype: one label per pixel), ``masks`` (uint8 [N,H,W]: one binary mask per box, as instance
segmentation has; padding adds 0, outside the object) and ``keypoints`` (float32 [..., K, 3] as x, y,
visibility).

Coordinates are continuous: pixel column ``i`` covers ``[i, i + 1)``, so a box spanning the whole
image is ``[0, 0, W, H]``, a horizontal flip maps ``x -> W - x`` and a resize scales by
``new / old``. Every function returns a new dict and never writes into the input arrays (the
image may come back as a view of the input when a crop lies inside it).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

Sample = dict[str, Any]

BOX_FIELDS = ("labels", "difficult", "iscrowd", "masks")  # per-box arrays filtered together with boxes

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


def interpolation_flag(name: str) -> int:
    """cv2 flag for an interpolation name; ``area`` antialiases strong downscaling, ``linear`` does not."""
    try:
        return INTERPOLATIONS[name]
    except KeyError:
        raise ValueError(f"interpolation {name!r} is not one of {sorted(INTERPOLATIONS)}") from None


def _place(array: np.ndarray, x0: int, y0: int, w: int, h: int, fill: Any) -> np.ndarray:
    """The ``w`` x ``h`` window at (x0, y0) of ``array``, padded with ``fill`` where it leaves it."""
    height, width = array.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + w <= width and y0 + h <= height:
        return array[y0:y0 + h, x0:x0 + w]
    out = np.empty((h, w) + array.shape[2:], dtype=array.dtype)
    out[...] = fill
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + w, width), min(y0 + h, height)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = array[iy0:iy1, ix0:ix1]
    return out


def _place_stack(masks: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """:func:`_place` for an [N,H,W] stack: the same window of every mask, padded with 0."""
    return _place(masks.transpose(1, 2, 0), x0, y0, w, h, 0).transpose(2, 0, 1)


def _filter_boxes(sample: Sample, keep: np.ndarray) -> None:
    for key in BOX_FIELDS:
        if key in sample:
            sample[key] = sample[key][keep]


def crop(sample: Sample, x0: int, y0: int, w: int, h: int, *, fill: Any = 0, mask_fill: int = 0,
         min_visible: float = 0.0) -> Sample:
    """Cut the window ``[x0, x0 + w) x [y0, y0 + h)``; parts outside the image are padded.

    Boxes are shifted and clipped to the window; a box is dropped when nothing of it is left or
    when less than ``min_visible`` of its area is. Keypoints outside the window get visibility 0.
    """
    out = dict(sample)
    out["image"] = _place(sample["image"], x0, y0, w, h, fill)
    if "mask" in sample:
        out["mask"] = _place(sample["mask"], x0, y0, w, h, mask_fill)
    if "masks" in sample:
        out["masks"] = _place_stack(sample["masks"], x0, y0, w, h)
    if "boxes" in sample:
        boxes = sample["boxes"] - np.array([x0, y0, x0, y0], dtype=np.float32)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        keep = (bw > 0) & (bh > 0) & (bw * bh >= min_visible * area)
        out["boxes"] = boxes[keep]
        _filter_boxes(out, keep)
    if "keypoints" in sample:
        kps = sample["keypoints"].copy()
        kps[..., 0] -= x0
        kps[..., 1] -= y0
        outside = (kps[..., 0] < 0) | (kps[..., 0] >= w) | (kps[..., 1] < 0) | (kps[..., 1] >= h)
        kps[..., 2][outside] = 0
        out["keypoints"] = kps
    return out


def _nearest_indices(old: int, new: int) -> np.ndarray:
    """Source index of each output pixel, sampling at pixel centres (cv2's INTER_NEAREST does not)."""
    return np.minimum(((np.arange(new) + 0.5) * (old / new)).astype(np.intp), old - 1)


def resize(sample: Sample, h: int, w: int, interpolation: int = cv2.INTER_LINEAR) -> Sample:
    """Scale everything to ``h`` x ``w``; the mask uses nearest-neighbour so labels stay labels (one
    ``take`` per axis: several times faster than indexing both at once)."""
    out = dict(sample)
    old_h, old_w = sample["image"].shape[:2]
    if (old_h, old_w) == (h, w):
        return out
    out["image"] = cv2.resize(sample["image"], (w, h), interpolation=interpolation)
    if "mask" in sample:
        out["mask"] = sample["mask"].take(_nearest_indices(old_h, h), axis=0).take(_nearest_indices(old_w, w), axis=1)
    if "masks" in sample:
        out["masks"] = sample["masks"].take(_nearest_indices(old_h, h), axis=1).take(_nearest_indices(old_w, w), axis=2)
    sx, sy = w / old_w, h / old_h
    if "boxes" in sample:
        boxes = sample["boxes"] * np.array([sx, sy, sx, sy], dtype=np.float32)
        np.clip(boxes, 0, np.array([w, h, w, h], dtype=np.float32), out=boxes)  # float32 rounding can overshoot
        out["boxes"] = boxes
    if "keypoints" in sample:
        kps = sample["keypoints"].copy()
        kps[..., 0] *= sx
        kps[..., 1] *= sy
        out["keypoints"] = kps
    return out


def hflip(sample: Sample, flip_pairs: Sequence[Sequence[int]] = ()) -> Sample:
    """Mirror left-right; ``flip_pairs`` lists keypoint indices that swap roles (left/right eye)."""
    out = dict(sample)
    width = sample["image"].shape[1]
    out["image"] = cv2.flip(sample["image"], 1)
    if "mask" in sample:
        out["mask"] = np.ascontiguousarray(sample["mask"][:, ::-1])
    if "masks" in sample:
        out["masks"] = np.ascontiguousarray(sample["masks"][:, :, ::-1])
    if "boxes" in sample:
        boxes = sample["boxes"].copy()
        boxes[:, 0], boxes[:, 2] = width - sample["boxes"][:, 2], width - sample["boxes"][:, 0]
        out["boxes"] = boxes
    if "keypoints" in sample:
        kps = sample["keypoints"].copy()
        kps[..., 0] = width - kps[..., 0]
        for a, b in flip_pairs:
            kps[..., [a, b], :] = kps[..., [b, a], :]
        out["keypoints"] = kps
    return out
