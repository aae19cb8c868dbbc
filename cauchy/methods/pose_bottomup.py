"""Bottom-up pose estimation with OpenPose: every person of the whole image at once.

Training: for each image, Gaussian heatmaps (the maximum over its people, ``target.sigma`` in output
cells) and part affinity fields (``target.paf_width``) along the data's skeleton, both at the
model's stride; the loss is the mean squared error of every stage's heatmaps and fields (the
paper's intermediate supervision), ``loss_heatmap`` and ``loss_paf`` summed over stages.
Prediction: the last stage's outputs (averaged, with ``target.flip_test``, with those of the mirrored
image mirrored back: heatmaps with their left/right joints swapped, each limb's field taken from its
mirror limb with the x component negated), decoded by the paper's greedy grouping
(:mod:`cauchy.models.pose.paf_grouping`, thresholds in ``target.grouping``), each person mapped back
to original pixels through the sample's ``affine``: ``{"keypoints" [P, K, 3] (x, y, score),
"scores" [P]}`` per image.

The limbs are the dataset's ``skeleton`` (metadata): the model's ``num_limbs`` (network.params) must
match it, which :meth:`OpenPoseMethod.use_metadata` checks before anything trains.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cauchy.datasets.pose.heatmaps import gaussian_heatmaps
from cauchy.datasets.pose.paf import part_affinity_fields
from cauchy.hypes import HypesError
from cauchy.methods.det import collate_detection
from cauchy.methods.pose import PoseMethod, points_to_original
from cauchy.models.pose.openpose import OpenPose
from cauchy.models.pose.paf_grouping import GroupingParams, group_people
from cauchy.registry import LOSSES, METHODS
from cauchy.schema import FreeDict, boolean, number, validate

TARGET_SCHEMA = {
    "sigma": number(1.0, gt=0),
    "paf_width": number(1.0, gt=0),
    "flip_test": boolean(True),
    "grouping": FreeDict({}),
}
GROUPING_KEYS = [f.name for f in fields(GroupingParams)]


def grouping_params(doc: dict[str, Any]) -> GroupingParams:
    """``target.grouping``: any of :class:`GroupingParams`' thresholds, the paper's by default."""
    unknown = sorted(set(doc) - set(GROUPING_KEYS))
    if unknown:
        raise HypesError(f"target.grouping.{unknown[0]}", "unknown key; valid keys here: " + ", ".join(GROUPING_KEYS))
    bad = [k for k, v in doc.items() if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0]
    if bad:
        raise HypesError(f"target.grouping.{bad[0]}", f"expected a number >= 0, got {doc[bad[0]]!r}")
    return GroupingParams(**doc)


@LOSSES.register("openpose_mse")
class OpenPoseLoss(nn.Module):
    """Mean squared error of every stage's heatmaps and fields against the targets, summed over
    stages; ``heatmap_weight`` and ``paf_weight`` scale the two parts."""

    def __init__(self, heatmap_weight: float = 1.0, paf_weight: float = 1.0) -> None:
        super().__init__()
        self.heatmap_weight, self.paf_weight = heatmap_weight, paf_weight

    def forward(self, stages: list[tuple[torch.Tensor, torch.Tensor]], pafs: torch.Tensor,
                heatmaps: torch.Tensor) -> dict[str, torch.Tensor]:
        loss_paf = sum(F.mse_loss(p, pafs) for p, _ in stages) * self.paf_weight
        loss_heatmap = sum(F.mse_loss(h, heatmaps) for _, h in stages) * self.heatmap_weight
        return {"loss": loss_paf + loss_heatmap, "loss_paf": loss_paf, "loss_heatmap": loss_heatmap}


def mirror_limbs(limbs: list[tuple[int, int]], index: torch.Tensor) -> tuple[list[int], list[float]]:
    """What a mirror image does to the fields: for each field channel (``2c``, ``2c + 1``: limb ``c``'s x
    and y), the channel of the mirror image's output that holds it and the sign to apply. Limb (a, b)
    appears mirrored as limb (index[a], index[b]) with its x component negated; listed the other way
    round, (index[b], index[a]), both components flip sign. A limb with no mirror among ``limbs`` keeps
    its own channels with sign 0 (the mirror pass adds nothing to it)."""
    where = {limb: c for c, limb in enumerate(limbs)}
    channels, signs = [], []
    for c, (a, b) in enumerate(limbs):
        fa, fb = int(index[a]), int(index[b])
        mirror, sign = ((where[(fa, fb)], 1.0) if (fa, fb) in where else
                        (where[(fb, fa)], -1.0) if (fb, fa) in where else (c, 0.0))
        channels += [2 * mirror, 2 * mirror + 1]
        signs += [-sign, sign]
    return channels, signs


def to_original(keypoints: torch.Tensor, affine: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``keypoints`` [..., 3] (x, y in the sample's pixels, score) in original pixels, through the
    inverse of the sample's ``affine`` (original -> sample pixels)."""
    xy = points_to_original(keypoints[..., :2], affine)
    return torch.cat([xy.to(keypoints.dtype), keypoints[..., 2:]], dim=-1)


def boxes_to_original(boxes: torch.Tensor, affine: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``boxes`` [N, 4] xyxy in the sample's pixels as the boxes around their mapped corners in original
    pixels (the same boxes when the affine only scales, shifts and mirrors)."""
    corners = boxes[:, [0, 1, 2, 1, 0, 3, 2, 3]].reshape(-1, 4, 2)
    mapped = to_original(torch.cat([corners, corners.new_zeros(*corners.shape[:2], 1)], dim=-1), affine)[..., :2]
    return torch.cat([mapped.amin(dim=1), mapped.amax(dim=1)], dim=1)


class BottomUpPose(PoseMethod):
    """What the methods on bottom-up samples (``data.params.samples: "image"``: whole images, all
    their people) share: images of different sizes batched as detection batches them (zero-padded,
    per-person fields as lists), and every annotated person of the image as its truth."""

    collate = staticmethod(collate_detection)
    padded_images = True

    @staticmethod
    def affine(batch: dict[str, Any], index: int) -> torch.Tensor:
        """Image ``index``'s map from original to input pixels: the sample's ``affine`` record, or, for
        a bare image of the predict phase (no reader started a record), its resize's ``scale_factor``."""
        if "affine" in batch:
            return batch["affine"][index].cpu()
        sx, sy = batch["scale_factor"][index].tolist()
        return torch.tensor([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)

    def truth(self, batch: dict[str, Any], index: int) -> dict[str, Any] | None:
        """The image's people as annotated, crowds left out (original pixels; the third value is the
        visibility)."""
        if "truth" not in batch:
            return None
        truth = batch["truth"][index]
        people = np.asarray(truth["keypoints"], dtype=np.float32)[~np.asarray(truth["iscrowd"], dtype=bool)]
        return {"keypoints": torch.from_numpy(people), "scores": torch.ones(len(people))}


@METHODS.register("openpose")
class OpenPoseMethod(BottomUpPose):
    """OpenPose's targets, loss and grouping over an :class:`OpenPose` model."""

    def __init__(self, model: nn.Module, loss: nn.Module | None = None, target: dict[str, Any] | None = None) -> None:
        if not isinstance(model, OpenPose):
            raise HypesError("network.model_name", f"method openpose needs an OpenPose model (openpose_small, "
                                                   f"openpose_vgg19), got {type(model).__name__}")
        target = validate(TARGET_SCHEMA, target or {}, "target")
        super().__init__(model, loss if loss is not None else OpenPoseLoss())
        self.sigma, self.paf_width, self.flip_test = target["sigma"], target["paf_width"], target["flip_test"]
        self.grouping = grouping_params(target["grouping"])
        self.limbs: list[tuple[int, int]] = []
        self.mirror: tuple[list[int], torch.Tensor] | None = None  # see mirror_limbs

    def use_metadata(self, metadata: dict[str, Any]) -> None:
        """Takes the limbs from the dataset's ``skeleton``; the model must have a field per limb."""
        super().use_metadata(metadata)
        limbs = [(int(a), int(b)) for a, b in metadata["skeleton"]]
        if len(limbs) != self.model.num_limbs:
            raise HypesError("network.params.num_limbs", f"is {self.model.num_limbs} but the data's skeleton has "
                                                         f"{len(limbs)} limbs")
        self.limbs = limbs
        if self.flip_index is not None:
            channels, signs = mirror_limbs(limbs, self.flip_index)
            self.mirror = channels, torch.tensor(signs)

    def targets(self, batch: dict[str, Any], grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Part affinity fields [B, 2L, h, w] and heatmaps [B, K, h, w] of a batch on ``grid``."""
        if not self.limbs:
            raise RuntimeError("openpose: use_metadata (the data's skeleton) must come before training")
        device, stride = batch["image"].device, self.model.stride
        pafs, heatmaps = [], []
        for kps in batch["keypoints"]:
            kps = torch.as_tensor(kps, dtype=torch.float32, device=device).reshape(-1, self.model.num_keypoints, 3)
            maps, _ = gaussian_heatmaps(kps, grid, stride, self.sigma)
            heatmaps.append(maps.amax(dim=0) if len(kps) else maps.new_zeros(self.model.num_keypoints, *grid))
            pafs.append(torch.from_numpy(part_affinity_fields(kps.cpu().numpy(), self.limbs, grid, stride,
                                                              self.paf_width)))
        return torch.stack(pafs).to(device), torch.stack(heatmaps)

    def forward_train(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        stages = self.model(batch["image"])
        pafs, heatmaps = self.targets(batch, tuple(stages[-1][0].shape[-2:]))
        return self.loss(stages, pafs, heatmaps)

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        pafs, heatmaps = self.model(batch["image"])[-1]
        if self.flip_test:
            pafs, heatmaps = self.with_mirror(batch["image"], pafs.float(), heatmaps.float())
        return self.decode(pafs, heatmaps, batch)

    def with_mirror(self, images: torch.Tensor, pafs: torch.Tensor, heatmaps: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The flip test: ``pafs`` and ``heatmaps`` of ``images`` averaged with those the model gives for
        the mirrored images, mirrored back (heatmaps' left/right joints swapped, fields per
        :func:`mirror_limbs`). The images are padded to whole cells first, so that a mirrored cell is
        a cell."""
        if self.mirror is None or self.flip_index is None:
            raise RuntimeError("openpose: use_metadata (the data's skeleton and left/right pairs) must come "
                               "before the flip test")
        stride, (h, w) = self.model.stride, heatmaps.shape[-2:]
        height, width = images.shape[-2:]
        padded = F.pad(images, (0, -width % stride, 0, -height % stride))
        mirrored_pafs, mirrored_heatmaps = self.model(padded.flip(-1))[-1]
        mirrored_heatmaps = mirrored_heatmaps.float().flip(-1)[:, self.flip_index.to(images.device), :h, :w]
        channels, signs = self.mirror
        mirrored_pafs = mirrored_pafs.float().flip(-1)[:, channels, :h, :w] * signs.to(images.device)[:, None, None]
        own = (signs == 0).to(images.device)[:, None, None]  # limbs without a mirror keep their own field
        return (torch.where(own, pafs, (pafs + mirrored_pafs) / 2), (heatmaps + mirrored_heatmaps) / 2)

    def decode(self, pafs: torch.Tensor, heatmaps: torch.Tensor, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """The people of each image of ``batch`` from its fields and heatmaps, in original pixels."""
        stride, out = self.model.stride, []
        for i, (h, w) in enumerate(batch["image_sizes"].tolist()):
            gh, gw = -(-h // stride), -(-w // stride)  # the cells that cover the image, not its padding
            people, scores = group_people(heatmaps[i, :, :gh, :gw].float().cpu().numpy(),
                                          pafs[i, :, :gh, :gw].float().cpu().numpy(), self.limbs, self.grouping)
            people = torch.from_numpy(people)
            people[..., :2] *= stride
            found = people[..., 2] > 0
            people = to_original(people, self.affine(batch, i))
            people[~found] = 0
            out.append({"keypoints": people, "scores": torch.from_numpy(scores)})
        return out
