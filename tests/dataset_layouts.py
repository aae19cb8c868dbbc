"""Tiny datasets in each on-disk layout the readers know, for the recognition, validation and page
tests: ``make(layout, root)`` writes one (two splits unless the layout says otherwise)."""
from __future__ import annotations

import json
import os
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

SIZE = (24, 32)  # h, w of every image


def image(path: str, value: int = 120, size: tuple[int, int] = SIZE) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.full(size + (3,), value, np.uint8)
    pixels[4:12, 6:20] = (255 - value, 40, value)
    assert cv2.imwrite(path, pixels)
    return path


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def image_folder(root: str) -> None:
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            for i in range(n):
                image(os.path.join(root, split, cls, f"{i}.png"), 60 + 40 * i)


def txt_list(root: str) -> None:
    for split in ("train", "val"):
        lines = [f"images/{split}_{i}.png {i % 2}" for i in range(4)]
        for line in lines:
            image(os.path.join(root, line.split()[0]))
        _write(os.path.join(root, f"{split}.txt"), "\n".join(lines) + "\n")


def csv_list(root: str) -> None:
    for split in ("train", "val"):
        rows = [(f"images/{split}_{i}.png", i % 2) for i in range(4)]
        for path, _ in rows:
            image(os.path.join(root, path))
        _write(os.path.join(root, f"{split}.csv"), "path,label\n" + "".join(f"{p},{c}\n" for p, c in rows))


def label_json(root: str) -> None:
    for split in ("train", "val"):
        entries = [{"image_path": f"{i}.png", "label": i % 2} for i in range(4)]
        for entry in entries:
            image(os.path.join(root, split, "image", entry["image_path"]))
        _write(os.path.join(root, split, "label.json"), json.dumps(entries))


BOXES = [("circle", [2, 3, 14, 12]), ("square", [10, 8, 30, 22])]  # name, [x1, y1, x2, y2] pixels


def voc(root: str) -> None:
    for split in ("train", "val"):
        ids = [f"{split}{i}" for i in range(3)]
        _write(os.path.join(root, "ImageSets", "Main", f"{split}.txt"), "\n".join(ids) + "\n")
        for name in ids:
            image(os.path.join(root, "JPEGImages", f"{name}.jpg"))
            objects = "".join(f"<object><name>{c}</name><difficult>0</difficult><bndbox><xmin>{b[0] + 1}</xmin>"
                              f"<ymin>{b[1] + 1}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
                              for c, b in BOXES)
            _write(os.path.join(root, "Annotations", f"{name}.xml"),
                   f"<annotation><filename>{name}.jpg</filename><size><width>{SIZE[1]}</width>"
                   f"<height>{SIZE[0]}</height></size>{objects}</annotation>")


def _coco_doc(split: str, root: str, folder: str, categories: list[dict], annotation: Callable[[int, int], dict]) -> dict:
    images, anns = [], []
    for i in range(3):
        name = f"{split}{i}.jpg"
        image(os.path.join(root, folder, name))
        images.append({"id": i + 1, "file_name": name, "height": SIZE[0], "width": SIZE[1]})
        anns.append({"id": len(anns) + 1, "image_id": i + 1, "iscrowd": 0, **annotation(i, len(anns))})
    return {"images": images, "annotations": anns, "categories": categories}


def coco(root: str, segmentation: bool = False) -> None:
    def annotation(i: int, n: int) -> dict:
        x1, y1, x2, y2 = BOXES[i % 2][1]
        ann = {"category_id": 1 + i % 2, "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)}
        if segmentation:
            ann["segmentation"] = [[x1, y1, x2, y1, x2, y2, x1, y2]]
        return ann

    for split in ("train", "val"):
        doc = _coco_doc(split, root, split, [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}], annotation)
        _write(os.path.join(root, "annotations", f"instances_{split}.json"), json.dumps(doc))


def coco_seg(root: str) -> None:
    coco(root, segmentation=True)


def torchcv_json(root: str) -> None:
    for split in ("train", "val"):
        for i in range(3):
            image(os.path.join(root, split, "image", f"{i}.jpg"))
            objects = [{"bbox": b, "label": c} for c, b in BOXES]
            _write(os.path.join(root, split, "json", f"{i}.json"),
                   json.dumps({"width": SIZE[1], "height": SIZE[0], "objects": objects}))


def yolo(root: str) -> None:
    _write(os.path.join(root, "classes.txt"), "circle\nsquare\n")
    h, w = SIZE
    for split in ("train", "val"):
        for i in range(3):
            image(os.path.join(root, "images", split, f"{i}.jpg"))
            lines = [f"{k} {(b[0] + b[2]) / 2 / w} {(b[1] + b[3]) / 2 / h} {(b[2] - b[0]) / w} {(b[3] - b[1]) / h}"
                     for k, (_, b) in enumerate(BOXES)]
            _write(os.path.join(root, "labels", split, f"{i}.txt"), "\n".join(lines) + "\n")


def _mask(path: str, value: int = 1) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    labels = np.zeros(SIZE, np.uint8)
    labels[4:12, 6:20] = value
    labels[0, 0] = 255
    Image.fromarray(labels, mode="L").save(path)


def voc_seg(root: str) -> None:
    _write(os.path.join(root, "classes.txt"), "background\nthing\nother\n")
    for split in ("train", "val"):
        ids = [f"{split}{i}" for i in range(3)]
        _write(os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt"), "\n".join(ids) + "\n")
        for i, name in enumerate(ids):
            image(os.path.join(root, "JPEGImages", f"{name}.jpg"))
            _mask(os.path.join(root, "SegmentationClass", f"{name}.png"), 1 + i % 2)


def mask_folder(root: str) -> None:
    _write(os.path.join(root, "classes.txt"), "background\nthing\n")
    for split in ("training", "validation"):
        for i in range(3):
            image(os.path.join(root, "images", split, f"{i}.jpg"))
            _mask(os.path.join(root, "annotations", split, f"{i}.png"))


JOINTS = ["head", "left_hand", "right_hand"]


def coco_keypoints(root: str) -> None:
    def annotation(i: int, n: int) -> dict:
        return {"category_id": 1, "bbox": [4, 2, 20, 20], "area": 400, "num_keypoints": 2,
                "keypoints": [14, 5, 2, 6, 15, 2, 22, 15, 0 if i % 2 else 1]}

    for split in ("train", "val"):
        doc = _coco_doc(split, root, "images", [{"id": 1, "name": "person", "keypoints": JOINTS,
                                                 "skeleton": [[1, 2], [1, 3]]}], annotation)
        _write(os.path.join(root, "annotations", f"person_keypoints_{split}.json"), json.dumps(doc))


MAKERS: dict[str, Callable[[str], None]] = {
    "image_folder": image_folder, "txt_list": txt_list, "csv_list": csv_list, "label_json": label_json,
    "voc": voc, "coco": coco, "torchcv_json": torchcv_json, "yolo": yolo,
    "voc_seg": voc_seg, "coco_seg": coco_seg, "mask_folder": mask_folder, "coco_keypoints": coco_keypoints,
}
TASK_OF = {"image_folder": "cls", "txt_list": "cls", "csv_list": "cls", "label_json": "cls", "voc": "det",
           "coco": "det", "torchcv_json": "det", "yolo": "det", "voc_seg": "seg", "coco_seg": "seg",
           "mask_folder": "seg", "coco_keypoints": "pose"}


def make(layout: str, root: str) -> str:
    MAKERS[layout](root)
    return root
