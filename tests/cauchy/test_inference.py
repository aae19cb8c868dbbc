"""cauchy.inference on one small model per task, untrained: a weights entry (hypes, class names, metadata,
sha256) becomes a predictor whose answers are JSON in the original image's pixels. That a deployment
answers what the predict phase writes is tests/services/test_serving.py's."""
from __future__ import annotations

import base64
import io
import json
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from cauchy.build import build_method
from cauchy.files import sha256_file
from cauchy.hypes import load_hypes, resolve_hypes
from cauchy.inference import InferenceError, load_predictor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STICKS = {"keypoint_names": ["head", "left_hand", "right_hand"], "skeleton": [[0, 1], [0, 2]],
          "flip_pairs": [[1, 2]]}


def publish_untrained(tmp_path, hypes_file: str, class_names: list[str], metadata: dict | None = None) -> dict:
    """A weights host entry as ``services.weights_store.publish`` writes it, for a model with random weights."""
    hypes = resolve_hypes(load_hypes(os.path.join(REPO, "hypes", hypes_file)))
    torch.manual_seed(0)
    method = build_method({**hypes, "network": {**hypes["network"], "pretrained": None}}, len(class_names))
    torch.save(method.model.state_dict(), tmp_path / "w.pth")
    return {"name": "w", "file": "w.pth", "sha256": sha256_file(tmp_path / "w.pth"), "class_names": class_names,
            "hypes": hypes, "metadata": metadata or {}}


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_detection_boxes_are_in_original_pixels(tmp_path):
    entry = publish_untrained(tmp_path, "det/yolov3_small_shapes.json", ["circle", "square"])
    entry["hypes"]["res"] = {"score_thresh": 0.0, "nms_iou": 0.5, "max_dets": 20}  # untrained: keep some boxes
    predictor = load_predictor(entry, str(tmp_path))
    images = [image(90, 300), image(200, 120)]
    predictions = predictor.predict([predictor.sample(im, f"{i}.jpg") for i, im in enumerate(images)])
    for im, prediction in zip(images, predictions):
        answer = predictor.answer(prediction, "x.jpg", im)
        assert set(answer) >= {"boxes", "scores", "labels", "class_names", "drawn"} and answer["boxes"]
        boxes = np.array(answer["boxes"])
        assert (boxes >= 0).all() and (boxes[:, 2] <= im.shape[1]).all() and (boxes[:, 3] <= im.shape[0]).all()
        drawn = cv2.imdecode(np.frombuffer(base64.b64decode(answer["drawn"]), np.uint8), cv2.IMREAD_COLOR)
        assert drawn.shape == im.shape
    json.dumps(answer)


def test_segmentation_answers_a_png_mask_of_the_original_size_and_class_areas(tmp_path):
    classes = ["background", "circle", "square"]
    predictor = load_predictor(publish_untrained(tmp_path, "seg/tiny_unet_shapes.json", classes), str(tmp_path))
    im = image(70, 95)
    answer = predictor.answer(predictor.predict([predictor.sample(im, "a.png")])[0], "a.png")
    mask = np.array(Image.open(io.BytesIO(base64.b64decode(answer["files"]["a_mask.png"]))))  # class indices
    assert mask.shape == (70, 95) and answer["size"] == [70, 95]
    assert sum(answer["pixels"].values()) == 70 * 95 and set(answer["pixels"]) <= set(classes)


def test_pose_answers_named_keypoints_with_scores(tmp_path):
    entry = publish_untrained(tmp_path, "pose/simple_baseline_small_sticks.json", STICKS["keypoint_names"], STICKS)
    predictor = load_predictor(entry, str(tmp_path))
    im = image(120, 80)
    answer = predictor.answer(predictor.predict([predictor.sample(im, "p.png")])[0], "p.png")
    person = answer["people"][0]
    assert set(person["keypoints"]) == set(STICKS["keypoint_names"])
    for x, y, _score in person["keypoints"].values():  # the crop is the whole image widened by 1.25
        assert -10 <= x <= 90 and -15 <= y <= 135


def test_an_entry_without_hypes_or_with_another_file_is_refused(tmp_path):
    entry = publish_untrained(tmp_path, "cls/image_classifier_smallcnn_digits.json", list("0123456789"))
    with pytest.raises(InferenceError, match="without their hypes"):
        load_predictor({**entry, "hypes": None}, str(tmp_path))
    (tmp_path / "w.pth").write_bytes(b"changed")
    with pytest.raises(InferenceError, match="sha256"):
        load_predictor(entry, str(tmp_path))
