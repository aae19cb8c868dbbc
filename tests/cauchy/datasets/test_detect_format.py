"""detect_cls_format on each layout, and its error when none fits."""
from __future__ import annotations

import json

import pytest

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.tools import detect_cls_format


def make_image_folder(root, write_image):
    write_image(str(root / "train" / "cat" / "a.png"))


def make_txt_list(root, write_image):
    write_image(str(root / "images" / "a.png"))
    (root / "train.txt").write_text("# comment\nimages/a.png 0\n")
    (root / "README.txt").write_text("a dataset\n")


def make_csv_list(root, write_image):
    write_image(str(root / "images" / "a.png"))
    (root / "train.csv").write_text("path,label\nimages/a.png,0\n")


def make_label_json(root, write_image):
    write_image(str(root / "train" / "image" / "a.png"))
    (root / "train" / "label.json").write_text(json.dumps([{"image_path": "a.png", "label": 0}]))


@pytest.mark.parametrize("name, make", [("image_folder", make_image_folder), ("txt_list", make_txt_list),
                                        ("csv_list", make_csv_list), ("label_json", make_label_json)])
def test_detects_each_format(tmp_path, write_image, name, make):
    make(tmp_path, write_image)
    assert detect_cls_format(str(tmp_path)) == name


def test_list_file_wins_over_class_folders(tmp_path, write_image):
    make_image_folder(tmp_path, write_image)
    (tmp_path / "train.txt").write_text("train/cat/a.png 0\n")
    assert detect_cls_format(str(tmp_path)) == "txt_list"


def test_nothing_recognised_lists_the_layouts(tmp_path):
    (tmp_path / "notes.txt").write_text("hello world\n")
    (tmp_path / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"no classification dataset format recognised; expected one of "
                                           r"label_json: .*image_folder: <split>/<class>/<image>"):
        detect_cls_format(str(tmp_path))
    with pytest.raises(DatasetError, match="dataset folder not found"):
        detect_cls_format(str(tmp_path / "absent"))
