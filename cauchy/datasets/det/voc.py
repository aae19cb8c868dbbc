"""Pascal VOC: ``root/ImageSets/Main/<split>.txt`` lists ids, ``root/Annotations/<id>.xml`` holds
the boxes, ``root/JPEGImages/<filename>`` the images.

VOC coordinates are 1-based and inclusive (pixel 1 is the first column), so a box becomes
``[xmin - 1, ymin - 1, xmax, ymax]`` in Cauchy's continuous 0-based convention; ``one_based=False``
reads files written 0-based. The ``difficult`` flag is kept for the VOC metric.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable

import numpy as np

from cauchy.datasets.det.base import DetDataset, RawImage, Sample
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import require_file
from cauchy.registry import DATASETS

SPLIT_LIST = os.path.join("ImageSets", "Main", "{split}.txt")
ANNOTATION_DIR, IMAGE_DIR = "Annotations", "JPEGImages"
CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _text(node: ET.Element, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None:
        raise DatasetError(f"{where}: missing <{tag}>")
    return child.text.strip()


def _number(node: ET.Element, tag: str, where: str) -> float:
    text = _text(node, tag, where)
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{where}: <{tag}> is not a number: {text!r}") from None


def _box(bndbox: ET.Element | None, where: str) -> list[float]:
    """The four corners; the slow path only to name what is wrong."""
    if bndbox is not None:
        try:
            return [float(bndbox.findtext(tag)) for tag in CORNERS]  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return [_number(bndbox, tag, where) for tag in CORNERS]
    raise DatasetError(f"{where}: missing <bndbox>")


def read_voc_xml(path: str, image_dir: str, image_id: int, one_based: bool = True) -> RawImage:
    """One annotation file; errors name it (and the object)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DatasetError(f"{path}: not valid XML ({exc})") from None
    except FileNotFoundError:  # the open is the existence check: no stat of each file first
        raise DatasetError(f"{path}: annotation of {os.path.splitext(os.path.basename(path))[0]!r} not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read annotation ({exc.strerror or exc})") from None
    filename = root.findtext("filename")
    size = root.find("size")
    hw = (int(_number(size, "height", path)), int(_number(size, "width", path))) if size is not None else None
    names, boxes, difficult = [], [], []
    for i, obj in enumerate(root.iter("object")):
        name = obj.findtext("name")
        names.append(name.strip() if name else _text(obj, "name", f"{path}: object {i}"))
        boxes.append(_box(obj.find("bndbox"), f"{path}: object {i}"))
        difficult.append((obj.findtext("difficult") or "0").strip() == "1")
    box_array = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    if one_based:
        box_array[:, :2] -= 1
    image = filename.strip() if filename else os.path.splitext(os.path.basename(path))[0] + ".jpg"
    return RawImage(path=os.path.join(image_dir, image), source=path, names=names, boxes=box_array,
                    image_id=image_id, size=hw, difficult=np.array(difficult, dtype=bool))


def read_split_ids(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [line.split()[0] for line in fh if line.strip()]


@DATASETS.register("voc")
def voc(root: str, split: str, transforms: Callable[[Sample], Sample] | None = None, skip_bad_images: bool = False,
        class_names: list[str] | None = None, skip_bad_boxes: bool = False, one_based: bool = True) -> DetDataset:
    """Classes are the sorted object names of the split unless ``class_names`` fixes them."""
    split_file = require_file(os.path.join(root, SPLIT_LIST.format(split=split)), "VOC split list")
    ids = read_split_ids(split_file)
    annotations, image_dir = os.path.join(root, ANNOTATION_DIR), os.path.join(root, IMAGE_DIR)
    images = [read_voc_xml(os.path.join(annotations, f"{name}.xml"), image_dir, i, one_based) for i, name in enumerate(ids)]
    if not images:
        raise DatasetError(f"{split_file}: lists no images")
    return DetDataset(images, split_file, class_names=class_names, transforms=transforms,
                      skip_bad_images=skip_bad_images, skip_bad_boxes=skip_bad_boxes)
