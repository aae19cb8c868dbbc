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


def check_image(image: RawImage, index: dict[str, int], skip_bad_boxes: bool,
                bad: list[tuple[str, str]], suspects: dict[str, str] | None = None) -> Record:
    """Clip boxes to the image; a bad box raises DatasetError or, when skipping, goes to ``bad``.
    ``suspects`` (see :func:`misspellings`) explains an unknown class that looks like a known one."""
    n = len(image.names)
    boxes = np.asarray(image.boxes, dtype=np.float64).reshape(n, 4)
    height, width = _image_size(image)
    finite = np.isfinite(boxes).all(axis=1)
    # np.minimum/maximum: np.clip's dispatch costs several times more on a handful of boxes
    clipped = np.minimum(np.maximum(np.where(finite[:, None], boxes, 0), 0), np.array((width, height, width, height)))
    positive = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    labels = np.array([index.get(name, -1) for name in image.names], dtype=np.int64).reshape(n)
    known = labels >= 0
    keep = finite & positive & known
    whole = bool(keep.all())  # the usual case: no box left out, no masking below
    for i in () if whole else np.flatnonzero(~keep):
        if not known[i] and suspects and image.names[i] in suspects:
            reason = (f"object {i} has class {image.names[i]!r}, which looks like a misspelling of "
                      f"{suspects[image.names[i]]!r} (rarer in the data); fix the annotation, or list every "
                      f"class in data.class_names if both are meant")
        elif not known[i]:
            reason = f"object {i} has class {image.names[i]!r}, not one of the {len(index)} class names"
        else:
            reason = f"object {i} ({image.names[i]}) has no area inside the {width}x{height} image: " \
                     f"bbox {boxes[i].tolist()}"
        if not skip_bad_boxes:
            raise DatasetError(f"{image.source}: {reason} (set data.params.skip_bad_boxes to skip such boxes)")
        bad.append((image.source, reason))

    def kept(values: np.ndarray) -> np.ndarray:
        return values if whole else values[keep]

    def flags(values: np.ndarray | None) -> np.ndarray:
        return np.zeros(int(keep.sum()), dtype=bool) if values is None else kept(np.asarray(values, dtype=bool).reshape(n))

    inside = kept(clipped)
    box_areas = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])
    areas = box_areas if image.areas is None else kept(np.asarray(image.areas, dtype=np.float64).reshape(n))
    masks = None if image.masks is None else [m for m, k in zip(image.masks, keep) if k]
    return Record(image.path, image.image_id, inside, kept(labels), flags(image.difficult), flags(image.iscrowd),
                  areas, masks)


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
        self.records = [check_image(image, index, skip_bad_boxes, self.bad_boxes, suspects) for image in images]
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
