"""YOLOv3: Darknet backbone, the three-scale head with its upsampling path, anchor assignment,
the loss and decoding with NMS (Redmon & Farhadi, 2018).

The model only maps images to raw head outputs; anchors come from the hypes' ``anchor`` section
(through the ``yolov3`` method), so the same weights can be used with anchors fitted to the data.
Anchors are ``[w, h]`` in input pixels, three per scale, smallest scale (stride 8) first.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, box_iou

from cauchy.models.det.darknet import Darknet, conv_bn_leaky
from cauchy.registry import LOSSES, MODELS

COCO_ANCHORS = [[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]],
                [[116, 90], [156, 198], [373, 326]]]
STRIDES = (8, 16, 32)
PRE_NMS = 1000  # decoding keeps the best this many (anchor, class) scores before NMS


def head_block(cin: int, channels: int) -> nn.Sequential:
    """The five alternating 1x1/3x3 convolutions before each YOLOv3 output."""
    return nn.Sequential(conv_bn_leaky(cin, channels, 1), conv_bn_leaky(channels, channels * 2, 3),
                         conv_bn_leaky(channels * 2, channels, 1), conv_bn_leaky(channels, channels * 2, 3),
                         conv_bn_leaky(channels * 2, channels, 1))


class YOLOv3(nn.Module):
    """Returns, per scale (strides 8, 16, 32), raw outputs ``[B, anchors, H, W, 5 + classes]``:
    x, y, w, h, objectness, class logits."""

    def __init__(self, num_classes: int, width: int = 32, depths: tuple[int, ...] = (1, 2, 8, 8, 4),
                 num_anchors: int = 3, prior_prob: float = 0.01) -> None:
        super().__init__()
        self.num_classes, self.num_anchors = num_classes, num_anchors
        self.backbone = Darknet(width, tuple(depths))
        c3, c4, c5 = self.backbone.out_channels
        outputs = num_anchors * (5 + num_classes)
        self.block5 = head_block(c5, c5 // 2)
        self.block4 = head_block(c4 + c4 // 2, c4 // 2)
        self.block3 = head_block(c3 + c3 // 2, c3 // 2)
        self.lateral5, self.lateral4 = conv_bn_leaky(c5 // 2, c4 // 2, 1), conv_bn_leaky(c4 // 2, c3 // 2, 1)
        self.heads = nn.ModuleList(nn.Sequential(conv_bn_leaky(c // 2, c, 3), nn.Conv2d(c, outputs, 1))
                                   for c in (c3, c4, c5))
        bias = -math.log((1 - prior_prob) / prior_prob)
        for head in self.heads:
            conv = head[-1].bias.data.view(num_anchors, 5 + num_classes)
            conv[:, :4] = 0.0
            conv[:, 4:] = bias

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        c3, c4, c5 = self.backbone(images)
        p5 = self.block5(c5)
        p4 = self.block4(torch.cat([F.interpolate(self.lateral5(p5), size=c4.shape[-2:]), c4], dim=1))
        p3 = self.block3(torch.cat([F.interpolate(self.lateral4(p4), size=c3.shape[-2:]), c3], dim=1))
        outs = []
        for head, p in zip(self.heads, (p3, p4, p5)):
            y = head(p)
            b, _, h, w = y.shape
            outs.append(y.view(b, self.num_anchors, 5 + self.num_classes, h, w).permute(0, 1, 3, 4, 2))
        return outs


@MODELS.register("yolov3_darknet53")
def yolov3_darknet53(num_classes: int, **params: Any) -> YOLOv3:
    return YOLOv3(num_classes, **params)


@MODELS.register("yolov3_small")
def yolov3_small(num_classes: int, width: int = 8, depths: tuple[int, ...] = (1, 1, 2, 2, 1),
                 **params: Any) -> YOLOv3:
    """A Darknet of an eighth of the channels and a third of the blocks (about 2.3M parameters with the
    head): trains at about 150 images/s of 128 pixels on two CPU cores."""
    return YOLOv3(num_classes, width=width, depths=depths, **params)


def check_anchors(anchors: Any) -> torch.Tensor:
    """``[[[w, h] x A] x 3 scales]`` -> float tensor [3, A, 2]; errors name ``anchor.anchors``."""
    try:
        t = torch.tensor(anchors, dtype=torch.float32)
    except (TypeError, ValueError):
        t = torch.empty(0)
    if t.dim() != 3 or t.shape[0] != 3 or t.shape[2] != 2 or not bool((t > 0).all()):
        raise ValueError(f"anchor.anchors: expected three scales of [width, height] pairs > 0, got {anchors!r}")
    return t


def grid_boxes(raw: torch.Tensor, anchors: torch.Tensor, stride: int) -> torch.Tensor:
    """Decoded xyxy boxes [B, A, H, W, 4] (input pixels) of one scale's raw outputs."""
    _, _, h, w, _ = raw.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=raw.device), torch.arange(w, device=raw.device), indexing="ij")
    grid = torch.stack([xs, ys], dim=-1).to(raw.dtype)
    centre = (raw[..., :2].sigmoid() + grid) * stride
    size = raw[..., 2:4].clamp(max=10).exp() * anchors.to(raw)[None, :, None, None, :]
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


@LOSSES.register("yolov3")
class YOLOv3Loss(nn.Module):
    """Each ground-truth box is assigned to the anchor (of all scales) whose shape fits it best, in
    the cell holding its centre. That anchor learns the box (BCE on the cell offset, squared error
    on log size, weighted ``2 - w*h/image area`` to favour small boxes), objectness 1 and its
    class (BCE); anchors whose prediction overlaps some ground truth by more than ``ignore_iou``
    are left out of the objectness loss, all others learn objectness 0. Sums per image, averaged
    over the batch."""

    def __init__(self, ignore_iou: float = 0.5, box_weight: float = 1.0, obj_weight: float = 1.0,
                 cls_weight: float = 1.0) -> None:
        super().__init__()
        self.ignore_iou = ignore_iou
        self.box_weight, self.obj_weight, self.cls_weight = box_weight, obj_weight, cls_weight

    def forward(self, outputs: list[torch.Tensor], targets: list[dict[str, torch.Tensor]], anchors: torch.Tensor,
                input_size: tuple[int, int]) -> dict[str, torch.Tensor]:
        batch = outputs[0].shape[0]
        num_anchors = anchors.shape[1]
        gt = torch.cat([t["boxes"] for t in targets]).float()
        labels = torch.cat([t["labels"] for t in targets])
        image_of = torch.cat([torch.full((len(t["boxes"]),), i, device=gt.device) for i, t in enumerate(targets)])
        wh = gt[:, 2:] - gt[:, :2]
        flat = anchors.view(-1, 2).to(gt)
        inter = torch.min(wh[:, None], flat[None]).prod(-1)
        best = (inter / (wh.prod(-1)[:, None] + flat.prod(-1)[None] - inter)).argmax(1)
        zero = outputs[0].sum() * 0
        parts = {"loss_xy": zero, "loss_wh": zero, "loss_obj": zero, "loss_cls": zero}
        for level, (raw, stride) in enumerate(zip(outputs, STRIDES)):
            raw = raw.float()
            _, _, h, w, _ = raw.shape
            obj_target = torch.zeros(raw.shape[:4], device=raw.device)
            obj_weight = self._not_ignored(raw, anchors[level], stride, gt, image_of)
            sel = (best // num_anchors) == level
            if sel.any():
                b, a, box, cls = image_of[sel], best[sel] % num_anchors, gt[sel], labels[sel]
                centre, size = (box[:, :2] + box[:, 2:]) / 2 / stride, box[:, 2:] - box[:, :2]
                gx, gy = centre[:, 0].long().clamp(0, w - 1), centre[:, 1].long().clamp(0, h - 1)
                pred = raw[b, a, gy, gx]
                scale = 2 - size.prod(-1) / (input_size[0] * input_size[1])
                xy_target = centre - torch.stack([gx, gy], dim=1)
                wh_target = torch.log(size / anchors[level].to(raw)[a])
                parts["loss_xy"] = parts["loss_xy"] + (scale[:, None] * F.binary_cross_entropy_with_logits(
                    pred[:, :2], xy_target, reduction="none")).sum()
                parts["loss_wh"] = parts["loss_wh"] + (scale[:, None] * (pred[:, 2:4] - wh_target) ** 2).sum() / 2
                parts["loss_cls"] = parts["loss_cls"] + F.binary_cross_entropy_with_logits(
                    pred[:, 5:], F.one_hot(cls, raw.shape[-1] - 5).to(raw), reduction="sum")
                obj_target[b, a, gy, gx] = 1.0
                obj_weight[b, a, gy, gx] = 1.0
            parts["loss_obj"] = parts["loss_obj"] + (obj_weight * F.binary_cross_entropy_with_logits(
                raw[..., 4], obj_target, reduction="none")).sum()
        parts = {k: v / batch for k, v in parts.items()}
        weights = {"loss_xy": self.box_weight, "loss_wh": self.box_weight, "loss_obj": self.obj_weight,
                   "loss_cls": self.cls_weight}
        return {"loss": sum(weights[k] * v for k, v in parts.items()), **parts}

    @torch.no_grad()
    def _not_ignored(self, raw: torch.Tensor, anchors: torch.Tensor, stride: int, gt: torch.Tensor,
                     image_of: torch.Tensor) -> torch.Tensor:
        """1 where an anchor's prediction overlaps no ground truth of its image by more than ``ignore_iou``."""
        boxes = grid_boxes(raw.detach(), anchors, stride)
        weight = torch.ones(raw.shape[:4], device=raw.device)
        for i in range(raw.shape[0]):
            mine = gt[image_of == i]
            if len(mine):
                best = box_iou(boxes[i].reshape(-1, 4), mine).max(dim=1).values
                weight[i] = (best <= self.ignore_iou).float().view(weight.shape[1:])
        return weight


def dense_detections(outputs: list[torch.Tensor], anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(boxes [B, N, 4] xyxy input pixels, scores [B, N, C])`` for every anchor of every scale, the score
    being objectness x class probability: what :func:`decode` thresholds, and what an export ends with."""
    boxes = torch.cat([grid_boxes(raw.float(), anchors[i], s).flatten(1, 3) for i, (raw, s) in
                       enumerate(zip(outputs, STRIDES))], dim=1)
    logits = torch.cat([raw.float().flatten(1, 3)[..., 4:] for raw in outputs], dim=1)
    return boxes, logits[..., :1].sigmoid() * logits[..., 1:].sigmoid()


@torch.no_grad()
def decode(outputs: list[torch.Tensor], anchors: torch.Tensor, *, score_thresh: float, nms_iou: float,
           max_dets: int, pre_nms: int = PRE_NMS) -> list[dict[str, torch.Tensor]]:
    """Per image ``{"boxes" (input pixels, xyxy), "scores", "labels"}``: score = objectness x class
    probability for every (anchor, class) pair above ``score_thresh``, the best ``pre_nms`` of them
    through class-wise NMS, at most ``max_dets`` kept."""
    boxes, scores = dense_detections(outputs, anchors)
    results = []
    for image_boxes, image_scores in zip(boxes, scores):
        flat = image_scores.flatten()
        keep = (flat > score_thresh).nonzero().squeeze(1)
        keep = keep[flat[keep].topk(min(pre_nms, len(keep))).indices]
        box_index, label = keep // image_scores.shape[1], keep % image_scores.shape[1]
        chosen = batched_nms(image_boxes[box_index], flat[keep], label, nms_iou)[:max_dets]
        results.append({"boxes": image_boxes[box_index[chosen]], "scores": flat[keep][chosen],
                        "labels": label[chosen]})
    return results
