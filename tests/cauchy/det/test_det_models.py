"""Every detector runs forward (train and eval) and one optimisation step on a tiny batch."""
from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou

import cauchy.methods
import cauchy.models  # noqa: F401
from cauchy.hypes import HypesError
from cauchy.methods.det import collate_detection
from cauchy.models.det.yolov3 import COCO_ANCHORS, YOLOv3Loss, check_anchors, decode
from cauchy.registry import METHODS, MODELS

SMALL = {"min_size": 64, "max_size": 64}
FEW_ROIS = {"rpn_pre_nms_top_n_train": 200, "rpn_post_nms_top_n_train": 100, "rpn_pre_nms_top_n_test": 100,
            "rpn_post_nms_top_n_test": 50, "box_batch_size_per_image": 64}  # the box head is most of the cost
DETECTORS = [  # (method, model, params)
    ("faster_rcnn", "fasterrcnn_resnet50_fpn", {**SMALL, **FEW_ROIS}),
    ("faster_rcnn", "fasterrcnn_mobilenet_v3_large_fpn", {**SMALL, **FEW_ROIS}),
    ("retinanet", "retinanet_resnet50_fpn", SMALL),
    ("ssd", "ssdlite320_mobilenet_v3_large", {}),
    pytest.param("ssd", "ssd300_vgg16", {}, marks=pytest.mark.slow),
    ("yolov3", "yolov3_small", {}),
    pytest.param("yolov3", "yolov3_darknet53", {}, marks=pytest.mark.slow),
]
ANCHORS = {"anchors": [[[8, 8], [12, 12], [16, 16]], [[20, 20], [24, 24], [28, 28]], [[32, 32], [40, 40], [48, 48]]]}


def tiny_batch() -> dict:
    """Two normalised images of different sizes, one with a crowd box and one with no box at all."""
    samples = [
        {"image": torch.randn(3, 64, 56), "boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0], [30.0, 20.0, 50.0, 60.0]]),
         "labels": torch.tensor([0, 2]), "iscrowd": torch.tensor([False, True]), "difficult": torch.zeros(2, dtype=torch.bool),
         "scale_factor": torch.tensor([0.5, 0.5]), "orig_size": (128, 112), "image_id": 0, "path": "a.jpg"},
        {"image": torch.randn(3, 48, 64), "boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
         "iscrowd": torch.zeros(0, dtype=torch.bool), "difficult": torch.zeros(0, dtype=torch.bool),
         "scale_factor": torch.tensor([1.0, 1.0]), "orig_size": (48, 64), "image_id": 1, "path": "b.jpg"},
    ]
    return collate_detection(samples)


def build(method: str, model: str, params: dict):
    net = MODELS.build(model, num_classes=3, **params)
    anchor = ANCHORS if method == "yolov3" else {}
    return METHODS.build(method, model=net, loss=None, anchor=anchor,
                         res={"score_thresh": 0.0, "nms_iou": 0.5, "max_dets": 7})


@pytest.mark.parametrize("method,model,params", DETECTORS)
def test_forward_and_one_training_step(method: str, model: str, params: dict) -> None:
    torch.manual_seed(0)
    det = build(method, model, params)
    batch = tiny_batch()
    det.train()
    losses = det.forward_train(batch)
    assert set(losses) >= {"loss"} and all(k == "loss" or k.startswith("loss_") for k in losses)
    assert torch.isfinite(losses["loss"])
    optimizer = torch.optim.SGD([p for p in det.parameters() if p.requires_grad], lr=1e-3)
    optimizer.zero_grad()
    losses["loss"].backward()
    optimizer.step()
    det.eval()
    preds = det.predict(batch)
    assert len(preds) == 2
    for pred, (h, w) in zip(preds, [(128, 112), (48, 64)]):
        assert set(pred) == {"boxes", "scores", "labels"}
        assert len(pred["boxes"]) <= 7 and pred["boxes"].shape[1:] == (4,)
        assert bool((pred["labels"] >= 0).all() and (pred["labels"] < 3).all())
        assert bool((pred["boxes"][:, 0::2] <= w).all() and (pred["boxes"][:, 1::2] <= h).all())


def test_collate_pads_to_a_multiple_of_32_and_keeps_sizes() -> None:
    batch = tiny_batch()
    assert batch["image"].shape == (2, 3, 64, 64)
    assert batch["image_sizes"].tolist() == [[64, 56], [48, 64]]
    assert batch["orig_size"].tolist() == [[128, 112], [48, 64]]
    assert bool((batch["image"][0, :, :, 56:] == 0).all())
    assert [len(b) for b in batch["boxes"]] == [2, 0]


def test_yolo_loss_assigns_each_box_to_its_best_anchor_and_learns_it() -> None:
    torch.manual_seed(0)
    det = build("yolov3", "yolov3_small", {})
    batch = tiny_batch()
    optimizer = torch.optim.Adam(det.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        losses = det.forward_train(batch)
        first = first if first is not None else float(losses["loss"].detach())
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
    assert float(losses["loss"].detach()) < 0.3 * first
    det.eval()
    det.score_thresh = 0.3
    pred = det.predict(batch)[0]
    assert len(pred["boxes"]) >= 1 and int(pred["labels"][0]) == 0
    # the non-crowd box [4, 6, 30, 40] at scale 0.5 is [8, 12, 60, 80] in original pixels
    assert float(box_iou(pred["boxes"][:1], torch.tensor([[8.0, 12.0, 60.0, 80.0]]))) > 0.6


def test_yolo_decode_respects_thresholds() -> None:
    anchors = check_anchors(COCO_ANCHORS)
    outs = [torch.randn(2, 3, s, s, 5 + 4) for s in (8, 4, 2)]
    dets = decode(outs, anchors, score_thresh=0.0, nms_iou=0.5, max_dets=5)
    assert all(len(d["boxes"]) <= 5 for d in dets)
    assert all(len(d["boxes"]) == 0 for d in decode(outs, anchors, score_thresh=1.0, nms_iou=0.5, max_dets=5))


def test_bad_settings_name_their_key() -> None:
    net = MODELS.build("yolov3_small", num_classes=3)
    with pytest.raises(HypesError, match=r"^anchor\.anchors"):
        METHODS.build("yolov3", model=net, loss=None, anchor={"anchors": [[1, 2]]}, res={})
    with pytest.raises(HypesError, match=r"^anchor\.sizes"):
        METHODS.build("yolov3", model=net, loss=None, anchor={"sizes": []}, res={})
    with pytest.raises(HypesError, match=r"^network\.model_name"):
        METHODS.build("faster_rcnn", model=net, loss=None, anchor={}, res={})
    with pytest.raises(HypesError, match=r"^anchor\.anchors"):
        build("faster_rcnn", "fasterrcnn_mobilenet_v3_large_fpn", SMALL).__init__(
            MODELS.build("fasterrcnn_mobilenet_v3_large_fpn", num_classes=3), anchor=ANCHORS)
    assert isinstance(YOLOv3Loss(), torch.nn.Module)


def test_yolo_loss_on_a_batch_without_boxes_only_learns_background() -> None:
    det = build("yolov3", "yolov3_small", {})
    batch = tiny_batch()
    batch["boxes"], batch["labels"] = [torch.zeros(0, 4)] * 2, [torch.zeros(0, dtype=torch.int64)] * 2
    batch["iscrowd"] = [torch.zeros(0, dtype=torch.bool)] * 2
    losses = det.forward_train(batch)
    losses["loss"].backward()
    values = {k: float(v.detach()) for k, v in losses.items()}
    assert values["loss_obj"] > 0 and values["loss_xy"] == values["loss_wh"] == values["loss_cls"] == 0.0
