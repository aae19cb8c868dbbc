"""What all classification readers share: a (path, label) list, decoding, bad-image skipping.

A format module only turns its files into ``(image_path, label)`` pairs and class names; this
class checks them and serves items ``{"image", "label", "path", "orig_size"}``, where ``image``
is HxWx3 uint8 RGB before transforms.

Bad images: without ``skip_bad_images`` a missing file is an error at construction (so a typo
in a list fails before training starts) and an undecodable one when it is loaded. With
``skip_bad_images=True`` every image is decoded once at construction (in threads; cv2 releases
the GIL) and the bad ones are left out: ``skipped`` counts them and ``bad_images`` lists
``(path, reason)`` (see ``cauchy.datasets.io.check_images``). Checking up front keeps indices
stable and the count visible in the main process, which a lazy fallback inside DataLoader
workers would not.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import drop_bad_images, read_image, require_file
from cauchy.datasets.seg.masks import CLASS_LIST, read_class_list

Sample = dict[str, Any]


def parse_label(value: Any, where: str, line: str) -> int:
    """A class index >= 0 from a list entry; ``where`` is ``file:line`` for the error."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise DatasetError(f"{where}: label must be a class index >= 0, got {line!r}")
    return int(text)


class ClsDataset:
    """A map-style dataset over ``samples = [(image_path, label), ...]``."""

    def __init__(self, samples: Sequence[tuple[str, int]], class_names: Sequence[str], source: str,
                 transforms: Callable[[Sample], Sample] | None = None,
                 skip_bad_images: bool = False) -> None:
        self.source = source
        self.class_names = list(class_names)
        self.transforms = transforms
        for path, label in samples:
            if not 0 <= label < len(self.class_names):
                raise DatasetError(f"{source}: label {label} of {path} is outside 0..{len(self.class_names) - 1} "
                                   f"({len(self.class_names)} class names)")
        self.samples, self.bad_images = drop_bad_images(samples, lambda sample: sample[0], source, skip_bad_images)

    @property
    def skipped(self) -> int:
        return len(self.bad_images)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        path, label = self.samples[index]
        image = read_image(path)
        sample = {"image": image, "label": label, "path": path, "orig_size": image.shape[:2]}
        return self.transforms(sample) if self.transforms is not None else sample

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]


def indexed_dataset(samples: Sequence[tuple[str, int]], source: str,
                    transforms: Callable[[Sample], Sample] | None, skip_bad_images: bool,
                    class_names: Sequence[str] | None, root: str) -> ClsDataset:
    """For formats that store only class indices: names from ``class_names``, else ``root/classes.txt``
    (one name per line, as the seg and YOLO readers read it), else ``"0".."max label"``.

    A split may miss the highest classes, so callers pass the train split's names to the others.
    """
    if class_names is None and os.path.isfile(os.path.join(root, CLASS_LIST)):
        class_names = read_class_list(os.path.join(root, CLASS_LIST))[0]
    if class_names is None:
        class_names = [str(i) for i in range(max((label for _, label in samples), default=-1) + 1)]
    return ClsDataset(samples, class_names, source, transforms, skip_bad_images)


ListReader = Callable[[str, str], list[tuple[str, int]]]
"""Reads a list file (its path, the data root) into ``(image path, class index)`` pairs."""


def list_file_dataset(suffix: str, read: ListReader) -> Callable[..., ClsDataset]:
    """The dataset builder of a list-file format: ``root/<split><suffix>`` read by ``read``, class names
    as :func:`indexed_dataset` finds them."""

    def build(root: str, split: str, transforms: Callable[[Sample], Sample] | None = None,
              skip_bad_images: bool = False, class_names: list[str] | None = None) -> ClsDataset:
        list_path = require_file(os.path.join(root, f"{split}{suffix}"), "list file")
        return indexed_dataset(read(list_path, root), list_path, transforms, skip_bad_images, class_names, root)

    return build
