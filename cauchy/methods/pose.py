"""Top-down pose estimation: one method for every heatmap model (SimpleBaseline, CPM).

Training: Gaussian heatmaps of the sample's person (``target.sigma`` heatmap pixels) against the
model's, a per-keypoint weighted MSE (unlabelled and cropped-away joints weigh 0), plus the same for
every earlier stage of a model with intermediate supervision (``loss_stage<i>``). Prediction: the
heatmaps (averaged with those of the mirrored image, mirrored back with the left/right joints
swapped, when ``target.flip_test``), each keypoint at its sub-pixel peak, mapped back to original
pixels through the inverse of the sample's ``affine``: ``{"keypoints": [1, K, 3] (x, y, peak),
"scores": [1]}`` per sample, the score being the mean peak of the keypoints above
``target.score_threshold`` (SimpleBaseline's rescoring with a ground-truth box of score 1).
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from cauchy import rundir
from cauchy.datasets.pose.heatmaps import decode_heatmaps, gaussian_heatmaps
from cauchy.datasets.pose.skeleton import flip_index, flip_pairs_from_names
from cauchy.hypes import HypesError
from cauchy.methods.base import Method
from cauchy.metrics.base import Evaluator
from cauchy.metrics.pose import OKSEvaluator
from cauchy.models.pose.base import HeatmapPoseModel
from cauchy.registry import METHODS

TARGET_DEFAULTS = {"sigma": 2.0, "flip_test": True, "score_threshold": 0.2}
SIDE_COLOURS = {"left": (40, 110, 255), "right": (255, 70, 40), "": (60, 220, 90)}  # RGB


def target_settings(target: dict[str, Any]) -> dict[str, Any]:
    """The ``target`` section with defaults; an unknown key or a bad value is a HypesError naming it."""
    unknown = sorted(set(target) - set(TARGET_DEFAULTS))
    if unknown:
        raise HypesError(f"target.{unknown[0]}", f"unknown key; valid keys here: {', '.join(TARGET_DEFAULTS)}")
    out = {**TARGET_DEFAULTS, **target}
    if not isinstance(out["sigma"], (int, float)) or out["sigma"] <= 0:
        raise HypesError("target.sigma", f"expected a number > 0 (heatmap pixels), got {out['sigma']!r}")
    if not isinstance(out["flip_test"], bool):
        raise HypesError("target.flip_test", f"expected true or false, got {out['flip_test']!r}")
    if not isinstance(out["score_threshold"], (int, float)):
        raise HypesError("target.score_threshold", f"expected a number, got {out['score_threshold']!r}")
    return out


def weighted_mse(predicted: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over keypoints of ``weight * mean squared error of its heatmap`` ([B, K, h, w], [B, K])."""
    per_keypoint = ((predicted.float() - target) ** 2).mean(dim=(-2, -1))
    return (per_keypoint * weights).mean()


def side(name: str) -> str:
    lowered = name.lower()
    return "left" if "left" in lowered or lowered.startswith("l_") else \
        "right" if "right" in lowered or lowered.startswith("r_") else ""


def draw_people(image: np.ndarray, keypoints: np.ndarray, skeleton: list[list[int]], names: list[str],
                threshold: float) -> np.ndarray:
    """``image`` (RGB) with each person's limbs and joints drawn, left side blue, right side red;
    joints whose third value (score or visibility) is not above ``threshold`` are left out."""
    out = np.ascontiguousarray(image).copy()
    thickness = max(1, round(max(out.shape[:2]) / 200))
    for person in keypoints:
        shown = person[:, 2] > threshold
        for a, b in skeleton:
            if shown[a] and shown[b]:
                colour = SIDE_COLOURS[side(names[a]) if side(names[a]) == side(names[b]) else ""]
                cv2.line(out, (round(person[a, 0] - 0.5), round(person[a, 1] - 0.5)),
                         (round(person[b, 0] - 0.5), round(person[b, 1] - 0.5)), colour, thickness, cv2.LINE_AA)
        for j in np.flatnonzero(shown):
            cv2.circle(out, (round(person[j, 0] - 0.5), round(person[j, 1] - 0.5)), thickness + 1,
                       SIDE_COLOURS[side(names[j])], -1, cv2.LINE_AA)
    return out


def unflip(heatmaps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Heatmaps of a mirrored image as those of the image itself: mirrored back, left/right swapped."""
    return heatmaps.flip(-1)[:, index.to(heatmaps.device)]


def points_to_original(xy: torch.Tensor, affine: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Points ``xy`` [..., N, 2] in input pixels, in original pixels (float64): through the inverse of
    ``affine`` [..., 3, 3] (original -> input pixels), one per sample of a batch or one for all."""
    back = torch.linalg.inv(torch.as_tensor(affine, dtype=torch.float64, device=xy.device))
    return xy.double() @ back[..., :2, :2].transpose(-1, -2) + back[..., None, :2, 2]


def to_original(heatmaps: torch.Tensor, affine: torch.Tensor, stride: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(xy [B, K, 2] in original pixels, peaks [B, K])`` of heatmaps [B, K, h, w] of inputs whose
    ``affine`` [B, 3, 3] maps original pixels to input pixels."""
    xy, peaks = decode_heatmaps(heatmaps, stride)
    return points_to_original(xy, affine), peaks


class PoseMethod(Method):
    """What the pose methods share: the dataset's skeleton metadata, drawing, description and the
    keypoint results file of the test phase."""

    default_evaluator = "coco_keypoints"

    def __init__(self, model: nn.Module, loss: nn.Module | None = None) -> None:
        super().__init__(model, loss)
        self.keypoint_names: list[str] = []
        self.skeleton: list[list[int]] = []
        self.flip_index: torch.Tensor | None = None

    def use_metadata(self, metadata: dict[str, Any]) -> None:
        """Keypoint names, skeleton and left/right pairs of the train set (pairs from the names when
        an old checkpoint recorded none)."""
        self.keypoint_names = list(metadata.get("keypoint_names", []))
        self.skeleton = [list(pair) for pair in metadata.get("skeleton", [])]
        pairs = metadata.get("flip_pairs", flip_pairs_from_names(self.keypoint_names))
        self.flip_index = torch.as_tensor(flip_index(len(self.keypoint_names), pairs)) if self.keypoint_names else None

    def describe(self, prediction: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
        """Each person's score and keypoints by name, ``{name: [x, y, score]}`` in original pixels."""
        keypoints, scores = prediction["keypoints"].tolist(), prediction["scores"].tolist()
        return {"people": [{"score": score, "keypoints": dict(zip(class_names, person))}
                           for person, score in zip(keypoints, scores)]}

    def draw(self, image: np.ndarray, prediction: dict[str, Any], class_names: list[str]) -> np.ndarray:
        """Limbs and joints of each person whose peak (or, for the truth, visibility) is above 0.1."""
        return draw_people(image, prediction["keypoints"].detach().cpu().numpy(), self.skeleton, class_names, 0.1)

    def test_files(self, evaluator: Evaluator) -> dict[str, Any]:
        """``keypoints.json``: the predictions in COCO's keypoint results format (the first OKS evaluator's)."""
        found = next((part for part in evaluator.parts() if isinstance(part, OKSEvaluator)), None)
        return {} if found is None else {rundir.KEYPOINT_RESULTS: found.results()}


class TopDownPose(PoseMethod):
    """``target``: ``sigma`` (Gaussian sigma in heatmap pixels, 2), ``flip_test`` (true) and
    ``score_threshold`` (0.2). Samples are person crops (``top_down_affine``)."""

    def __init__(self, model: nn.Module, loss: nn.Module | None = None, target: dict[str, Any] | None = None) -> None:
        if not isinstance(model, HeatmapPoseModel):
            raise HypesError("network.model_name", f"a top-down pose method needs a heatmap pose model, got "
                                                   f"{type(model).__name__}")
        super().__init__(model, loss)
        self.target = target_settings(target or {})

    def heatmaps(self, images: torch.Tensor) -> dict[str, Any]:
        out = self.model(images)
        h, w = out["heatmaps"].shape[-2:]
        stride = self.model.stride
        if (h * stride, w * stride) != tuple(images.shape[-2:]):
            raise HypesError("train.aug_trans.top_down_affine.size",
                             f"the input {images.shape[-2]}x{images.shape[-1]} gives {h}x{w} heatmaps, not 1/{stride} "
                             f"of it: use a size both of whose sides are multiples of the model's total stride")
        return out

    def forward_train(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = self.heatmaps(batch["image"])
        keypoints = batch["keypoints"][:, 0]  # one person per sample
        target, weights = gaussian_heatmaps(keypoints, tuple(out["heatmaps"].shape[-2:]), self.model.stride,
                                            self.target["sigma"])
        loss = self.loss if self.loss is not None else weighted_mse
        losses = {"loss_heatmap": loss(out["heatmaps"], target, weights)}
        for i, stage in enumerate(out.get("stages", []), start=1):
            losses[f"loss_stage{i}"] = loss(stage, target, weights)
        return {"loss": sum(losses.values()), **losses}

    def _flip_index(self, batch: dict[str, Any]) -> torch.Tensor | None:
        if "flip_index" in batch:
            return batch["flip_index"][0]
        return self.flip_index

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        images = batch["image"]
        heatmaps = self.heatmaps(images)["heatmaps"].float()
        index = self._flip_index(batch)
        if self.target["flip_test"] and index is not None:
            heatmaps = (heatmaps + unflip(self.model(images.flip(-1))["heatmaps"].float(), index)) / 2
        return self.from_exported([heatmaps], batch)

    def from_exported(self, outputs: list[torch.Tensor], batch: dict[str, Any]) -> list[dict[str, Any]]:
        """``outputs``: the heatmaps ``[B, K, H/s, W/s]`` (flip test included); one person per crop."""
        heatmaps = outputs[0]
        xy, peaks = to_original(heatmaps, batch["affine"], self.model.stride)
        out = []
        for i in range(len(heatmaps)):
            strong = peaks[i] > self.target["score_threshold"]
            score = peaks[i][strong].mean() if strong.any() else peaks[i].new_zeros(())
            keypoints = torch.cat([xy[i].float(), peaks[i][:, None]], dim=1)[None]
            out.append({"keypoints": keypoints, "scores": score.reshape(1)})
        return out

    def truth(self, batch: dict[str, Any], index: int) -> dict[str, Any] | None:
        """The sample's person as annotated (original pixels; the third value is the visibility)."""
        if "truth" not in batch:
            return None
        person = batch["truth"][index]["keypoints"][int(batch["person"][index])]
        return {"keypoints": torch.as_tensor(person, dtype=torch.float32)[None], "scores": torch.ones(1)}


METHODS.register("top_down_pose")(TopDownPose)
