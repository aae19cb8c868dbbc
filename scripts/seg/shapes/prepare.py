"""Write a synthetic semantic/instance segmentation set of coloured shapes on textured backgrounds,
as VOC segmentation and as COCO instances.

    python scripts/seg/shapes/prepare.py --out data/seg_shapes [--train 400] [--val 100] [--size 128] [--seed 0]

Images are drawn like the detection shapes (scripts/det/shapes/prepare.py: same backgrounds and
shape outlines, classes circle, square, triangle and star, one to five per image, at most 0.3
box IoU between them); a shape drawn later hides what it covers, and each instance's mask is its
visible part. Layout, both over the same images:

    OUT/JPEGImages/<id>.jpg
    OUT/SegmentationClass/<id>.png      palette PNG (VOC colours): 0 background, 1..4 the classes in
                                        CLASSES order, 255 (ignore) on a one-pixel ring where
                                        instances meet each other or the background, as VOC does
    OUT/ImageSets/Segmentation/{train,val}.txt
    OUT/classes.txt                     the class list: background, then CLASSES
    OUT/annotations/instances_{train,val}.json   COCO instances (data.params.image_dir = "JPEGImages"),
        category ids 1, 3, 5, 7 (not contiguous, like COCO's); every third instance's segmentation
        is compressed RLE, the others polygons (outer contours of the visible part, an instance
        split in two has two); bbox and area from the visible mask

The same arguments always give the same files.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import sys

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, REPO)

from cauchy.datasets.seg.palette import voc_palette  # noqa: E402


def _det_shapes():
    """The detection prepare script (not a package), whose background and outlines are reused."""
    spec = importlib.util.spec_from_file_location("det_shapes_prepare", os.path.join(REPO, "scripts/det/shapes/prepare.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DET = _det_shapes()
CLASSES = DET.CLASSES
CATEGORY_IDS = DET.CATEGORY_IDS
IGNORE = 255


def draw_image(gen: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """One image (BGR, for cv2.imwrite) and its ``(class index, visible HxW bool mask)`` instances."""
    h, w = (int(v) for v in gen.integers(size * 3 // 4, size + 1, size=2))
    image = DET.background(gen, h, w)
    instances: list[tuple[int, np.ndarray]] = []
    boxes: list[np.ndarray] = []
    for _ in range(int(gen.integers(1, 6))):
        for _attempt in range(20):
            kind = int(gen.integers(len(CLASSES)))
            r = gen.uniform(size * 0.08, size * 0.22)
            cx, cy = gen.uniform(r * 0.5, w - r * 0.5), gen.uniform(r * 0.5, h - r * 0.5)
            shape = np.zeros((h, w), dtype=np.uint8)
            if CLASSES[kind] == "circle":
                pts = None
                cv2.circle(shape, (round(cx), round(cy)), round(r), 1, -1)
            else:
                pts = np.round(DET.polygon(CLASSES[kind], cx, cy, r, gen.uniform(0, 2 * math.pi))).astype(np.int32)
                cv2.fillPoly(shape, [pts], 1)
            ys, xs = np.nonzero(shape)
            if len(xs) == 0 or min(xs.max() - xs.min(), ys.max() - ys.min()) < 8:
                continue
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            if boxes and DET.box_iou(box, np.array(boxes)).max() > 0.3:
                continue
            mean = image[shape.astype(bool)].mean(axis=0)
            color = gen.integers(0, 256, size=3)
            while np.abs(color - mean).sum() < 120:
                color = gen.integers(0, 256, size=3)
            color = tuple(int(c) for c in color)
            if pts is None:
                cv2.circle(image, (round(cx), round(cy)), round(r), color, -1)
            else:
                cv2.fillPoly(image, [pts], color)
            covered = shape.astype(bool)
            instances = [(k, m & ~covered) for k, m in instances]
            instances.append((kind, covered))
            boxes.append(box)
            break
    return image, [(k, m) for k, m in instances if m.any()]


def semantic_mask(shape: tuple[int, int], instances: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """Class map (0 background, 1 + class index) with 255 on the pixels that touch another region."""
    ids = np.zeros(shape, dtype=np.uint8)
    labels = np.zeros(shape, dtype=np.uint8)
    for n, (kind, visible) in enumerate(instances, start=1):
        ids[visible] = n
        labels[visible] = kind + 1
    kernel = np.ones((3, 3), np.uint8)
    labels[cv2.dilate(ids, kernel) != cv2.erode(ids, kernel)] = IGNORE
    return labels


def coco_segmentation(visible: np.ndarray, as_rle: bool) -> list[list[float]] | dict[str, object]:
    """Outer polygons of ``visible``, or its compressed RLE (also when no contour has 3 points)."""
    if not as_rle:
        contours, _ = cv2.findContours(visible.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        polygons = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
        if polygons:
            return polygons
    rle = mask_utils.encode(np.asfortranarray(visible.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def write_palette_png(path: str, labels: np.ndarray, palette: np.ndarray) -> None:
    png = Image.fromarray(labels, mode="P")
    png.putpalette(palette.reshape(-1).tolist())
    png.save(path)


def prepare(out: str, train: int = 400, val: int = 100, size: int = 128, seed: int = 0) -> None:
    """Writes the data set under ``out`` (see the module docstring)."""
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation", "annotations"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    palette = voc_palette()
    categories = [{"id": cid, "name": name, "supercategory": "shape"} for cid, name in zip(CATEGORY_IDS, CLASSES)]
    with open(os.path.join(out, "classes.txt"), "w", encoding="utf-8") as fh:
        fh.write("".join(f"{name}\n" for name in ("background", *CLASSES)))
    start = 0
    for split, count in (("train", train), ("val", val)):
        coco: dict = {"images": [], "annotations": [], "categories": categories}
        names = []
        for index in range(start, start + count):
            image, instances = draw_image(np.random.default_rng([seed, index]), size)
            name = f"{index:06d}"
            names.append(name)
            h, w = image.shape[:2]
            cv2.imwrite(os.path.join(out, "JPEGImages", f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            write_palette_png(os.path.join(out, "SegmentationClass", f"{name}.png"), semantic_mask((h, w), instances), palette)
            coco["images"].append({"id": index + 1, "file_name": f"{name}.jpg", "width": w, "height": h})
            for kind, visible in instances:
                ys, xs = np.nonzero(visible)
                ann_id = len(coco["annotations"]) + 1
                coco["annotations"].append({
                    "id": ann_id, "image_id": index + 1, "category_id": CATEGORY_IDS[kind],
                    "segmentation": coco_segmentation(visible, as_rle=ann_id % 3 == 0),
                    "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
                    "area": int(visible.sum()), "iscrowd": 0})
        start += count
        with open(os.path.join(out, "ImageSets", "Segmentation", f"{split}.txt"), "w", encoding="utf-8") as fh:
            fh.write("".join(f"{n}\n" for n in names))
        with open(os.path.join(out, "annotations", f"instances_{split}.json"), "w", encoding="utf-8") as fh:
            json.dump(coco, fh)


if __name__ == "__main__":
    DET.main(prepare, __doc__, train=400, val=100, size=128)
