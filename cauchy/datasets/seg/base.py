"""What all semantic segmentation readers share: the (image, mask source) list, mask checks,
bad-image and bad-mask skipping.

A format module turns its files into :class:`Pair` records; :class:`SegDataset` serves items
``{"image", "mask", "orig_mask", "path", "orig_size"}``: ``image`` HxWx3 uint8 RGB and ``mask``
HxW class indices (the ignore value where unlabelled) before transforms; ``orig_mask`` is the same
mask left untouched by the transforms, so that evaluation happens at each image's original size.

Bad masks (a size other than the image's, values that are neither a class nor the ignore value,
an undecodable file): without ``skip_bad_masks`` an existence check runs at construction and the
rest is an error naming the file when the mask is loaded; with ``skip_bad_masks=True``
(``data.params``) every mask is checked once at construction (in threads) and the bad ones are left
out, counted in ``skipped_masks`` (``bad_masks`` lists ``(file, reason)``), as
``data.skip_bad_images`` does for images.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import drop_bad_images, read_image, require_files
from cauchy.datasets.seg.masks import check_mask, label_table, read_mask
from cauchy.datasets.seg.palette import voc_palette

Sample = dict[str, Any]

log = logging.getLogger("cauchy.datasets.seg")


@dataclass
class Pair:
    """One image and where its label map comes from: ``mask`` is a file path, or a callable
    ``(height, width) -> HxW class indices`` for formats that rasterise (COCO); ``source`` names the
    file that errors point at."""

    image: str
    mask: str | Callable[[int, int], np.ndarray]
    source: str


class SegDataset:
    """A map-style semantic segmentation dataset; ``metadata`` (``ignore_index``, ``palette``) goes to
    the evaluators and the method's drawing."""

    def __init__(self, pairs: Sequence[Pair], source: str, class_names: Sequence[str], label_ids: Sequence[int], *,
                 ignore_index: int = 255, transforms: Callable[[Sample], Sample] | None = None,
                 skip_bad_images: bool = False, skip_bad_masks: bool = False, palette: np.ndarray | None = None) -> None:
        if not pairs:
            raise DatasetError(f"{source}: lists no images")
        if ignore_index < len(class_names):
            raise DatasetError(f"{source}: ignore value {ignore_index} collides with class {ignore_index} "
                               f"({class_names[ignore_index]}); set data.params.ignore_index above the class range")
        self.source = source
        self.class_names = list(class_names)
        self.ignore_index = ignore_index
        self.transforms = transforms
        self.table = label_table(label_ids, ignore_index, max(256, max(label_ids) + 1, ignore_index + 1))
        self.palette = palette if palette is not None else voc_palette()
        pairs, self.bad_images = drop_bad_images(pairs, lambda pair: pair.image, source, skip_bad_images)
        self.bad_masks: list[tuple[str, str]] = []
        if skip_bad_masks:
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
                problems = list(pool.map(self._problem, pairs))
            self.bad_masks = [(pair.source, why) for pair, why in zip(pairs, problems) if why]
            pairs = [pair for pair, why in zip(pairs, problems) if not why]
        else:
            require_files([p.mask for p in pairs if isinstance(p.mask, str)], "mask file", source)
        self.pairs = list(pairs)
        if self.skipped or self.skipped_masks:
            log.warning("%s: skipped %d bad images and %d bad masks", source, self.skipped, self.skipped_masks)

    @property
    def skipped(self) -> int:
        return len(self.bad_images)

    @property
    def skipped_masks(self) -> int:
        return len(self.bad_masks)

    @property
    def metadata(self) -> dict[str, Any]:
        return {"ignore_index": self.ignore_index}

    def load_mask(self, pair: Pair, size: tuple[int, int]) -> np.ndarray:
        """The checked class-index map of ``pair`` (its image is ``size`` = (h, w))."""
        if isinstance(pair.mask, str):
            labels, _ = read_mask(pair.mask)
            return check_mask(pair.mask, labels, size, self.table)
        return pair.mask(*size)

    def _problem(self, pair: Pair) -> str | None:
        try:
            self.load_mask(pair, read_image(pair.image).shape[:2])
        except DatasetError as exc:
            return str(exc)
        return None

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        pair = self.pairs[index]
        image = read_image(pair.image)
        mask = self.load_mask(pair, image.shape[:2])
        sample = {"image": image, "mask": mask, "orig_mask": mask, "path": pair.image, "orig_size": image.shape[:2]}
        return self.transforms(sample) if self.transforms is not None else sample
