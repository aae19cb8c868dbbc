"""Every det hypes file trains two iterations through run_tasks.main on a tiny shapes set; test
and predict write metrics, COCO-format detections and drawn images."""
from __future__ import annotations

import glob
import json
import os

import pytest

import run_tasks
from cauchy import exitcodes
from cauchy.visualizer import read_events

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HYPES = sorted(glob.glob(os.path.join(REPO, "hypes", "det", "*.json")))
SMALL_YOLO = os.path.join(REPO, "hypes", "det", "yolov3_small_shapes.json")


def tiny_overrides(path: str, data_dir: str) -> list[str]:
    """Two iterations of two 64-pixel images; torchvision's own resize set to the same size."""
    with open(path) as fh:
        h = json.load(fh)
    items = [f"data.data_dir={data_dir}", "data.workers=0", "solver.max_iters=2", "train.batch_size=2",
             "val.batch_size=4", "test.batch_size=4", "logging.progress_bar=false", "solver.display_iter=1"]
    for split in ("train", "val", "test"):
        if h.get(split, {}).get("data_transformer"):
            items.append(f"{split}.data_transformer.input_size=[64,64]")
    if "min_size" in h["network"].get("params", {}):
        items += ["network.params.min_size=64", "network.params.max_size=64"]
    if h["network"]["model_name"].startswith("fasterrcnn"):  # fewer proposals: the box head is most of the cost
        items += ["network.params.rpn_post_nms_top_n_train=100", "network.params.rpn_post_nms_top_n_test=50",
                  "network.params.box_batch_size_per_image=64"]
    return [arg for item in items for arg in ("--set", item)]


def run(path: str, run_dir, data_dir: str, *extra: str) -> int:
    return run_tasks.main(["--hypes", path, "--tmp_dir", str(run_dir), *tiny_overrides(path, data_dir), *extra])


@pytest.mark.slow
@pytest.mark.parametrize("path", HYPES, ids=[os.path.basename(p) for p in HYPES])
def test_two_iterations_of_every_det_hypes(path: str, tmp_path, shapes_dir: str) -> None:
    assert run(path, tmp_path, shapes_dir) == exitcodes.OK
    events = read_events(os.path.join(tmp_path, "metrics.jsonl"))
    assert [e["value"] for e in events if e["name"] == "max_iters"] == [2]
    assert {"loss", "lr"} <= {e["name"] for e in events if e["phase"] == "train"}
    assert {"map50"} <= {e["name"] for e in events if e["phase"] == "val"}
    assert os.path.isfile(os.path.join(tmp_path, "checkpoints", "latest.pth"))


def test_test_phase_writes_coco_detections_and_predict_draws_boxes(tmp_path, shapes_dir: str) -> None:
    coco = ["--set", "data.format=coco", "--set", 'data.params={"image_dir": "JPEGImages"}',
            "--set", "res.score_thresh=0.0"]
    assert run(SMALL_YOLO, tmp_path, shapes_dir, *coco) == exitcodes.OK
    assert run(SMALL_YOLO, tmp_path, shapes_dir, *coco, "--phase", "test") == exitcodes.OK
    with open(os.path.join(tmp_path, "results.json")) as fh:
        results = json.load(fh)
    assert {"map", "map50", "map75", "ar100"} <= set(results["metrics"])
    first = results["predictions"][0]
    assert {"path", "boxes", "scores", "labels", "class_names"} <= set(first)
    with open(os.path.join(tmp_path, "detections.json")) as fh:
        detections = json.load(fh)
    assert detections and {d["category_id"] for d in detections} <= {1, 3, 5, 7}  # the file's own category ids
    assert set(detections[0]) == {"image_id", "category_id", "bbox", "score"}
    image = os.path.join(shapes_dir, "JPEGImages", "000000.jpg")
    assert run(SMALL_YOLO, tmp_path, shapes_dir, *coco, "--phase", "predict", "--input", image) == exitcodes.OK
    assert os.path.isfile(os.path.join(tmp_path, "predictions", "000000.jpg"))


def test_bad_det_hypes_is_exit_code_2_naming_the_key(tmp_path, shapes_dir: str, capsys) -> None:
    rc = run(SMALL_YOLO, tmp_path, shapes_dir, "--set", "anchor.anchors=[[1, 2]]")
    assert rc == exitcodes.BAD_INPUT
    assert "anchor.anchors" in capsys.readouterr().err


def test_validation_images_go_to_visdom_and_several_evaluators_to_the_record(tmp_path, shapes_dir: str,
                                                                             free_port: int) -> None:
    """A run with a Visdom port shows validation images (prediction beside ground truth) in its env;
    metrics.jsonl keeps every evaluator's scalars under its name and holds no pictures."""
    from services.visdom_server import start_visdom

    base_url = "/visdom/job7"
    proc = start_visdom(free_port, base_url, str(tmp_path / "env"), str(tmp_path / "visdom.log"))
    try:
        rc = run(SMALL_YOLO, tmp_path / "run", shapes_dir, "--viz_port", str(free_port), "--viz_base_url", base_url,
                 "--set", 'val.evaluator=["coco","voc"]', "--set", "logging.val_images=2")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert rc == exitcodes.OK
    names = {e["name"] for e in read_events(os.path.join(tmp_path, "run", "metrics.jsonl")) if e["phase"] == "val"}
    assert {"coco/map", "coco/map50", "voc/map50", "voc/map50_07"} <= names
    windows = json.loads((tmp_path / "env" / "main.json").read_text())["jsons"]
    images = {name: win for name, win in windows.items() if name.startswith("val_image_")}
    assert sorted(images) == ["val_image_0", "val_image_1"] and all(w["type"] == "image" for w in images.values())
    assert "prediction | ground truth" in images["val_image_0"]["content"]["caption"]
    assert "coco/map" in windows
    with open(os.path.join(tmp_path, "run", "metrics.jsonl")) as fh:
        assert "val_image" not in fh.read()
