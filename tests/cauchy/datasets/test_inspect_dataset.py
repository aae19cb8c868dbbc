"""inspect_dataset on tiny sets of every layout: the outcome its report says, the report's problems naming files
(broken images, bad boxes and masks, classes that disagree between splits), the statistics' figures,
the previews, torch never imported; and the stratified split maker."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from dataset_layouts import MAKERS, SIZE, TASK_OF, make
from PIL import Image

from cauchy.datasets.det.voc import voc
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import MissingFiles
from cauchy.datasets.tools import report_files
from cauchy.datasets.tools.inspect_dataset import main
from cauchy.datasets.tools.recognise import recognise
from cauchy.datasets.tools.split import make_split, stratified
from cauchy.registry import DATASETS

TASK_FIGURES = {"cls": [], "det": ["boxes_per_image", "box_sizes"], "seg": ["mask_pixel_share"],
                "pose": ["boxes_per_image", "keypoint_visibility"]}


def run(root, out, *args: str) -> tuple[str | None, dict, dict]:
    """The outcome report.json says, the report and the statistics."""
    assert main([str(root), "--out", str(out), "--workers", "2", *args]) is None  # no exit code from cauchy/
    report = json.loads((out / report_files.REPORT).read_text())
    stats = json.loads((out / report_files.STATS).read_text()) if (out / report_files.STATS).exists() else {}
    return report_files.outcome(report), report, stats


@pytest.mark.parametrize("layout", sorted(MAKERS))
def test_every_layout_is_usable_described_and_previewed(tmp_path, layout: str) -> None:
    root = make(layout, str(tmp_path / "data"))
    result, report, stats = run(root, tmp_path / "out", "--task", TASK_OF[layout])
    assert result == report_files.USABLE and report["ok"] and report["format"] == layout
    assert report["counts"]["errors"] == 0 and report["counts"]["images"] == sum(report["counts"]["per_split"].values())
    assert set(stats) >= {"splits", "class_histogram", "image_sizes", "aspect_ratios", *TASK_FIGURES[TASK_OF[layout]]}
    assert stats["image_sizes"]["points"][0] == [SIZE[1], SIZE[0]]
    assert stats["previews"] and all((tmp_path / "out" / "previews" / name).is_file() for name in stats["previews"])
    progress = json.loads((tmp_path / "out" / report_files.PROGRESS).read_text())
    assert progress == {"phase": "done", "done": report["counts"]["images"], "total": report["counts"]["images"]}


def test_figures_of_each_task(tmp_path) -> None:
    _, _, cls = run(make("image_folder", str(tmp_path / "cls")), tmp_path / "o1")
    assert cls["splits"]["train"]["per_class"] == [3, 3] and cls["class_histogram"] == [5, 5]
    _, _, det = run(make("coco", str(tmp_path / "det")), tmp_path / "o2")
    assert det["class_histogram"] == [4, 2] and det["box_sizes"]["small"] == 6
    assert det["boxes_per_image"] == {"edges": [0, 1, 2], "counts": [0, 6]}
    _, _, seg = run(make("voc_seg", str(tmp_path / "seg")), tmp_path / "o3")
    labelled = SIZE[0] * SIZE[1] - 1  # one ignored pixel per mask
    assert seg["mask_pixel_share"][1] == pytest.approx(4 * 8 * 14 / (6 * labelled), abs=1e-5)
    _, _, pose = run(make("coco_keypoints", str(tmp_path / "pose")), tmp_path / "o4")
    assert pose["keypoint_visibility"] == {"joints": ["head", "left_hand", "right_hand"], "absent": [0, 0, 2],
                                           "occluded": [0, 0, 4], "visible": [6, 6, 0]}


def test_broken_image_bad_box_and_bad_mask_are_reported_by_file(tmp_path) -> None:
    root = make("image_folder", str(tmp_path / "cls"))
    (tmp_path / "cls" / "val" / "dog" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result, report, stats = run(root, tmp_path / "o1")
    assert result == report_files.NOT_USABLE and not report["ok"] and report["counts"]["bad_images"] == 1
    assert report["problems"][0]["file"] == "val/dog/1.png" and "not a decodable image" in report["problems"][0]["message"]
    assert stats["splits"]["val"] == {"images": 3, "bad_images": 1, "per_class": [2, 1]}

    det = make("voc", str(tmp_path / "det"))
    xml = tmp_path / "det" / "Annotations" / "val1.xml"
    xml.write_text(xml.read_text().replace("<xmax>14</xmax>", "<xmax>1</xmax>", 1))
    result, report, _ = run(det, tmp_path / "o2")
    assert result == report_files.NOT_USABLE
    assert report["problems"][0]["file"] == "Annotations/val1.xml" and "has no area" in report["problems"][0]["message"]

    seg = make("voc_seg", str(tmp_path / "seg"))
    Image.fromarray(np.zeros((5, 5), np.uint8), mode="L").save(tmp_path / "seg" / "SegmentationClass" / "train2.png")
    result, report, _ = run(seg, tmp_path / "o3")
    assert result == report_files.NOT_USABLE and report["problems"][0]["file"] == "SegmentationClass/train2.png"
    assert "mask is 5x5 but its image is 32x24" in report["problems"][0]["message"]


def test_every_missing_image_and_mask_is_reported_not_only_the_first(tmp_path) -> None:
    det = make("voc", str(tmp_path / "det"))
    for name in ("train0", "train2"):
        os.remove(tmp_path / "det" / "JPEGImages" / f"{name}.jpg")
    result, report, stats = run(det, tmp_path / "o1")
    assert result == report_files.NOT_USABLE and report["counts"]["per_split"] == {"val": 3}  # val still checked
    assert [(p["split"], p["file"]) for p in report["problems"]] == [("train", "JPEGImages/train0.jpg"),
                                                                    ("train", "JPEGImages/train2.jpg")]
    assert "image file not found (listed in ImageSets/Main/train.txt)" in report["problems"][1]["message"]
    seg = make("voc_seg", str(tmp_path / "seg"))
    for name in ("val0", "val1"):
        os.remove(tmp_path / "seg" / "SegmentationClass" / f"{name}.png")
    result, report, _ = run(seg, tmp_path / "o2")
    assert result == report_files.NOT_USABLE and report["counts"]["errors"] == 2
    assert [p["file"] for p in report["problems"]] == ["SegmentationClass/val0.png", "SegmentationClass/val1.png"]
    with pytest.raises(MissingFiles, match="train0.jpg: image file not found .*; 2 files missing in all"):
        voc(root=det, split="train")  # what a job sees: the first, and how many


def test_class_names_disagreeing_between_splits(tmp_path) -> None:
    root = make("voc", str(tmp_path))
    xml = tmp_path / "Annotations" / "val0.xml"
    xml.write_text(xml.read_text().replace("<name>square</name>", "<name>triangle</name>"))
    result, report, _ = run(root, tmp_path / "out")
    assert result == report_files.NOT_USABLE and report["class_names"] == ["circle", "square", "triangle"]
    assert "classes ['triangle'] of split 'val' are not in split 'train'" in report["problems"][0]["message"]


def test_unrecognised_is_reported_with_the_reason(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "readme.md").write_text("hi")
    proc = subprocess.run([sys.executable, "-m", "cauchy.datasets.tools.inspect_dataset", str(tmp_path / "data"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 0  # the outcome is in the report, not the exit status
    assert "no cls, det, seg or pose dataset format recognised" in proc.stderr and "found readme.md" in proc.stderr
    report = json.loads((tmp_path / "out" / report_files.REPORT).read_text())
    assert report_files.outcome(report) == report_files.UNRECOGNISED and "found readme.md" in report["error"]
    assert report_files.outcome(None) is None  # no report: the inspection crashed


def test_the_command_never_imports_torch(tmp_path) -> None:
    root = make("coco_seg", str(tmp_path / "data"))
    code = ("import runpy, sys\n"
            f"sys.argv = ['inspect', {root!r}, '--out', {str(tmp_path / 'out')!r}, '--task', 'seg']\n"
            "runpy.run_module('cauchy.datasets.tools.inspect_dataset', run_name='__main__')\n"
            "print('torch' in sys.modules)\n")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split()[-1:] == ["False"]
    assert report_files.outcome(json.loads((tmp_path / "out" / report_files.REPORT).read_text())) == report_files.USABLE


def test_stratified_split_is_seeded_and_keeps_each_class_share() -> None:
    keys = ["a"] * 50 + ["b"] * 10 + ["c"]
    val = stratified(keys, 0.2, seed=0)
    assert Counter(k for k, v in zip(keys, val) if v) == {"a": 10, "b": 2}
    assert stratified(keys, 0.2, seed=0) == val and stratified(keys, 0.2, seed=1) != val
    with pytest.raises(DatasetError, match="between 0 and 1"):
        stratified(keys, 1.5, seed=0)


@pytest.mark.parametrize("layout, drop", [("image_folder", "val"), ("csv_list", "val.csv"), ("voc", "val"),
                                          ("yolo", "val"), ("coco", "val"), ("coco_keypoints", "val"),
                                          ("voc_seg", "val")])
def test_split_maker_writes_lists_the_readers_read(tmp_path, layout: str, drop: str) -> None:
    root = make(layout, str(tmp_path))
    for path in [p for p in tmp_path.rglob("*") if drop in p.relative_to(tmp_path).parts or p.name == drop
                 or p.name.startswith(f"{drop}") or p.stem.endswith(f"_{drop}")]:
        if path.is_file():
            path.unlink()
    assert list(recognise(root).splits) == ["train"]
    written = make_split(root, 0.34, seed=0)
    found = recognise(root)
    assert sorted(found.splits) == ["train", "val"] and written
    if found.task != "pose":
        sizes = [len(DATASETS.build(found.format, root=root, **found.splits[s])) for s in ("train", "val")]
        assert sizes[1] >= 1 and sum(sizes) == (6 if layout == "image_folder" else 3 if layout != "csv_list" else 4)
    result, report, _ = run(root, tmp_path / "out")
    assert result == report_files.USABLE, report["problems"]
    with pytest.raises(DatasetError, match="already has the splits"):
        make_split(root, 0.2)


def test_split_maker_refuses_folder_layouts_and_never_overwrites(tmp_path) -> None:
    root = make("mask_folder", str(tmp_path / "a"))
    for path in (tmp_path / "a").rglob("validation"):
        os.rename(path, str(path) + "_gone")
    os.remove(tmp_path / "a" / "annotations" / "validation_gone" / "0.png")
    with pytest.raises(DatasetError, match="keeps its splits in folders"):
        make_split(root, 0.2, task="seg")


def test_make_split_flag_splits_then_inspects(tmp_path, capsys) -> None:
    root = make("voc", str(tmp_path / "data"))
    os.remove(tmp_path / "data" / "ImageSets" / "Main" / "val.txt")
    result, report, stats = run(root, tmp_path / "out", "--make-split", "0.34", "--seed", "3")
    assert result == report_files.USABLE and sorted(report["splits"]) == ["train", "val"]
    assert stats["splits"]["train"]["images"] == 2 and stats["splits"]["val"]["images"] == 1
    again, refused, _ = run(root, tmp_path / "again", "--make-split", "0.2")
    assert again == report_files.NOT_USABLE and "already has the splits ['train', 'val']" in refused["error"]
    assert "already has the splits ['train', 'val']" in capsys.readouterr().err
