"""YOLO txt labels (Ultralytics/darknet layout): images under ``root/images/<split>/`` (or listed,
one path per line relative to root, in ``root/<split>.txt``), and for each image a label file at the
same path with ``images`` replaced by ``labels`` and the suffix by ``.txt``: one
``class cx cy w h`` line per object, the box centre and size as fractions of the image's width and
height. An image without a label file has no objects. Classes: ``root/classes.txt`` (one name per
line), else the ``names`` of ``root/data.yaml``, else ``"0"`` .. the highest index.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from cauchy.datasets.cls.image_folder import images_under
from cauchy.datasets.det.base import DetDataset, RawImage, Sample
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.seg.masks import CLASS_LIST, read_class_list
from cauchy.registry import DATASETS

IMAGE_DIR, LABEL_DIR, SPLIT_LIST, DATA_YAML = "images", "labels", "{split}.txt", "data.yaml"


def label_path(image_path: str) -> str:
    """YOLO's rule: the last ``/images/`` of the path becomes ``/labels/``, the suffix ``.txt``."""
    head, sep, tail = image_path.rpartition(f"{os.sep}{IMAGE_DIR}{os.sep}")
    stem = os.path.splitext(f"{head}{os.sep}{LABEL_DIR}{os.sep}{tail}" if sep else image_path)[0]
    return stem + ".txt"


def split_images(root: str, split: str) -> list[str]:
    """The split's images: the list file when there is one, else every image under images/<split>/."""
    list_path = os.path.join(root, SPLIT_LIST.format(split=split))
    if os.path.isfile(list_path):
        with open(list_path, encoding="utf-8") as fh:
            return [os.path.join(root, line.strip()) for line in fh if line.strip() and not line.startswith("#")]
    folder = os.path.join(root, IMAGE_DIR, split)
    if not os.path.isdir(folder):
        raise DatasetError(f"{folder}: split folder not found (expected {root}/{IMAGE_DIR}/{split}/<image> "
                           f"or the list {list_path})")
    return list(images_under(folder))


def read_yolo_labels(path: str) -> tuple[list[int], np.ndarray]:
    """Class indices and ``[cx, cy, w, h]`` fractions of one label file (none when it is missing)."""
    if not os.path.isfile(path):
        return [], np.zeros((0, 4))
    labels, boxes = [], []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 5 or not fields[0].isdigit():
                raise DatasetError(f"{path}:{number}: expected 'class cx cy w h', got {line.strip()!r}")
            try:
                boxes.append([float(v) for v in fields[1:5]])
            except ValueError:
                raise DatasetError(f"{path}:{number}: box values must be numbers, got {line.strip()!r}") from None
            labels.append(int(fields[0]))
    return labels, np.array(boxes, dtype=np.float64).reshape(-1, 4)


def to_pixels(fractions: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[cx, cy, w, h]`` fractions -> ``[x1, y1, x2, y2]`` pixels."""
    centre, size = fractions[:, :2] * (width, height), fractions[:, 2:] * (width, height)
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def image_size(path: str) -> tuple[int, int]:
    """(h, w) from the image file's header, without decoding it."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"{path}: not a decodable image ({exc})") from None
    return height, width


def yaml_names(path: str) -> list[str] | None:
    """The ``names`` of a YOLO data.yaml: ``names: [a, b]``, or a block of ``- a`` or ``0: a`` lines."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    for i, line in enumerate(lines):
        key, _, value = line.partition(":")
        if key.strip() != "names" or line.startswith((" ", "\t")):
            continue
        if value.strip():
            return [n.strip().strip("'\"") for n in value.strip().strip("[]").split(",") if n.strip()]
        names = []
        for item in lines[i + 1:]:
            match = re.match(r"\s+(?:-|\d+\s*:)\s*(.+)$", item)
            if not match:
                break
            names.append(match.group(1).strip().strip("'\""))
        return names
    return None


def yolo_class_names(root: str) -> list[str] | None:
    """classes.txt, else data.yaml's names, else None (class indices name themselves)."""
    if os.path.isfile(os.path.join(root, CLASS_LIST)):
        return read_class_list(os.path.join(root, CLASS_LIST))[0]
    if os.path.isfile(os.path.join(root, DATA_YAML)):
        return yaml_names(os.path.join(root, DATA_YAML))
    return None


def read_yolo_image(image_path: str, image_id: int, class_names: list[str] | None,
                    size: tuple[int, int] | None = None) -> RawImage:
    """One image's objects in pixels; ``size`` (h, w) when already known, else read from the header."""
    source = label_path(image_path)
    labels, fractions = read_yolo_labels(source)
    height, width = size or image_size(image_path)
    names = [class_names[i] if class_names is not None and i < len(class_names) else
             (f"#{i}" if class_names is not None else str(i)) for i in labels]
    return RawImage(path=image_path, source=source, names=names, boxes=to_pixels(fractions, height, width),
                    image_id=image_id, size=(height, width))


@DATASETS.register("yolo")
def yolo(root: str, split: str, transforms: Callable[[Sample], Sample] | None = None, skip_bad_images: bool = False,
         class_names: list[str] | None = None, skip_bad_boxes: bool = False) -> DetDataset:
    """Classes as the module docstring says unless ``class_names`` fixes them."""
    names = class_names if class_names is not None else yolo_class_names(root)
    paths = split_images(root, split)
    if not paths:
        raise DatasetError(f"{root}: split {split!r} lists no images")
    images = [read_yolo_image(path, i, names) for i, path in enumerate(paths)]
    if names is None:
        names = [str(i) for i in range(1 + max((int(n) for image in images for n in image.names), default=0))]
    return DetDataset(images, os.path.join(root, IMAGE_DIR, split), class_names=names, transforms=transforms,
                      skip_bad_images=skip_bad_images, skip_bad_boxes=skip_bad_boxes)
