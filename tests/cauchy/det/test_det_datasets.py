"""Detection readers on tiny hand-written VOC, COCO and torchcv files with the quirks real sets have."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from dataset_layouts import BOXES, make

import cauchy.datasets  # noqa: F401
from cauchy.datasets.errors import DatasetError
from cauchy.registry import DATASETS


def write_image(path: str, h: int = 40, w: int = 50) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((h, w, 3), 127, dtype=np.uint8))


VOC_OBJECT = """<object><name>{name}</name><difficult>{difficult}</difficult>
<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"""


def write_voc(root: str, images: dict[str, list[tuple]], split: str = "train", with_size: bool = True) -> None:
    """``images``: ``{id: [(name, difficult, x1, y1, x2, y2), ...]}`` in VOC's 1-based coordinates."""
    os.makedirs(os.path.join(root, "Annotations"), exist_ok=True)
    os.makedirs(os.path.join(root, "ImageSets", "Main"), exist_ok=True)
    for image_id, objects in images.items():
        write_image(os.path.join(root, "JPEGImages", f"{image_id}.jpg"))
        size = "<size><width>50</width><height>40</height><depth>3</depth></size>" if with_size else ""
        body = "".join(VOC_OBJECT.format(name=n, difficult=d, x1=x1, y1=y1, x2=x2, y2=y2)
                       for n, d, x1, y1, x2, y2 in objects)
        with open(os.path.join(root, "Annotations", f"{image_id}.xml"), "w") as fh:
            fh.write(f"<annotation><filename>{image_id}.jpg</filename>{size}{body}</annotation>")
    with open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"), "w") as fh:
        fh.write("\n".join(images) + "\n")


def test_voc_one_based_coordinates_difficult_and_empty_images(tmp_path) -> None:
    root = str(tmp_path)
    write_voc(root, {"a": [("dog", 0, 1, 1, 10, 20), ("cat", 1, 5, 6, 50, 40)], "b": []})
    ds = DATASETS.build("voc", root=root, split="train")
    assert ds.class_names == ["cat", "dog"]
    item = ds[0]
    np.testing.assert_allclose(item["boxes"], [[0, 0, 10, 20], [4, 5, 50, 40]])
    assert item["labels"].tolist() == [1, 0] and item["difficult"].tolist() == [False, True]
    assert item["iscrowd"].tolist() == [False, False] and item["orig_size"] == (40, 50)
    empty = ds[1]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)


def test_voc_box_outside_image_is_clipped_and_size_read_from_image_when_missing(tmp_path) -> None:
    write_voc(str(tmp_path), {"a": [("dog", 0, -5, 3, 70, 45)]}, with_size=False)
    ds = DATASETS.build("voc", root=str(tmp_path), split="train")
    np.testing.assert_allclose(ds[0]["boxes"], [[0, 2, 50, 40]])


def test_voc_box_without_area_is_an_error_naming_the_file_or_skipped_and_counted(tmp_path) -> None:
    write_voc(str(tmp_path), {"a": [("dog", 0, 10, 10, 8, 20), ("dog", 0, 1, 1, 5, 5)]})
    with pytest.raises(DatasetError, match=r"a\.xml: object 0 \(dog\) has no area"):
        DATASETS.build("voc", root=str(tmp_path), split="train")
    ds = DATASETS.build("voc", root=str(tmp_path), split="train", skip_bad_boxes=True)
    assert ds.skipped_boxes == 1 and len(ds[0]["boxes"]) == 1 and "a.xml" in ds.bad_boxes[0][0]


def test_voc_unknown_class_is_an_error_or_skipped(tmp_path) -> None:
    write_voc(str(tmp_path), {"a": [("dog", 0, 1, 1, 10, 10), ("horse", 0, 1, 1, 10, 10)]})
    with pytest.raises(DatasetError, match=r"a\.xml: object 1 has class 'horse'"):
        DATASETS.build("voc", root=str(tmp_path), split="train", class_names=["cat", "dog"])
    ds = DATASETS.build("voc", root=str(tmp_path), split="train", class_names=["cat", "dog"], skip_bad_boxes=True)
    assert ds.skipped_boxes == 1 and ds[0]["labels"].tolist() == [1]


def test_voc_malformed_files_name_the_file(tmp_path) -> None:
    write_voc(str(tmp_path), {"a": []})
    with open(tmp_path / "Annotations" / "a.xml", "w") as fh:
        fh.write("<annotation><object><name>dog</name></object>")
    with pytest.raises(DatasetError, match=r"a\.xml: not valid XML"):
        DATASETS.build("voc", root=str(tmp_path), split="train")
    with pytest.raises(DatasetError, match=r"ImageSets/Main/val\.txt: VOC split list not found"):
        DATASETS.build("voc", root=str(tmp_path), split="val")


def write_coco(root: str, images: list[dict], annotations: list[dict], categories: list[dict]) -> str:
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    for image in images:
        write_image(os.path.join(root, "train", image["file_name"]), image["height"], image["width"])
    path = os.path.join(root, "annotations", "instances_train.json")
    with open(path, "w") as fh:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, fh)
    return path


COCO_IMAGES = [{"id": 42, "file_name": "x.jpg", "width": 50, "height": 40},
               {"id": 7, "file_name": "y.jpg", "width": 30, "height": 20}]
COCO_CATEGORIES = [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}, {"id": 90, "name": "toothbrush"}]


def test_coco_non_contiguous_ids_crowd_and_empty_images(tmp_path) -> None:
    anns = [{"id": 1, "image_id": 42, "category_id": 18, "bbox": [1, 2, 10, 5], "iscrowd": 0},
            {"id": 2, "image_id": 42, "category_id": 90, "bbox": [0, 0, 50, 40], "iscrowd": 1},
            {"id": 3, "image_id": 42, "category_id": 3, "bbox": [40, 30, 20, 20], "iscrowd": 0}]
    write_coco(str(tmp_path), COCO_IMAGES, anns, COCO_CATEGORIES)
    ds = DATASETS.build("coco", root=str(tmp_path), split="train")
    assert ds.class_names == ["car", "dog", "toothbrush"]  # categories in id order
    assert ds.metadata == {"category_ids": [3, 18, 90]}
    item = ds[0]
    assert item["image_id"] == 42 and item["labels"].tolist() == [1, 2, 0]
    np.testing.assert_allclose(item["boxes"], [[1, 2, 11, 7], [0, 0, 50, 40], [40, 30, 50, 40]])  # last one clipped
    assert item["iscrowd"].tolist() == [False, True, False]
    assert ds[1]["boxes"].shape == (0, 4) and ds[1]["image_id"] == 7


def test_coco_errors_name_the_file_and_entry(tmp_path) -> None:
    path = write_coco(str(tmp_path), COCO_IMAGES[:1], [{"id": 1, "image_id": 42, "category_id": 5,
                                                         "bbox": [1, 2, 10, 5]}], COCO_CATEGORIES)
    with pytest.raises(DatasetError, match=r"instances_train\.json: annotations\[0\]: category_id 5"):
        DATASETS.build("coco", root=str(tmp_path), split="train")
    write_coco(str(tmp_path), COCO_IMAGES[:1], [{"id": 1, "image_id": 42, "category_id": 3, "bbox": [1, 2, 0, 5]}],
               COCO_CATEGORIES)
    with pytest.raises(DatasetError, match=r"instances_train\.json \(image id 42\): object 0 \(car\) has no area"):
        DATASETS.build("coco", root=str(tmp_path), split="train")
    assert os.path.basename(path) == "instances_train.json"


def test_torchcv_json_index_and_name_labels(tmp_path) -> None:
    root = tmp_path / "train"
    write_image(str(root / "image" / "0001.jpg"))
    write_image(str(root / "image" / "0002.png"))
    os.makedirs(root / "json")
    (root / "json" / "0001.json").write_text(json.dumps(
        {"width": 50, "height": 40, "objects": [{"bbox": [1, 2, 60, 30], "label": 2}, {"bbox": [0, 0, 5, 5], "label": 0}]}))
    (root / "json" / "0002.json").write_text(json.dumps({"width": 50, "height": 40, "objects": []}))
    ds = DATASETS.build("torchcv_json", root=str(tmp_path), split="train")
    assert ds.class_names == ["0", "1", "2"]
    np.testing.assert_allclose(ds[0]["boxes"], [[1, 2, 50, 30], [0, 0, 5, 5]])
    assert ds[0]["labels"].tolist() == [2, 0] and len(ds[1]["boxes"]) == 0
    named = DATASETS.build("torchcv_json", root=str(tmp_path), split="train", class_names=["bg", "cat", "dog"])
    assert named[0]["labels"].tolist() == [2, 0]
    (root / "json" / "0002.json").write_text(json.dumps({"objects": [{"bbox": [1, 2], "label": 0}]}))
    with pytest.raises(DatasetError, match=r"0002\.json: objects\[0\]: bbox must be"):
        DATASETS.build("torchcv_json", root=str(tmp_path), split="train")


def test_shapes_prepare_writes_matching_voc_and_coco(tmp_path, shapes_prepare) -> None:
    shapes = shapes_prepare
    shapes.prepare(str(tmp_path), train=6, val=2, size=64, seed=1)
    voc = DATASETS.build("voc", root=str(tmp_path), split="train")
    coco = DATASETS.build("coco", root=str(tmp_path), split="train", image_dir="JPEGImages")
    assert len(voc) == len(coco) == 6 and sorted(coco.class_names) == sorted(shapes.CLASSES)
    for i in range(6):
        a, b = voc[i], coco[i]
        np.testing.assert_allclose(a["boxes"], b["boxes"])
        assert [voc.class_names[k] for k in a["labels"]] == [coco.class_names[k] for k in b["labels"]]
        assert len(a["boxes"]) >= 1


def test_misspelt_class_name_without_class_names_is_an_error_or_skipped(tmp_path) -> None:
    """Without data.class_names a typo would become a class of its own: it is a bad box instead."""
    write_voc(str(tmp_path), {"a": [("circle", 0, 1, 1, 10, 10), ("circle", 0, 5, 5, 20, 20), ("square", 0, 1, 1, 9, 9)],
                              "b": [("square", 0, 1, 1, 10, 10), ("cirle", 0, 2, 2, 9, 9), ("Square", 0, 3, 3, 9, 9)]})
    with pytest.raises(DatasetError, match=r"b\.xml: object 1 has class 'cirle', which looks like a misspelling "
                                           r"of 'circle'"):
        DATASETS.build("voc", root=str(tmp_path), split="train")
    ds = DATASETS.build("voc", root=str(tmp_path), split="train", skip_bad_boxes=True)
    assert ds.class_names == ["circle", "square"] and ds.skipped_boxes == 2  # 'cirle' and 'Square'
    assert ds[1]["labels"].tolist() == [1] and "'Square', which looks like a misspelling of 'square'" in ds.bad_boxes[1][1]
    listed = DATASETS.build("voc", root=str(tmp_path), split="train", class_names=["Square", "circle", "cirle", "square"])
    assert listed.skipped_boxes == 0  # named on purpose: all four are classes


def test_coco_annotation_of_a_missing_image_is_counted_and_reported(tmp_path, caplog) -> None:
    anns = [{"id": 1, "image_id": 42, "category_id": 18, "bbox": [1, 2, 10, 5]},
            {"id": 2, "image_id": 99, "category_id": 18, "bbox": [1, 2, 10, 5]}]
    write_coco(str(tmp_path), COCO_IMAGES, anns, COCO_CATEGORIES)
    with caplog.at_level("WARNING"):
        ds = DATASETS.build("coco", root=str(tmp_path), split="train")
    assert ds.skipped_annotations == 1 and "annotation id 2 has image_id 99" in ds.unmatched_annotations[0]
    assert "1 annotations of no listed image" in caplog.text and "image_id 99" in caplog.text
    assert sum(len(ds[i]["boxes"]) for i in range(len(ds))) == 1


def test_yolo_fractions_become_pixel_boxes_and_a_missing_label_file_means_no_objects(tmp_path) -> None:
    root = make("yolo", str(tmp_path))
    os.remove(tmp_path / "labels" / "val" / "2.txt")
    train = DATASETS.build("yolo", root=root, split="train")
    assert train.class_names == ["circle", "square"]
    np.testing.assert_allclose(train[0]["boxes"], [b for _, b in BOXES], atol=1e-4)
    assert train[0]["labels"].tolist() == [0, 1]
    assert len(DATASETS.build("yolo", root=root, split="val")[2]["boxes"]) == 0
    (tmp_path / "labels" / "val" / "0.txt").write_text("1 0.5 0.5\n")
    with pytest.raises(DatasetError, match=r"labels/val/0.txt:1: expected 'class cx cy w h'"):
        DATASETS.build("yolo", root=root, split="val")
