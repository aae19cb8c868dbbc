"""Write a synthetic detection set of coloured shapes on textured backgrounds, as VOC and as COCO.

    python scripts/det/shapes/prepare.py --out data/shapes [--train 800] [--val 200] [--size 160] [--seed 0]

Each image (sides between 3/4 of ``--size`` and ``--size``) holds one to five shapes of the classes
circle, square, triangle and star, of random sizes, colours and rotations, over a background of
smooth noise, stripes and grain. Shapes may overlap (at most 0.3 IoU with those drawn before, so
every one stays recognisable); the box is the drawn shape's extent. Layout, both over the same
images:

    OUT/JPEGImages/<id>.jpg
    OUT/Annotations/<id>.xml            VOC, 1-based inclusive coordinates
    OUT/ImageSets/Main/{train,val}.txt
    OUT/annotations/instances_{train,val}.json   COCO (data.params.image_dir = "JPEGImages")

The same arguments always give the same files.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable

import cv2
import numpy as np

CLASSES = ("circle", "square", "triangle", "star")
CATEGORY_IDS = (1, 3, 5, 7)  # not contiguous, like COCO's


def background(gen: np.random.Generator, h: int, w: int) -> np.ndarray:
    low = gen.uniform(50, 200, size=(4, 4, 3)).astype(np.float32)
    image = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle, period = gen.uniform(0, math.pi), gen.uniform(6, 30)
    stripes = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    image += (gen.uniform(5, 30) * stripes)[..., None] * gen.uniform(0.5, 1.0, size=3).astype(np.float32)
    image += gen.normal(0, 6, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    if kind == "square":
        corners = [angle + math.pi / 4 + k * math.pi / 2 for k in range(4)]
        radii = [r] * 4
    elif kind == "triangle":
        corners = [angle + k * 2 * math.pi / 3 for k in range(3)]
        radii = [r] * 3
    else:
        corners = [angle + k * math.pi / 5 for k in range(10)]
        radii = [r if k % 2 == 0 else r * 0.45 for k in range(10)]
    return np.array([[cx + q * math.cos(a), cy + q * math.sin(a)] for a, q in zip(corners, radii)])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt, rb = np.maximum(a[:2], b[:, :2]), np.minimum(a[2:], b[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def draw_image(gen: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple[int, list[int]]]]:
    """One image (BGR, for cv2.imwrite) and its ``(class index, [x1, y1, x2, y2])`` objects, 0-based."""
    h, w = (int(v) for v in gen.integers(size * 3 // 4, size + 1, size=2))
    image = background(gen, h, w)
    objects: list[tuple[int, list[int]]] = []
    for _ in range(int(gen.integers(1, 6))):
        for _attempt in range(20):
            kind = int(gen.integers(len(CLASSES)))
            r = gen.uniform(size * 0.07, size * 0.22)
            cx, cy = gen.uniform(r * 0.5, w - r * 0.5), gen.uniform(r * 0.5, h - r * 0.5)
            if CLASSES[kind] == "circle":
                pts = None
                extent = np.array([cx - r, cy - r, cx + r, cy + r])
            else:
                pts = polygon(CLASSES[kind], cx, cy, r, gen.uniform(0, 2 * math.pi))
                extent = np.concatenate([pts.min(axis=0), pts.max(axis=0)])
            box = np.clip(np.round(extent), 0, [w, h, w, h]).astype(int)
            if min(box[2] - box[0], box[3] - box[1]) < 8:
                continue
            if objects and box_iou(box, np.array([b for _, b in objects])).max() > 0.3:
                continue
            mean = image[box[1]:box[3], box[0]:box[2]].reshape(-1, 3).mean(axis=0)
            color = gen.integers(0, 256, size=3)
            while np.abs(color - mean).sum() < 120:
                color = gen.integers(0, 256, size=3)
            color = tuple(int(c) for c in color)
            if pts is None:
                cv2.circle(image, (round(cx), round(cy)), round(r), color, -1, cv2.LINE_AA)
            else:
                cv2.fillPoly(image, [np.round(pts).astype(np.int32)], color, cv2.LINE_AA)
            objects.append((kind, box.tolist()))
            break
    return image, objects


def voc_xml(name: str, h: int, w: int, objects: list[tuple[int, list[int]]]) -> ET.ElementTree:
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = f"{name}.jpg"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", w), ("height", h), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    for kind, (x1, y1, x2, y2) in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = CLASSES[kind]
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(bndbox, tag).text = str(value)
    return ET.ElementTree(root)


def prepare(out: str, train: int = 800, val: int = 200, size: int = 160, seed: int = 0) -> None:
    """Writes the data set under ``out`` (see the module docstring)."""
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main", "annotations"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    categories = [{"id": cid, "name": name, "supercategory": "shape"} for cid, name in zip(CATEGORY_IDS, CLASSES)]
    start = 0
    for split, count in (("train", train), ("val", val)):
        coco: dict = {"images": [], "annotations": [], "categories": categories}
        names = []
        for index in range(start, start + count):
            gen = np.random.default_rng([seed, index])
            image, objects = draw_image(gen, size)
            name = f"{index:06d}"
            names.append(name)
            h, w = image.shape[:2]
            cv2.imwrite(os.path.join(out, "JPEGImages", f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            voc_xml(name, h, w, objects).write(os.path.join(out, "Annotations", f"{name}.xml"))
            coco["images"].append({"id": index + 1, "file_name": f"{name}.jpg", "width": w, "height": h})
            for kind, (x1, y1, x2, y2) in objects:
                coco["annotations"].append({
                    "id": len(coco["annotations"]) + 1, "image_id": index + 1, "category_id": CATEGORY_IDS[kind],
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        start += count
        with open(os.path.join(out, "ImageSets", "Main", f"{split}.txt"), "w", encoding="utf-8") as fh:
            fh.write("".join(f"{n}\n" for n in names))
        with open(os.path.join(out, "annotations", f"instances_{split}.json"), "w", encoding="utf-8") as fh:
            json.dump(coco, fh)


def main(write: Callable[..., None] = prepare, doc: str = __doc__, train: int = 800, val: int = 200,
         size: int = 160) -> None:
    """The command line of this script and of the seg shapes script (its ``write`` and defaults)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=train)
    p.add_argument("--val", type=int, default=val)
    p.add_argument("--size", type=int, default=size, help="largest image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    write(args.out, args.train, args.val, args.size, args.seed)
    print(f"wrote {args.train} train and {args.val} val images to {args.out}")


if __name__ == "__main__":
    main()
