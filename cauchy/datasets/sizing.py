"""Two sizing steps torchcv's hypes use and the other transforms do not cover: ``pad`` (a border of
fixed width, or up to a size, with the dataset's mean as fill) and ``resize_short`` (the short side
to a length, the long side capped), the "min_side_length" / "resize_bound" resizes of old files."""
from __future__ import annotations

from collections.abc import Sequence

from cauchy.datasets import geometry
from cauchy.datasets.geometry import Sample
from cauchy.datasets.rng import rng
from cauchy.datasets.transforms import Fill, _resize_recorded, _size
from cauchy.registry import TRANSFORMS

POSITIONS = ("right_down", "center", "random")


@TRANSFORMS.register("pad")
class Pad:
    """With probability ``p``, pad by ``border`` ``[left, top, right, bottom]`` pixels, or up to ``size``
    ``[height, width]`` (never cropping) with the image placed at ``position``: ``right_down`` (top-left
    stays, so boxes keep their coordinates), ``center`` or ``random``."""

    def __init__(self, border: Sequence[int] | None = None, size: int | Sequence[int] | None = None,
                 position: str = "right_down", fill: Fill = 0, mask_fill: int = 0, p: float = 1.0) -> None:
        if (border is None) == (size is None):
            raise ValueError("give exactly one of border and size")
        if border is not None and not (len(border) == 4 and all(isinstance(v, int) and v >= 0 for v in border)):
            raise ValueError(f"border: expected [left, top, right, bottom] pixels >= 0, got {border!r}")
        if position not in POSITIONS:
            raise ValueError(f"position: expected one of {', '.join(POSITIONS)}, got {position!r}")
        if not 0 <= p <= 1:
            raise ValueError(f"p: expected a probability from 0 to 1, got {p!r}")
        self.border = tuple(border) if border is not None else None
        self.size = _size(size) if size is not None else None
        self.position, self.fill, self.mask_fill, self.p = position, fill, mask_fill, p

    def __call__(self, sample: Sample) -> Sample:
        if self.p < 1 and rng().random() >= self.p:
            return sample
        height, width = sample["image"].shape[:2]
        if self.border is not None:
            left, top, right, bottom = self.border
            return geometry.crop(sample, -left, -top, width + left + right, height + top + bottom,
                                 fill=self.fill, mask_fill=self.mask_fill)
        h, w = max(height, self.size[0]), max(width, self.size[1])
        if self.position == "right_down":
            x0 = y0 = 0
        elif self.position == "center":
            x0, y0 = (width - w) // 2, (height - h) // 2
        else:
            x0, y0 = -int(rng().integers(0, w - width + 1)), -int(rng().integers(0, h - height + 1))
        return geometry.crop(sample, x0, y0, w, h, fill=self.fill, mask_fill=self.mask_fill)


@TRANSFORMS.register("resize_short")
class ResizeShort:
    """Scale (keeping the aspect ratio) so the short side is ``size`` pixels, unless the long side would
    then exceed ``max_size``, in which case the long side is ``max_size``."""

    def __init__(self, size: int, max_size: int | None = None, interpolation: str = "linear") -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size: expected a length in pixels >= 1, got {size!r}")
        if max_size is not None and (not isinstance(max_size, int) or max_size < size):
            raise ValueError(f"max_size: expected a length in pixels >= size, got {max_size!r}")
        self.size, self.max_size = size, max_size
        self.interpolation = geometry.interpolation_flag(interpolation)

    def __call__(self, sample: Sample) -> Sample:
        height, width = sample["image"].shape[:2]
        scale = self.size / min(height, width)
        if self.max_size is not None:
            scale = min(scale, self.max_size / max(height, width))
        return _resize_recorded(sample, max(1, round(height * scale)), max(1, round(width * scale)), self.interpolation)
