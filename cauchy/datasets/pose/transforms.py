"""Pose transforms: the top-down person crop and a random affine of the whole image, each one warp.

Both build one 3x3 map (continuous coordinates) and call ``geometry.affine``, so a person's crop,
its random scale and rotation cost one resampling of only the output pixels, and keypoints, boxes
and the sample's ``affine`` record move with the image.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cauchy.datasets import geometry
from cauchy.datasets.geometry import Sample
from cauchy.datasets.rng import rng
from cauchy.datasets.transforms import Fill, Size, _range, _scale_range, _size
from cauchy.registry import TRANSFORMS


def similarity(centre: Sequence[float], scale: float, degrees: float, out_centre: Sequence[float]) -> np.ndarray:
    """The 3x3 map that scales by ``scale`` and rotates by ``degrees`` (counter-clockwise on screen)
    about ``centre`` and puts ``centre`` at ``out_centre``."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    cx, cy = centre
    ox, oy = out_centre
    return np.array([[cos, sin, ox - cos * cx - sin * cy],
                     [-sin, cos, oy + sin * cx - cos * cy],
                     [0.0, 0.0, 1.0]])


def person_window(box: Sequence[float], aspect: float, box_scale: float) -> tuple[float, float, float, float]:
    """``(cx, cy, width, height)`` of ``box`` (xyxy) grown to the ``aspect`` (w / h) and by ``box_scale``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)
    if w / h > aspect:
        h = w / aspect
    else:
        w = h * aspect
    return (x0 + x1) / 2, (y0 + y1) / 2, w * box_scale, h * box_scale


@TRANSFORMS.register("top_down_affine")
class TopDownAffine:
    """Cut one person out by its box (the sample's only box; the whole image when it has none, as
    for predicting on a picture of one person) into a ``size`` [h, w] input: the box grown to the
    input's aspect ratio and by ``box_scale``, then, for training, scaled by a factor drawn from
    ``scale``, rotated by up to ``rotation`` degrees either way and shifted by up to ``shift`` of its
    size."""

    def __init__(self, size: Size, box_scale: float = 1.25, scale: Sequence[float] = (1.0, 1.0),
                 rotation: float = 0.0, shift: float = 0.0, fill: Fill = 0) -> None:
        self.size = _size(size)
        if box_scale <= 0 or rotation < 0 or shift < 0:
            raise ValueError(f"box_scale must be > 0, rotation and shift >= 0; got {box_scale}, {rotation}, {shift}")
        self.box_scale, self.scale, self.rotation, self.shift, self.fill = \
            box_scale, _scale_range(scale), rotation, shift, fill

    def __call__(self, sample: Sample) -> Sample:
        h, w = self.size
        sample = {"affine": np.eye(3), **sample}  # an unannotated image starts its record here
        boxes = sample.get("boxes")
        if boxes is not None and len(boxes) > 1:
            raise ValueError(f"top_down_affine: a top-down sample holds one person, this one has {len(boxes)} "
                             f"boxes (read with data.params.samples = \"person\")")
        height, width = sample["image"].shape[:2]
        box = boxes[0] if boxes is not None and len(boxes) else (0, 0, width, height)
        cx, cy, bw, _ = person_window(box, w / h, self.box_scale)
        gen = rng()
        factor = gen.uniform(*self.scale) if self.scale != (1.0, 1.0) else 1.0
        degrees = gen.uniform(-self.rotation, self.rotation) if self.rotation else 0.0
        if self.shift:
            cx, cy = cx + gen.uniform(-self.shift, self.shift) * bw, cy + gen.uniform(-self.shift, self.shift) * bw * h / w
        matrix = similarity((cx, cy), w / (bw * factor), degrees, (w / 2, h / 2))
        return geometry.affine(sample, matrix, w, h, fill=self.fill)


@TRANSFORMS.register("random_affine")
class RandomAffine:
    """Scale by a factor from ``scale``, rotate by up to ``rotation`` degrees and translate by up to
    ``translate`` of the side, about the image centre, into an image of the same size (or ``size``
    [h, w], the centre mapped to its centre): the bottom-up augmentation."""

    def __init__(self, scale: Sequence[float] = (1.0, 1.0), rotation: float = 0.0, translate: float = 0.0,
                 size: Size | None = None, fill: Fill = 0, mask_fill: int = 0, min_visible: float = 0.0) -> None:
        self.scale = _scale_range(scale)
        self.translate = _range((0.0, translate), "translate")[1]
        if rotation < 0:
            raise ValueError(f"rotation: expected degrees >= 0, got {rotation!r}")
        self.rotation, self.size = rotation, None if size is None else _size(size)
        self.fill, self.mask_fill, self.min_visible = fill, mask_fill, min_visible

    def __call__(self, sample: Sample) -> Sample:
        height, width = sample["image"].shape[:2]
        h, w = self.size or (height, width)
        gen = rng()
        factor = gen.uniform(*self.scale)
        degrees = gen.uniform(-self.rotation, self.rotation)
        dx, dy = (gen.uniform(-self.translate, self.translate, size=2) * (w, h)).tolist()
        matrix = similarity((width / 2, height / 2), factor, degrees, (w / 2 + dx, h / 2 + dy))
        return geometry.affine(sample, matrix, w, h, fill=self.fill, mask_fill=self.mask_fill,
                               min_visible=self.min_visible)
