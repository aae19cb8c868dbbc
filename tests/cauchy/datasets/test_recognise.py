"""recognise() on every layout the readers know: the task, format, splits and classes it finds; the
split parameters read with the reader itself; a guess settled by the task or the format; the error
naming what was expected and what was found; importable without torch."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dataset_layouts import MAKERS, TASK_OF, make

from cauchy.datasets.tools.layout import UnrecognisedLayout
from cauchy.datasets.tools.recognise import recognise
from cauchy.registry import DATASETS

SPLITS = {"mask_folder": ["training", "validation"]}


@pytest.mark.parametrize("layout", sorted(MAKERS))
def test_each_layout_is_recognised_and_its_splits_read_by_the_reader(tmp_path, layout: str) -> None:
    root = make(layout, str(tmp_path / layout))
    found = recognise(root, task=TASK_OF[layout])
    assert (found.task, found.format) == (TASK_OF[layout], layout)
    assert sorted(found.splits) == SPLITS.get(layout, ["train", "val"])
    if layout == "coco_keypoints":
        assert found.keypoint_names == ["head", "left_hand", "right_hand"]
        assert found.class_names == ["person"]
        return  # the pose reader is not this module's
    for params in found.splits.values():
        dataset = DATASETS.build(layout, root=root, class_names=found.class_names, **params)
        assert len(dataset) > 0


def test_classes_known_from_the_files(tmp_path) -> None:
    assert recognise(make("image_folder", str(tmp_path / "a"))).class_names == ["cat", "dog"]
    assert recognise(make("coco", str(tmp_path / "b"))).class_names == ["circle", "square"]
    assert recognise(make("yolo", str(tmp_path / "c"))).class_names == ["circle", "square"]
    assert recognise(make("voc_seg", str(tmp_path / "d"))).class_names == ["background", "thing", "other"]
    assert recognise(make("coco_seg", str(tmp_path / "e")), task="seg").class_names == ["background", "circle",
                                                                                          "square"]
    assert recognise(make("txt_list", str(tmp_path / "f"))).class_names is None


def test_task_or_format_settles_a_guess(tmp_path) -> None:
    root = make("coco_seg", str(tmp_path / "both"))  # boxes and polygons: det unless told
    assert recognise(root).format == "coco"
    assert recognise(root, task="seg").format == "coco_seg"
    assert recognise(root, fmt="coco_seg").task == "seg"


def test_yolo_list_files_and_data_yaml(tmp_path) -> None:
    root = make("yolo", str(tmp_path))
    os.remove(tmp_path / "classes.txt")
    (tmp_path / "data.yaml").write_text("path: .\nnames:\n  0: circle\n  1: square\n")
    (tmp_path / "all.txt").write_text("images/train/0.jpg\nimages/val/1.jpg\n")
    found = recognise(root)
    assert found.class_names == ["circle", "square"] and sorted(found.splits) == ["all", "train", "val"]
    assert len(DATASETS.build("yolo", root=root, **found.splits["all"])) == 2


def test_unrecognised_says_what_was_expected_and_found(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("hello world\n")
    (tmp_path / "pictures").mkdir()
    with pytest.raises(UnrecognisedLayout, match=r"no cls, det, seg or pose dataset format recognised; expected one "
                                                  r"of coco_keypoints: .*yolo: .*image_folder: <split>/<class>/<image>; "
                                                  r"found notes.txt, pictures/"):
        recognise(tmp_path)
    with pytest.raises(UnrecognisedLayout, match=r"no detection dataset format recognised; expected one of voc: "):
        recognise(tmp_path, task="det")
    with pytest.raises(UnrecognisedLayout, match="unknown format 'voc' for task cls; known: label_json, csv_list"):
        recognise(tmp_path, task="cls", fmt="voc")
    with pytest.raises(UnrecognisedLayout, match="unknown task 'depth'"):
        recognise(tmp_path, task="depth")
    with pytest.raises(UnrecognisedLayout, match="dataset folder not found"):
        recognise(tmp_path / "absent")


def test_list_file_wins_over_class_folders(tmp_path) -> None:
    make("image_folder", str(tmp_path))
    (tmp_path / "train.txt").write_text("train/cat/0.png 0\n")
    assert recognise(tmp_path).format == "txt_list"


def test_importable_without_torch(tmp_path) -> None:
    root = make("voc", str(tmp_path))
    code = ("import sys; from cauchy.datasets.tools.recognise import recognise; "
            f"print(recognise({root!r}).format, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["voc", "False"]
