"""OpenPose's and Keypoint R-CNN's models as registered: shapes, stages, and that they train."""
from __future__ import annotations

import pytest
import torch

import cauchy.methods  # noqa: F401  (registers the methods)
from cauchy.hypes import HypesError
from cauchy.models.pose.openpose import OpenPose
from cauchy.registry import METHODS, MODELS


def test_openpose_small_gives_every_stage_at_its_stride() -> None:
    model = MODELS.get("openpose_small")(num_classes=5, num_limbs=4, stages=2, width=16, stem_widths=(8, 16))
    assert isinstance(model, OpenPose) and model.stride == 4
    out = model(torch.randn(2, 3, 64, 48))
    assert len(out) == 2
    for pafs, heatmaps in out:
        assert pafs.shape == (2, 8, 16, 12) and heatmaps.shape == (2, 5, 16, 12)


def test_openpose_vgg19_is_the_papers_network() -> None:
    model = MODELS.get("openpose_vgg19")(num_classes=3, num_limbs=2, stages=2)
    assert model.stride == 8 and len(model.pafs) == 2
    assert model.pafs[1][0].kernel_size == (7, 7) and model.pafs[0][0].kernel_size == (3, 3)
    pafs, heatmaps = model(torch.randn(1, 3, 64, 64))[-1]
    assert pafs.shape == (1, 4, 8, 8) and heatmaps.shape == (1, 3, 8, 8)


@pytest.mark.parametrize("name, params", [
    ("openpose_small", {"num_limbs": 4, "width": 16, "stem_widths": (8, 16)}), ("cpm", {"channels": 16, "features": 16}),
    ("simple_baseline", {"backbone": "small", "widths": (8, 16, 16, 16), "deconv_channels": 16})])
def test_untrained_heatmap_and_field_outputs_start_near_zero(name: str, params: dict) -> None:
    """The targets are nearly all zero: outputs that start at the default initialisation's size (a few
    tenths) kept OpenPose-small at the all-zero loss for hundreds of iterations, so every pose model's
    output convolution starts near zero."""
    torch.manual_seed(0)
    out = MODELS.get(name)(num_classes=5, **params).eval()(torch.randn(2, 3, 64, 64))
    tensors = [t for stage in out for t in stage] if isinstance(out, list) else [out["heatmaps"], *out.get("stages", [])]
    assert max(float(t.abs().max()) for t in tensors) < 0.05


def test_openpose_refuses_a_model_with_nothing_to_predict() -> None:
    with pytest.raises(ValueError, match="num_limbs"):
        MODELS.get("openpose_small")(num_classes=5, num_limbs=0)
    with pytest.raises(ValueError, match="downsample"):
        MODELS.get("openpose_small")(num_classes=5, num_limbs=2, downsample=4)


@pytest.mark.slow
def test_keypoint_rcnn_small_trains_and_gives_keypoints_per_person() -> None:
    torch.manual_seed(0)
    model = MODELS.get("keypointrcnn_mobilenet_v3_large_fpn")(num_classes=6, min_size=128, max_size=128)
    assert model.net.roi_heads.keypoint_predictor.kps_score_lowres.out_channels == 6
    images = [torch.rand(3, 128, 96)]
    keypoints = torch.tensor([[[20.0, 20, 2], [30, 30, 2], [25, 50, 1], [20, 80, 2], [40, 80, 2], [0, 0, 0]]])
    targets = [{"boxes": torch.tensor([[10.0, 10, 50, 90]]), "labels": torch.tensor([0]), "keypoints": keypoints}]
    model.train()
    losses = model(images, targets)
    assert {"loss_keypoint", "loss_classifier"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    model.set_inference(0.0, 0.5, 10)
    with torch.no_grad():
        (out,) = model(images)
    assert out["keypoints"].shape[1:] == (6, 3) and len(out["keypoints"]) == len(out["boxes"])
    assert (out["labels"] == 0).all()


def test_keypoint_rcnn_method_names_what_does_not_fit() -> None:
    rcnn = MODELS.get("keypointrcnn_mobilenet_v3_large_fpn")(num_classes=4, min_size=64, max_size=64)
    build = METHODS.get("keypoint_rcnn")
    with pytest.raises(HypesError, match=r"^network\.model_name: method keypoint_rcnn needs a Keypoint R-CNN"):
        build(model=MODELS.get("fasterrcnn_mobilenet_v3_large_fpn")(num_classes=1), loss=None)
    with pytest.raises(HypesError, match=r"^target\.sigma: Keypoint R-CNN takes no target settings"):
        build(model=rcnn, loss=None, target={"sigma": 2})
    with pytest.raises(HypesError, match=r"^loss\.loss_type: Keypoint R-CNN computes its own losses"):
        build(model=rcnn, loss=torch.nn.MSELoss())
    assert build(model=rcnn, loss=None, target={}).default_evaluator == "coco_keypoints"
