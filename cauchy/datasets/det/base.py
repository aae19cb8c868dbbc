"""What all detection readers share: box checks, class indexing, decoding and bad-image skipping.

A format module only turns its files into :class:`RawImage` records (boxes in 0-based continuous
pixel coordinates, one class *name* per box); :class:`DetDataset` checks them once, at
construction, and serves items ``{"image", "boxes", "labels", "difficult", "iscrowd",
"image_id", "path", "orig_size", "truth"}`` (``image`` HxWx3 uint8 RGB before transforms), plus
``masks`` (uint8 [N,H,W], one per box) when the reader found instance masks (``cauchy.datasets.rle``).
``truth`` is the image's ground truth as read, which transforms leave alone: ``boxes`` (float64,
original pixels), ``labels``, ``ignore`` (difficult or crowd) and ``areas`` (the annotation's own
area where the format records one, as COCO does, else the box area), and with masks ``masks`` (the
compressed RLEs, original pixels); evaluators compare with it.

Box checks: a box reaching outside its image is clipped to it. A box with no area (after
clipping), with a non-finite coordinate or with a class outside ``class_names`` is an error
naming the annotation file, or, with ``skip_bad_boxes=True`` (``data.params``), left out and
counted in ``skipped_boxes`` (``bad_boxes`` lists ``(file, reason)``). When the classes come from
the data (no ``class_names``), a name that looks like a misspelling of a more frequent one (same
letters but for case, or 80% alike: ``cirle`` beside ``circle``) is not made a class of its own:
its boxes are bad boxes as above, so a typo cannot silently add a class. Checking up front makes a
typo fail before training starts and keeps the count visible in the main process; bad images
are handled as in the classification readers (``cauchy.datasets.io.check_images``).
"""
from __future__ import annotations

import difflib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cauchy.datasets import rle
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import drop_bad_images, read_image
from cauchy.datasets.rle import RLE

Sample = dict[str, Any]

log = logging.getLogger("cauchy.datasets.det")


@dataclass
class RawImage:
    """One image's annotation as a reader found it; ``size`` is (h, w), None when unrecorded."""

    path: str
    source: str
    names: list[str]
    boxes: np.ndarray
    image_id: int
    size: tuple[int, int] | None = None
    difficult: np.ndarray | None = None
    iscrowd: np.ndarray | None = None
    areas: np.ndarray | None = None
    masks: list[RLE] | None = None  # one compressed RLE per box, for instance segmentation


@dataclass
class Record:
    """One checked image: what ``__getitem__`` needs, with labels as class indices (boxes float64)."""

    path: str
    image_id: int
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    iscrowd: np.ndarray
    areas: np.ndarray
    masks: list[RLE] | None = None

    def truth(self) -> dict[str, Any]:
        truth = {"boxes": self.boxes, "labels": self.labels, "ignore": self.difficult | self.iscrowd,
                 "areas": self.areas}
        if self.masks is not None:
            truth["masks"] = self.masks
        return truth


def class_names_of(images: Sequence[RawImage]) -> list[str]:
    """Class names found in the data, sorted (used when neither hypes nor the train split fix them)."""
    return sorted({name for image in images for name in image.names})


def misspellings(images: Sequence[RawImage], similarity: float = 0.8) -> dict[str, str]:
    """``{rare name: frequent name}`` for class names that look like a misspelling of another one found
    in the data: equal but for case, or at least ``similarity`` alike; the rarer one is the suspect."""
    counts = Counter(name for image in images for name in image.names)
    ranked = sorted(counts, key=lambda n: (-counts[n], n))
    suspects: dict[str, str] = {}
    for i, rare in enumerate(ranked):
        for common in ranked[:i]:
            if common in suspects:
                continue
            a, b = rare.lower(), common.lower()
            if a == b or difflib.SequenceMatcher(None, a, b).ratio() >= similarity:
                suspects[rare] = common
                break
    return suspects


def _image_size(image: RawImage) -> tuple[int, int]:
    if image.size is not None and image.size[0] > 0 and image.size[1] > 0:
        return image.size
    return read_image(image.path).shape[:2]


def _bad_box(image: RawImage, i: int, box: np.ndarray, known: bool, width: int, height: int, count: int,
             suspects: dict[str, str] | None) -> str:
    """Why object ``i`` of ``image`` is left out."""
    name = image.names[i]
    if not known and suspects and name in suspects:
        return (f"object {i} has class {name!r}, which looks like a misspelling of {suspects[name]!r} (rarer in the "
                f"data); fix the annotation, or list every class in data.class_names if both are meant")
    if not known:
        return f"object {i} has class {name!r}, not one of the {count} class names"
    return f"object {i} ({name}) has no area inside the {width}x{height} image: bbox {box.tolist()}"


def _flags(values: Sequence[Any], counts: Sequence[int]) -> np.ndarray:
    """Every image's flags (one per box), concatenated: False for an image that gives none (None)."""
    parts = [np.zeros(n, dtype=bool) if flags is None else np.asarray(flags, dtype=bool).reshape(n)
             for flags, n in zip(values, counts)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def check_images(images: Sequence[RawImage], index: dict[str, int], skip_bad_boxes: bool,
                 bad: list[tuple[str, str]], suspects: dict[str, str] | None = None) -> list[Record]:
    """Clip every image's boxes to its image, the whole split at once (numpy costs more per call than a
    few boxes take); a bad box raises DatasetError or, when skipping, goes to ``bad`` (in image order).
    ``suspects`` (see :func:`misspellings`) explains an unknown class that looks like a known one."""
    counts = [len(image.names) for image in images]
    starts = np.concatenate(([0], np.cumsum(counts, dtype=np.intp)))
    sizes = [_image_size(image) for image in images]
    boxes = np.concatenate([np.asarray(image.boxes, dtype=np.float64).reshape(n, 4) for image, n in zip(images, counts)]
                           or [np.zeros((0, 4))])
    limits = np.repeat(np.array(sizes, dtype=np.float64).reshape(-1, 2)[:, [1, 0, 1, 0]], counts, axis=0)
    finite = np.isfinite(boxes).all(axis=1)
    clipped = np.minimum(np.maximum(np.where(finite[:, None], boxes, 0), 0), limits)
    positive = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    labels = np.array([index.get(name, -1) for image in images for name in image.names], dtype=np.int64)
    keep = finite & positive & (labels >= 0)
    left_out = np.flatnonzero(~keep)
    image_of = np.searchsorted(starts, left_out, side="right") - 1
    for box, j in zip(left_out.tolist(), image_of.tolist()):
        image, (height, width) = images[j], sizes[j]
        reason = _bad_box(image, box - int(starts[j]), boxes[box], bool(labels[box] >= 0), width, height, len(index),
                          suspects)
        if not skip_bad_boxes:
            raise DatasetError(f"{image.source}: {reason} (set data.params.skip_bad_boxes to skip such boxes)")
        bad.append((image.source, reason))
    box_areas = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    own_areas = [image.areas is not None for image in images]
    areas = box_areas if not any(own_areas) else np.concatenate(
        [np.asarray(image.areas, dtype=np.float64).reshape(n) if own else box_areas[start:start + n]
         for image, n, own, start in zip(images, counts, own_areas, starts.tolist())] or [np.zeros(0)])
    difficult = _flags([image.difficult for image in images], counts)
    iscrowd = _flags([image.iscrowd for image in images], counts)
    partial = set(image_of.tolist())
    records = []
    for j, image in enumerate(images):
        start, end = int(starts[j]), int(starts[j + 1])
        # each record's own arrays (a view would keep the whole split's alive through any one of them)
        take = start + np.flatnonzero(keep[start:end]) if j in partial else np.arange(start, end)
        masks = None if image.masks is None else [m for m, k in zip(image.masks, keep[start:end]) if k]
        records.append(Record(image.path, image.image_id, clipped[take], labels[take], difficult[take], iscrowd[take],
                              areas[take], masks))
    return records


class DetDataset:
    """A map-style detection dataset over checked records; ``metadata`` goes to the evaluators."""

    def __init__(self, images: Sequence[RawImage], source: str, *, class_names: Sequence[str] | None = None,
                 transforms: Callable[[Sample], Sample] | None = None, skip_bad_images: bool = False,
                 skip_bad_boxes: bool = False, metadata: dict[str, Any] | None = None,
                 unmatched_annotations: Sequence[str] = ()) -> None:
        """``unmatched_annotations`` describes annotations the reader found for no listed image (COCO
        ``image_id`` s missing from ``images``): counted in ``skipped_annotations`` and reported."""
        self.source = source
        suspects = misspellings(images) if class_names is None else {}
        self.class_names = list(class_names) if class_names is not None else [
            name for name in class_names_of(images) if name not in suspects]
        self.transforms = transforms
        self.metadata = metadata or {}
        self.unmatched_annotations = list(unmatched_annotations)
        images, self.bad_images = drop_bad_images(images, lambda image: image.path, source, skip_bad_images)
        index = {name: i for i, name in enumerate(self.class_names)}
        self.bad_boxes: list[tuple[str, str]] = []
        self.records = check_images(images, index, skip_bad_boxes, self.bad_boxes, suspects)
        if self.skipped or self.skipped_boxes or self.skipped_annotations:
            log.warning("%s: skipped %d bad images, %d bad boxes and %d annotations of no listed image%s", source,
                        self.skipped, self.skipped_boxes, self.skipped_annotations,
                        f" (first: {self.unmatched_annotations[0]})" if self.unmatched_annotations else "")

    @property
    def skipped(self) -> int:
        return len(self.bad_images)

    @property
    def skipped_boxes(self) -> int:
        return len(self.bad_boxes)

    @property
    def skipped_annotations(self) -> int:
        return len(self.unmatched_annotations)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        r = self.records[index]
        image = read_image(r.path)
        sample = {"image": image, "boxes": r.boxes.astype(np.float32), "labels": r.labels.copy(),
                  "difficult": r.difficult.copy(), "iscrowd": r.iscrowd.copy(), "image_id": r.image_id, "path": r.path,
                  "orig_size": image.shape[:2], "truth": r.truth()}
        if r.masks is not None:
            if r.masks and list(r.masks[0]["size"]) != list(image.shape[:2]):
                raise DatasetError(f"{r.path}: the image is {image.shape[1]}x{image.shape[0]} but its annotation's "
                                   f"masks are {r.masks[0]['size'][1]}x{r.masks[0]['size'][0]}")
            sample["masks"] = rle.decode(r.masks, *image.shape[:2])
        return self.transforms(sample) if self.transforms is not None else sample


def to_original(boxes: Any, scale_factor: Any, orig_size: Any) -> Any:
    """Boxes in network-input pixels -> original-image pixels (undo ``resize``; clip to the image).

    ``scale_factor`` is the sample's ``[sx, sy]`` and ``orig_size`` its ``(h, w)``; tensors in, tensors out.
    """
    sx, sy = (float(v) for v in scale_factor)
    h, w = (float(v) for v in orig_size)
    out = boxes / boxes.new_tensor([sx, sy, sx, sy])
    out[:, 0::2] = out[:, 0::2].clamp(0, w)
    out[:, 1::2] = out[:, 1::2].clamp(0, h)
    return out
