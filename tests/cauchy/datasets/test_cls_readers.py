"""The four classification readers on tiny files, including broken ones."""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch

import cauchy.datasets  # noqa: F401  (registers the readers)
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.transforms import Compose, Normalize, Resize
from cauchy.registry import DATASETS


def build(name: str, root, split: str = "train", **kwargs):
    return DATASETS.build(name, root=str(root), split=split, **kwargs)


@pytest.fixture
def folder_root(tmp_path, write_image):
    write_image(str(tmp_path / "train" / "dog" / "a.png"), rgb=(255, 0, 0))
    write_image(str(tmp_path / "train" / "dog" / "nested" / "b.jpg"))
    write_image(str(tmp_path / "train" / "cat" / "c.png"), size=(5, 7))
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    return tmp_path


def test_registered_names():
    assert {"image_folder", "txt_list", "csv_list", "label_json"} <= set(DATASETS.names())


def test_image_folder_items(folder_root):
    ds = build("image_folder", folder_root)
    assert ds.class_names == ["cat", "dog"]
    assert len(ds) == 3 and ds.labels == [0, 1, 1] and ds.skipped == 0
    cat = ds[0]
    assert set(cat) == {"image", "label", "path", "orig_size"}
    assert cat["image"].shape == (5, 7, 3) and cat["image"].dtype == np.uint8
    assert cat["orig_size"] == (5, 7) and cat["path"].endswith("c.png")
    assert ds[1]["image"][0, 0].tolist() == [255, 0, 0]  # RGB order after decoding


def test_grayscale_png_becomes_rgb(tmp_path):
    import cv2

    os.makedirs(tmp_path / "val" / "0")
    cv2.imwrite(str(tmp_path / "val" / "0" / "g.png"), np.full((8, 8), 77, np.uint8))
    image = build("image_folder", tmp_path, "val")[0]["image"]
    assert image.shape == (8, 8, 3) and (image == 77).all()


def test_image_folder_class_names_fix_order(folder_root):
    ds = build("image_folder", folder_root, class_names=["dog", "bird", "cat"])
    assert ds.class_names == ["dog", "bird", "cat"] and ds.labels == [2, 0, 0]
    with pytest.raises(DatasetError, match=r"class folders \['cat'\] are not in class_names"):
        build("image_folder", folder_root, class_names=["dog"])


def test_image_folder_missing_split_names_path(folder_root):
    with pytest.raises(DatasetError, match=r"val: split folder not found"):
        build("image_folder", folder_root, "val")


def test_image_folder_without_images(tmp_path):
    os.makedirs(tmp_path / "train" / "cat")
    with pytest.raises(DatasetError, match="no images found"):
        build("image_folder", tmp_path)


def test_corrupt_image_raises_naming_file_when_loaded(folder_root, write_corrupt):
    bad = write_corrupt(str(folder_root / "train" / "cat" / "broken.png"))
    ds = build("image_folder", folder_root)
    index = [path for path, _ in ds.samples].index(bad)
    with pytest.raises(DatasetError, match=re.escape(f"{bad}: not a decodable image")):
        ds[index]


def test_skip_bad_images_counts_and_leaves_out(folder_root, write_corrupt):
    bad = write_corrupt(str(folder_root / "train" / "cat" / "broken.png"))
    ds = build("image_folder", folder_root, skip_bad_images=True)
    assert len(ds) == 3 and ds.skipped == 1
    assert ds.bad_images[0][0] == bad and "not a decodable image" in ds.bad_images[0][1]
    assert all(ds[i]["image"].ndim == 3 for i in range(len(ds)))


def _txt_root(tmp_path, write_image, lines):
    write_image(str(tmp_path / "imgs" / "a.png"))
    write_image(str(tmp_path / "imgs" / "with space.jpg"))
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_txt_list(tmp_path, write_image):
    root = _txt_root(tmp_path, write_image, ["# path label", "imgs/a.png 2", "", "imgs/with space.jpg 0"])
    ds = build("txt_list", root)
    assert ds.labels == [2, 0] and ds.class_names == ["0", "1", "2"]
    assert ds[1]["path"] == os.path.join(str(root), "imgs/with space.jpg")
    assert build("txt_list", root, class_names=list("abcd")).class_names == list("abcd")


@pytest.mark.parametrize("line", ["imgs/a.png", "imgs/a.png cat", "imgs/a.png -1"])
def test_txt_list_bad_line_names_file_and_line(tmp_path, write_image, line):
    root = _txt_root(tmp_path, write_image, ["imgs/a.png 0", "", line])
    with pytest.raises(DatasetError, match=re.escape(f"{tmp_path / 'train.txt'}:3: ")):
        build("txt_list", root)


def test_txt_list_missing_image_and_list(tmp_path, write_image):
    root = _txt_root(tmp_path, write_image, ["imgs/a.png 0", "imgs/gone.png 1"])
    with pytest.raises(DatasetError, match=r"imgs/gone.png: image file not found \(listed in .*train.txt\)"):
        build("txt_list", root)
    with pytest.raises(DatasetError, match=r"val.txt: list file not found"):
        build("txt_list", root, "val")


def test_txt_list_label_outside_class_names(tmp_path, write_image):
    root = _txt_root(tmp_path, write_image, ["imgs/a.png 5"])
    with pytest.raises(DatasetError, match=r"train.txt: label 5 of .*a.png is outside 0..1"):
        build("txt_list", root, class_names=["x", "y"])


def test_txt_list_skip_bad_images_counts_missing_and_corrupt(tmp_path, write_image, write_corrupt):
    write_corrupt(str(tmp_path / "imgs" / "bad.png"))
    root = _txt_root(tmp_path, write_image, ["imgs/a.png 0", "imgs/gone.png 1", "imgs/bad.png 1"])
    ds = build("txt_list", root, skip_bad_images=True)
    assert len(ds) == 1 and ds.skipped == 2
    assert [os.path.basename(path) for path, _ in ds.bad_images] == ["gone.png", "bad.png"]
    assert "image file not found" in ds.bad_images[0][1]


def test_csv_list(tmp_path, write_image):
    write_image(str(tmp_path / "x" / "a.png"))
    write_image(str(tmp_path / "x" / "b.png"))
    (tmp_path / "val.csv").write_text("path,label,comment\nx/a.png,1,ok\n\"x/b.png\",0,\n")
    ds = build("csv_list", tmp_path, "val")
    assert ds.labels == [1, 0] and ds.class_names == ["0", "1"] and ds[0]["image"].shape == (12, 16, 3)


@pytest.mark.parametrize("text, where", [
    ("file,class\nx/a.png,1\n", ":1: expected a header with columns 'path,label'"),
    ("path,label\nx/a.png,1\nx/a.png,one\n", ":3: label must be a class index"),
    ("path,label\nx/a.png\n", ":2: expected 'path,label'"),
])
def test_csv_list_bad_rows_name_file_and_line(tmp_path, write_image, text, where):
    write_image(str(tmp_path / "x" / "a.png"))
    (tmp_path / "train.csv").write_text(text)
    with pytest.raises(DatasetError, match=re.escape(f"{tmp_path / 'train.csv'}{where}")):
        build("csv_list", tmp_path)


def _json_root(tmp_path, write_image, entries):
    write_image(str(tmp_path / "train" / "image" / "a.jpg"))
    write_image(str(tmp_path / "train" / "image" / "sub" / "b.png"))
    (tmp_path / "train" / "label.json").write_text(json.dumps(entries))
    return tmp_path


def test_label_json(tmp_path, write_image):
    root = _json_root(tmp_path, write_image, [{"image_path": "a.jpg", "label": 1},
                                              {"image_path": "sub/b.png", "label": 0}])
    ds = build("label_json", root)
    assert ds.labels == [1, 0] and ds[1]["path"].endswith(os.path.join("train", "image", "sub/b.png"))


def test_label_json_bad_entry_names_file_and_entry(tmp_path, write_image):
    root = _json_root(tmp_path, write_image, [{"image_path": "a.jpg", "label": 0}, {"image_path": "a.jpg"}])
    with pytest.raises(DatasetError, match=r"label.json: entry 1: expected"):
        build("label_json", root)


def test_label_json_invalid_json_names_line(tmp_path, write_image):
    root = _json_root(tmp_path, write_image, [])
    (root / "train" / "label.json").write_text('[\n{"image_path": "a.jpg",\n')
    with pytest.raises(DatasetError, match=r"label.json:3: not valid JSON"):
        build("label_json", root)


def test_transforms_are_applied(folder_root):
    ds = build("image_folder", folder_root, transforms=Compose([Resize(size=[6, 4]), Normalize()]))
    item = ds[0]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 6, 4)
    assert item["orig_size"] == (5, 7) and item["label"] == 0
