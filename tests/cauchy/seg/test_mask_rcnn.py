"""Mask R-CNN: mask AP equal to pycocotools on the same predictions, and the hypes training a few
iterations, testing (COCO results with RLE masks) and predicting through run_tasks.py."""
from __future__ import annotations

import glob
import json
import os

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

import cauchy.datasets
import cauchy.metrics  # noqa: F401  (registers the evaluators)
import run_tasks
from cauchy import exitcodes, rundir
from cauchy.registry import DATASETS, EVALUATORS
from cauchy.visualizer import read_events

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HYPES = sorted(glob.glob(os.path.join(REPO, "hypes", "seg", "mask_rcnn_*.json")))
SMALL = os.path.join(REPO, "hypes", "seg", "mask_rcnn_mobilenetv3fpn_shapes.json")


def random_mask(gen: np.random.Generator, h: int, w: int, side: int) -> np.ndarray:
    """A filled ``side`` x ``side`` square (areas 32^2 and 96^2 sit on COCO's range limits) with a random dent."""
    mask = np.zeros((h, w), np.uint8)
    x, y = int(gen.integers(0, w - side + 1)), int(gen.integers(0, h - side + 1))
    mask[y:y + side, x:x + side] = 1
    if gen.random() < 0.5:
        mask[y:y + side // 3, x:x + side // 3] = 0
    return mask


def write_instances(root: str, gen: np.random.Generator) -> None:
    os.makedirs(os.path.join(root, "annotations"))
    os.makedirs(os.path.join(root, "val"))
    images, annotations = [], []
    for image_id in range(1, 7):
        h, w = int(gen.integers(120, 200)), int(gen.integers(120, 200))
        cv2.imwrite(os.path.join(root, "val", f"{image_id}.png"), np.zeros((h, w, 3), np.uint8))
        images.append({"id": image_id, "file_name": f"{image_id}.png", "height": h, "width": w})
        for _ in range(int(gen.integers(1, 5))):
            mask = random_mask(gen, h, w, int(gen.choice([8, 20, 32, 33, 60, 96, 100])))
            encoded = mask_utils.encode(np.asfortranarray(mask))
            x, y, bw, bh = (float(v) for v in mask_utils.toBbox(encoded))
            if gen.random() < 0.5:  # polygon of the square's outline, else compressed RLE
                segmentation = [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]
            else:
                segmentation = {"size": [h, w], "counts": encoded["counts"].decode()}
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(gen.choice([2, 9])),
                                "bbox": [x, y, bw, bh], "area": float(mask_utils.area(encoded)),
                                "segmentation": segmentation, "iscrowd": int(gen.random() < 0.1)})
    doc = {"images": images, "annotations": annotations, "categories": [{"id": 2, "name": "a"}, {"id": 9, "name": "b"}]}
    with open(os.path.join(root, "annotations", "instances_val.json"), "w") as fh:
        json.dump(doc, fh)


def predictions_for(gt: dict, gen: np.random.Generator) -> list[dict]:
    """Per image: jittered copies of its objects and random false positives, as Mask R-CNN gives them."""
    out = []
    for image in gt["images"]:
        h, w = image["height"], image["width"]
        masks, labels = [], []
        for ann in [a for a in gt["annotations"] if a["image_id"] == image["id"]]:
            x, y, bw, bh = (int(v) for v in ann["bbox"])
            mask = np.zeros((h, w), bool)
            dx, dy = (int(v) for v in gen.integers(-3, 4, size=2))
            mask[max(0, y + dy):y + dy + bh, max(0, x + dx):x + dx + bw] = True
            masks.append(mask)
            labels.append(0 if ann["category_id"] == 2 else 1)
        for _ in range(int(gen.integers(0, 3))):
            masks.append(random_mask(gen, h, w, int(gen.integers(5, 60))).astype(bool))
            labels.append(int(gen.integers(0, 2)))
        stack = np.array(masks).reshape(-1, h, w)
        boxes = [mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))) for m in stack]
        xyxy = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in boxes], np.float32).reshape(-1, 4)
        out.append({"boxes": torch.from_numpy(xyxy), "scores": torch.from_numpy(gen.random(len(stack))).float(),
                    "labels": torch.tensor(labels, dtype=torch.int64), "masks": torch.from_numpy(stack)})
    return out


def test_mask_and_box_ap_equal_pycocotools_on_the_same_predictions(tmp_path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gen = np.random.default_rng(5)
    root = str(tmp_path)
    write_instances(root, gen)
    dataset = DATASETS.build("coco", root=root, split="val", masks=True)
    ann_file = os.path.join(root, "annotations", "instances_val.json")
    with open(ann_file) as fh:
        predictions = predictions_for(json.load(fh), gen)
    kwargs = dict(num_classes=2, class_names=dataset.class_names, **dataset.metadata)
    masks, boxes = EVALUATORS.build("coco_segm", **kwargs), EVALUATORS.build("coco", **kwargs)
    for evaluator in (masks, boxes):
        evaluator.reset()
        for k in range(len(dataset)):
            item = dataset[k]
            batch = {"orig_size": [item["orig_size"]], "truth": [item["truth"]], "image_id": [item["image_id"]]}
            evaluator.process(batch, [predictions[k]])
    results = masks.results()
    reference = COCO(ann_file)
    for evaluator, iou_type, drop in ((masks, "segm", "bbox"), (boxes, "bbox", "segmentation")):
        mine = evaluator.evaluate().scalars
        run = COCOeval(reference, reference.loadRes([{k: v for k, v in r.items() if k != drop} for r in results]),
                       iouType=iou_type)
        run.evaluate()
        run.accumulate()
        run.summarize()
        names = ("map", "map50", "map75", "map_small", "map_medium", "map_large",
                 "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")
        for name, value in zip(names, run.stats):
            if value >= 0:
                assert abs(mine[name] - value) < 1e-9, (iou_type, name, mine[name], value)
        assert mine["map"] > 0.1
    assert set(results[0]) == {"image_id", "category_id", "bbox", "score", "segmentation"}
    assert results[0]["category_id"] in (2, 9) and isinstance(results[0]["segmentation"]["counts"], str)


def tiny(path: str, data_dir: str) -> list[str]:
    items = [f"data.data_dir={data_dir}", "data.workers=0", "solver.max_iters=3", "train.batch_size=2",
             "val.batch_size=4", "test.batch_size=4", "logging.progress_bar=false", "solver.display_iter=1",
             "res.score_thresh=0.0", "network.params.min_size=64", "network.params.max_size=64",
             "network.params.rpn_post_nms_top_n_train=100", "network.params.rpn_post_nms_top_n_test=50",
             "network.params.box_batch_size_per_image=64"]
    items += [f"{split}.data_transformer.input_size=[64,64]" for split in ("train", "val", "test")]
    return [arg for item in items for arg in ("--set", item)]


def run(path: str, run_dir, data_dir: str, *extra: str) -> int:
    return run_tasks.main(["--hypes", path, "--tmp_dir", str(run_dir), *tiny(path, data_dir), *extra])


@pytest.mark.slow
@pytest.mark.parametrize("path", HYPES, ids=[os.path.basename(p) for p in HYPES])
def test_mask_rcnn_hypes_train_test_and_predict(path: str, tmp_path, seg_shapes: str) -> None:
    assert run(path, tmp_path, seg_shapes) == exitcodes.OK
    events = read_events(os.path.join(tmp_path, rundir.METRICS))
    assert {"loss", "loss_mask", "lr"} <= {e["name"] for e in events if e["phase"] == "train"}
    assert {"coco_segm/map", "coco/map50"} <= {e["name"] for e in events if e["phase"] == "val"}
    if path != SMALL:
        return
    assert run(path, tmp_path, seg_shapes, "--phase", "test") == exitcodes.OK
    with open(os.path.join(tmp_path, rundir.RESULTS)) as fh:
        results = json.load(fh)
    first = results["predictions"][0]
    assert {"boxes", "scores", "labels", "class_names", "masks"} <= set(first)
    assert len(first["masks"]) == len(first["boxes"]) > 0
    assert first["masks"][0]["size"] == list(cv2.imread(first["path"]).shape[:2])  # original pixels
    with open(os.path.join(tmp_path, rundir.DETECTIONS)) as fh:
        detections = json.load(fh)
    assert detections and {d["category_id"] for d in detections} <= {1, 3, 5, 7}
    found = detections[0]["segmentation"]
    assert mask_utils.decode({"size": found["size"], "counts": found["counts"].encode()}).shape[:2] == tuple(
        found["size"])
    image = os.path.join(seg_shapes, "JPEGImages", "000000.jpg")
    assert run(path, tmp_path, seg_shapes, "--phase", "predict", "--input", image) == exitcodes.OK
    with open(os.path.join(tmp_path, rundir.PREDICTIONS)) as fh:
        predicted = json.load(fh)["predictions"][0]
    original = cv2.imread(image)
    assert predicted["masks"] and predicted["masks"][0]["size"] == list(original.shape[:2])  # original pixels
    assert os.path.isfile(os.path.join(tmp_path, rundir.PREDICTIONS_DIR, "000000.jpg"))
