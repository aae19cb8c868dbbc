"""Geometric operations on a sample dict that keep image, boxes, mask and keypoints in step.

A sample holds ``image`` (HxWx3 uint8 RGB numpy array) and optionally ``boxes`` (float32 [N,4]
xyxy pixels) with per-box ``labels``/``difficult``/``iscrowd`` arrays, ``mask`` (HxW, any
integer dtype: one label per pixel), ``masks`` (uint8 [N,H,W]: one binary mask per box, as instance
segmentation has; padding adds 0, outside the object) and ``keypoints`` (float32 [N, K, 3] as x, y,
visibility: one row per box, which every operation keeps or drops with its box; [K, 3] for points
of no box; a keypoint that leaves the image gets visibility 0, and one with visibility 0 never gets more).
A ``flip_index`` (int [K]) names, for each keypoint, the one it becomes in a mirror image (the
data's left/right pairs); ``hflip`` uses it. An ``affine`` (float64 3x3) maps original pixels to the
sample's current ones: every operation here multiplies it by its own map, so predictions made on the
transformed image map back exactly (pose keeps one; other samples do not carry it).

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

BOX_FIELDS = ("labels", "difficult", "iscrowd", "masks", "keypoints")  # per-box arrays filtered with boxes

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
        if key in sample and (key != "keypoints" or sample[key].ndim == 3):  # [K, 3] points belong to no box
            sample[key] = sample[key][keep]


def _move_keypoints(sample: Sample, out: Sample, matrix: np.ndarray, w: int, h: int) -> None:
    """``out["keypoints"]``: the sample's mapped by the 3x3 ``matrix``; those leaving the ``w`` x ``h``
    image get visibility 0. Must run before boxes are filtered (it reads the sample's unfiltered rows)."""
    if "keypoints" not in sample:
        return
    kps = sample["keypoints"].astype(np.float32, copy=True)
    xy = kps[..., :2].astype(np.float64)
    kps[..., 0] = xy[..., 0] * matrix[0, 0] + xy[..., 1] * matrix[0, 1] + matrix[0, 2]
    kps[..., 1] = xy[..., 0] * matrix[1, 0] + xy[..., 1] * matrix[1, 1] + matrix[1, 2]
    outside = (kps[..., 0] < 0) | (kps[..., 0] >= w) | (kps[..., 1] < 0) | (kps[..., 1] >= h)
    kps[..., 2][outside] = 0
    out["keypoints"] = kps


def _record(sample: Sample, out: Sample, matrix: np.ndarray) -> None:
    """Multiply the sample's ``affine`` (when it keeps one) by this operation's 3x3 ``matrix``."""
    if "affine" in sample:
        out["affine"] = matrix @ sample["affine"]


def _keep_boxes(out: Sample, boxes: np.ndarray, area: np.ndarray, w: int, h: int, min_visible: float) -> None:
    """Clip ``boxes`` to the image and drop (with their per-box rows) those with too little left."""
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (bw > 0) & (bh > 0) & (bw * bh >= min_visible * area)
    out["boxes"] = boxes[keep]
    _filter_boxes(out, keep)


def crop(sample: Sample, x0: int, y0: int, w: int, h: int, *, fill: Any = 0, mask_fill: int = 0,
         min_visible: float = 0.0) -> Sample:
    """Cut the window ``[x0, x0 + w) x [y0, y0 + h)``; parts outside the image are padded.

    Boxes are shifted and clipped to the window; a box is dropped, with its keypoint row and other
    per-box fields, when nothing of it is left or when less than ``min_visible`` of its area is.
    Keypoints outside the window get visibility 0.
    """
    out = dict(sample)
    out["image"] = _place(sample["image"], x0, y0, w, h, fill)
    if "mask" in sample:
        out["mask"] = _place(sample["mask"], x0, y0, w, h, mask_fill)
    if "masks" in sample:
        out["masks"] = _place_stack(sample["masks"], x0, y0, w, h)
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64)
    _move_keypoints(sample, out, shift, w, h)
    _record(sample, out, shift)
    if "boxes" in sample:
        boxes = sample["boxes"] - np.array([x0, y0, x0, y0], dtype=np.float32)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        _keep_boxes(out, boxes, area, w, h, min_visible)
    return out


def to_cv2(matrix: np.ndarray) -> np.ndarray:
    """A 2x3 map of continuous coordinates as cv2.warpAffine takes it (its pixel centres are integers)."""
    a, b = matrix[:2, :2], matrix[:2, 2]
    return np.concatenate([a, (b + a @ np.array([0.5, 0.5]) - 0.5)[:, None]], axis=1)


def affine(sample: Sample, matrix: np.ndarray, w: int, h: int, *, fill: Any = 0, mask_fill: int = 0,
           interpolation: int = cv2.INTER_LINEAR, min_visible: float = 0.0) -> Sample:
    """Warp everything by the 2x3 (or 3x3) ``matrix`` (continuous coordinates, original -> output)
    into a ``w`` x ``h`` image: scale, rotation, translation and shear in one resampling.

    Masks use nearest-neighbour. Each box becomes the box around its four mapped corners, clipped
    and dropped (with its keypoint row) as in :func:`crop`; keypoints outside get visibility 0.
    """
    m3 = np.eye(3)
    m3[:2] = np.asarray(matrix, dtype=np.float64)[:2]
    cv_matrix = to_cv2(m3)
    out = dict(sample)
    out["image"] = cv2.warpAffine(sample["image"], cv_matrix, (w, h), flags=interpolation,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    if "mask" in sample:
        out["mask"] = cv2.warpAffine(sample["mask"], cv_matrix, (w, h), flags=cv2.INTER_NEAREST,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=mask_fill)
    if "masks" in sample:
        masks = sample["masks"]
        out["masks"] = np.stack([cv2.warpAffine(m, cv_matrix, (w, h), flags=cv2.INTER_NEAREST) for m in masks]) \
            if len(masks) else np.zeros((0, h, w), dtype=masks.dtype)
    _move_keypoints(sample, out, m3, w, h)
    _record(sample, out, m3)
    if "boxes" in sample:
        b = sample["boxes"].astype(np.float64)
        corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1)  # [N, 4, 2]
        mapped = corners @ m3[:2, :2].T + m3[:2, 2]
        boxes = np.concatenate([mapped.min(axis=1), mapped.max(axis=1)], axis=1).astype(np.float32).reshape(-1, 4)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        _keep_boxes(out, boxes, area, w, h, min_visible)
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
    scale = np.array([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], dtype=np.float64)
    _move_keypoints(sample, out, scale, w, h)
    _record(sample, out, scale)
    return out


def hflip(sample: Sample, flip_pairs: Sequence[Sequence[int]] = ()) -> Sample:
    """Mirror left-right. Keypoints swap roles (left eye <-> right eye) by the sample's own
    ``flip_index`` (the data's pairs, as pose readers give it), else by ``flip_pairs`` (index pairs)."""
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
    mirror = np.array([[-1, 0, width], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    _record(sample, out, mirror)
    if "keypoints" in sample:
        kps = sample["keypoints"].copy()
        kps[..., 0] = width - kps[..., 0]
        if "flip_index" in sample:
            kps = kps[..., np.asarray(sample["flip_index"]), :]
        else:
            for a, b in flip_pairs:
                kps[..., [a, b], :] = kps[..., [b, a], :]
        out["keypoints"] = kps
    return out
