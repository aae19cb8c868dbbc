"""Augmentations on sample dicts, registered in ``TRANSFORMS`` under the names hypes files use.

Input samples carry ``image`` as an HxWx3 uint8 **RGB** numpy array (``cauchy.datasets.io``
decodes to RGB), plus optional ``boxes``/``labels``/``mask``/``masks``/``keypoints`` (see
``cauchy.datasets.geometry`` for their layout and coordinate convention). Every transform keeps the
image uint8, ``normalize`` included (the last step, a uint8 CHW tensor; the float conversion happens
on the model's device, ``cauchy.datasets.normalize``): uint8 ops are several times cheaper, and
cropping happens before resizing so only the kept pixels are scaled.

Randomness comes from ``cauchy.datasets.rng.rng()``: in training, each sample's own seeded stream.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from cauchy.datasets import geometry
from cauchy.datasets.geometry import Sample
from cauchy.datasets.normalize import IMAGENET_MEAN, IMAGENET_STD, InputNormalizer
from cauchy.datasets.rng import rng
from cauchy.registry import TRANSFORMS

Size = int | Sequence[int]
Fill = int | Sequence[int]


def _size(value: Size, name: str = "size") -> tuple[int, int]:
    """``224`` or ``[h, w]`` -> ``(h, w)``."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(f"{name}: expected a positive int or [height, width], got {value!r}")
    return pair[0], pair[1]


def _range(value: Sequence[float], name: str) -> tuple[float, float]:
    low, high = value
    if not low <= high:
        raise ValueError(f"{name}: expected [low, high] with low <= high, got {list(value)!r}")
    return float(low), float(high)


def _scale_range(value: Sequence[float]) -> tuple[float, float]:
    """A ``[low, high]`` range of scale factors, ``0 < low``."""
    low, high = _range(value, "scale")
    if low <= 0:
        raise ValueError(f"scale: expected [low, high] with 0 < low, got {list(value)!r}")
    return low, high


class Compose:
    """Applies transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Sample], Sample]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample) -> Sample:
        for transform in self.transforms:
            sample = transform(sample)
        return sample


def build_transforms(specs: Sequence[Mapping[str, Any]], where: str = "transforms") -> Compose:
    """``[{"name": "resize", "size": 224}, ...]`` -> Compose; errors name the entry (``where[i]``)."""
    transforms = []
    for i, spec in enumerate(specs):
        params = dict(spec)
        name = params.pop("name", None)
        if name is None:
            raise ValueError(f"{where}[{i}]: missing 'name'")
        try:
            transforms.append(TRANSFORMS.build(name, **params))
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{where}[{i}] ({name}): {exc}") from None
    return Compose(transforms)


def _resize_recorded(sample: Sample, new_h: int, new_w: int, interpolation: int) -> Sample:
    """``geometry.resize`` that multiplies the sample's ``scale_factor`` ``[sx, sy]`` by the change."""
    old_h, old_w = sample["image"].shape[:2]
    out = geometry.resize(sample, new_h, new_w, interpolation)
    out["scale_factor"] = np.asarray(sample.get("scale_factor", (1.0, 1.0)), dtype=np.float32) * np.array(
        [new_w / old_w, new_h / old_h], dtype=np.float32)
    return out


@TRANSFORMS.register("resize")
class Resize:
    """Resize to ``size``; with ``keep_ratio`` scale to fit inside it and pad bottom/right.

    Padding only at the bottom/right keeps boxes at ``scale * original``, with
    ``scale = min(h / orig_h, w / orig_w)``, so predictions map back without an offset: the
    sample's ``scale_factor`` ``[sx, sy]`` (float32, multiplied over successive resizes) records it.
    """

    def __init__(self, size: Size, keep_ratio: bool = False, fill: Fill = 0, mask_fill: int = 0,
                 interpolation: str = "linear") -> None:
        self.size = _size(size)
        self.keep_ratio = keep_ratio
        self.fill = fill
        self.mask_fill = mask_fill
        self.interpolation = geometry.interpolation_flag(interpolation)

    def __call__(self, sample: Sample) -> Sample:
        h, w = self.size
        old_h, old_w = sample["image"].shape[:2]
        new_h, new_w = h, w
        if self.keep_ratio:
            scale = min(h / old_h, w / old_w)
            new_h, new_w = max(1, min(h, round(old_h * scale))), max(1, min(w, round(old_w * scale)))
        out = _resize_recorded(sample, new_h, new_w, self.interpolation)
        if self.keep_ratio:
            out = geometry.crop(out, 0, 0, w, h, fill=self.fill, mask_fill=self.mask_fill)
        return out


@TRANSFORMS.register("random_scale")
class RandomScale:
    """Scale by a random factor in ``scale`` (both sides alike; the mask nearest-neighbour), the
    multi-scale augmentation of segmentation training, usually followed by ``random_crop``."""

    def __init__(self, scale: Sequence[float] = (0.5, 2.0), interpolation: str = "linear") -> None:
        self.scale = _scale_range(scale)
        self.interpolation = geometry.interpolation_flag(interpolation)

    def __call__(self, sample: Sample) -> Sample:
        factor = rng().uniform(*self.scale)
        old_h, old_w = sample["image"].shape[:2]
        return _resize_recorded(sample, max(1, round(old_h * factor)), max(1, round(old_w * factor)), self.interpolation)


@TRANSFORMS.register("random_resized_crop")
class RandomResizedCrop:
    """Inception-style crop: random area fraction and aspect ratio, then resize to ``size``.

    Same sampling as torchvision's ``RandomResizedCrop`` (10 tries, then a centre crop), but the
    crop is a view, so only the kept pixels are resized.
    """

    def __init__(self, size: Size, scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3), interpolation: str = "linear",
                 min_visible: float = 0.0) -> None:
        self.size = _size(size)
        self.scale = _range(scale, "scale")
        self.log_ratio = tuple(math.log(r) for r in _range(ratio, "ratio"))
        self.interpolation = geometry.interpolation_flag(interpolation)
        self.min_visible = min_visible

    def _window(self, height: int, width: int) -> tuple[int, int, int, int]:
        gen = rng()
        area = height * width
        for _ in range(10):
            target = area * gen.uniform(*self.scale)
            aspect = math.exp(gen.uniform(*self.log_ratio))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                return int(gen.integers(0, width - w + 1)), int(gen.integers(0, height - h + 1)), w, h
        aspect = width / height
        low, high = math.exp(self.log_ratio[0]), math.exp(self.log_ratio[1])
        if aspect < low:
            w, h = width, round(width / low)
        elif aspect > high:
            w, h = round(height * high), height
        else:
            w, h = width, height
        return (width - w) // 2, (height - h) // 2, w, h

    def __call__(self, sample: Sample) -> Sample:
        x0, y0, w, h = self._window(*sample["image"].shape[:2])
        sample = geometry.crop(sample, x0, y0, w, h, min_visible=self.min_visible)
        return geometry.resize(sample, *self.size, self.interpolation)


@TRANSFORMS.register("center_crop")
class CenterCrop:
    """Crop the centre ``size`` window; an image smaller than it is padded with ``fill``.

    Boxes are clipped to the window; those with nothing left inside, or less than ``min_visible``
    of their area, are dropped together with their labels.
    """

    def __init__(self, size: Size, fill: Fill = 0, mask_fill: int = 0, min_visible: float = 0.0) -> None:
        self.size = _size(size)
        self.fill = fill
        self.mask_fill = mask_fill
        self.min_visible = min_visible

    def _origin(self, height: int, width: int) -> tuple[int, int]:
        h, w = self.size
        return (width - w) // 2, (height - h) // 2

    def __call__(self, sample: Sample) -> Sample:
        x0, y0 = self._origin(*sample["image"].shape[:2])
        return geometry.crop(sample, x0, y0, self.size[1], self.size[0], fill=self.fill,
                             mask_fill=self.mask_fill, min_visible=self.min_visible)


@TRANSFORMS.register("random_crop")
class RandomCrop(CenterCrop):
    """Crop a random ``size`` window (padding an image smaller than it); boxes as in center_crop."""

    def _origin(self, height: int, width: int) -> tuple[int, int]:
        return random_origin(height, width, *self.size)


def random_origin(height: int, width: int, h: int, w: int) -> tuple[int, int]:
    """A uniform (x0, y0) for an ``h`` x ``w`` window over a ``height`` x ``width`` image (the window
    inside the image, or the image inside the window when it is the smaller)."""
    gen = rng()
    x0 = int(gen.integers(min(0, width - w), max(0, width - w) + 1))
    y0 = int(gen.integers(min(0, height - h), max(0, height - h) + 1))
    return x0, y0


@TRANSFORMS.register("random_scale_crop")
class RandomScaleCrop(CenterCrop):
    """``random_scale`` then ``random_crop`` of ``size`` in one step, the multi-scale crop of
    segmentation training: the window is drawn in the original image (``size / factor``, padded with
    ``fill`` / ``mask_fill`` where it leaves the image) and only it is resized to ``size``, so a 2x
    scale costs the resize of one crop rather than of an image four times larger."""

    def __init__(self, size: Size, scale: Sequence[float] = (0.5, 2.0), fill: Fill = 0, mask_fill: int = 0,
                 interpolation: str = "linear", min_visible: float = 0.0) -> None:
        super().__init__(size, fill, mask_fill, min_visible)
        self.scale = _scale_range(scale)
        self.interpolation = geometry.interpolation_flag(interpolation)

    def __call__(self, sample: Sample) -> Sample:
        factor = rng().uniform(*self.scale)
        h, w = self.size
        win_h, win_w = max(1, round(h / factor)), max(1, round(w / factor))
        x0, y0 = random_origin(*sample["image"].shape[:2], win_h, win_w)
        window = geometry.crop(sample, x0, y0, win_w, win_h, fill=self.fill, mask_fill=self.mask_fill,
                               min_visible=self.min_visible)
        return _resize_recorded(window, h, w, self.interpolation)


@TRANSFORMS.register("random_hflip")
class RandomHFlip:
    """Mirror left-right with probability ``p``; ``flip_pairs`` swaps left/right keypoints."""

    def __init__(self, p: float = 0.5, flip_pairs: Sequence[Sequence[int]] = ()) -> None:
        self.p = p
        self.flip_pairs = [tuple(pair) for pair in flip_pairs]

    def __call__(self, sample: Sample) -> Sample:
        if rng().random() < self.p:
            return geometry.hflip(sample, self.flip_pairs)
        return sample


@TRANSFORMS.register("random_expand")
class RandomExpand:
    """SSD zoom-out: with probability ``p`` place the image at a random spot of a canvas
    ``ratio`` times larger, filled with ``fill`` (use the dataset mean to keep statistics)."""

    def __init__(self, ratio: Sequence[float] = (1.0, 4.0), p: float = 0.5, fill: Fill = 0,
                 mask_fill: int = 0) -> None:
        self.ratio = _range(ratio, "ratio")
        if self.ratio[0] < 1:
            raise ValueError(f"ratio: expected [low, high] with 1 <= low (a zoom-out), got {list(ratio)!r}")
        self.p = p
        self.fill = fill
        self.mask_fill = mask_fill

    def __call__(self, sample: Sample) -> Sample:
        gen = rng()
        if gen.random() >= self.p:
            return sample
        height, width = sample["image"].shape[:2]
        ratio = gen.uniform(*self.ratio)
        w, h = int(width * ratio), int(height * ratio)
        left = int(gen.integers(0, w - width + 1))
        top = int(gen.integers(0, h - height + 1))
        return geometry.crop(sample, -left, -top, w, h, fill=self.fill, mask_fill=self.mask_fill)


def _lut(values: np.ndarray) -> np.ndarray:
    return np.clip(values, 0, 255).round().astype(np.uint8)


_IDENTITY = np.arange(256, dtype=np.float32)


def _adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    return cv2.LUT(image, _lut(_IDENTITY * factor))


def _adjust_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    mean = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean()
    return cv2.LUT(image, _lut(_IDENTITY * factor + mean * (1 - factor)))


def _adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    gray = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(image, factor, gray, 1 - factor, 0)


def _adjust_hue(image: np.ndarray, shift: float) -> np.ndarray:
    """Rotate hue by ``shift`` of a full turn (cv2's uint8 hue runs 0..179)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    lut = ((np.arange(256) + round(shift * 180)) % 180).astype(np.uint8)
    hsv[..., 0] = lut[hsv[..., 0]]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


@TRANSFORMS.register("color_jitter")
class ColorJitter:
    """Random brightness, contrast, saturation (factors in ``[1 - x, 1 + x]``) and hue (shift in
    ``[-hue, hue]`` turns, hue <= 0.5), applied in random order like torchvision, all on uint8."""

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                 hue: float = 0.0) -> None:
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if value < 0:
                raise ValueError(f"{name}: expected >= 0, got {value!r}")
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue: expected 0 <= hue <= 0.5, got {hue!r}")
        ranges = [(_adjust_brightness, max(0.0, 1 - brightness), 1 + brightness),
                  (_adjust_contrast, max(0.0, 1 - contrast), 1 + contrast),
                  (_adjust_saturation, max(0.0, 1 - saturation), 1 + saturation),
                  (_adjust_hue, -hue, hue)]
        self.ops = [(op, low, high) for op, low, high in ranges if high > low]

    def __call__(self, sample: Sample) -> Sample:
        gen = rng()
        image = sample["image"]
        for index in gen.permutation(len(self.ops)):
            op, low, high = self.ops[index]
            image = op(image, gen.uniform(low, high))
        return {**sample, "image": image}


_TENSOR_DTYPES = {"boxes": torch.float32, "labels": torch.int64, "difficult": torch.bool,
                  "iscrowd": torch.bool, "masks": torch.uint8, "keypoints": torch.float32,
                  "scale_factor": torch.float32, "flip_index": torch.int64, "affine": torch.float64}
LABEL_MAPS = ("mask",)  # kept in their reader's integer type (uint8 up to 255 classes): a quarter to an eighth of the bytes


@TRANSFORMS.register("normalize")
class Normalize:
    """Last step: the image as a uint8 CHW tensor, a view of the HWC pixels (the collate,
    ``batches.stack``, transposes it straight into the batch), targets as tensors; label maps keep
    their narrow integer type (the method widens them on the model's device). The arithmetic
    ``(image / div_value - mean) / std`` is ``normalizer``'s, applied on the model's device to whole
    batches (``Method.prepare``), so the loader's workers move a quarter of the bytes and do no float
    work."""

    def __init__(self, div_value: float = 255.0, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        self.normalizer = InputNormalizer(div_value, mean, std)

    def __call__(self, sample: Sample) -> Sample:
        out = dict(sample)
        out["image"] = torch.from_numpy(np.ascontiguousarray(sample["image"])).permute(2, 0, 1)
        for key, dtype in _TENSOR_DTYPES.items():
            if key in sample:
                out[key] = torch.as_tensor(np.ascontiguousarray(sample[key])).to(dtype)
        for key in LABEL_MAPS:
            if key in sample:
                out[key] = torch.from_numpy(np.ascontiguousarray(sample[key]))
        return out
