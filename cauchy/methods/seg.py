"""Semantic segmentation: one method for every seg model (torchcv's ``fcn_segmentor``).

Training: the loss on the model's ``out`` logits, plus ``aux_weight`` times the loss on its
auxiliary head's (``loss_aux``). Prediction: whole-image or sliding-window inference on the
transformed image, the padding cut off, logits resized back to each image's original size, then
argmax: ``{"mask": [H, W] class indices}`` per image at its original size, on the model's device,
uint8 up to 255 classes (:func:`index_dtype`).
"""
from __future__ import annotations

import io
import os
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cauchy.datasets import batches
from cauchy.datasets.seg.palette import colorize, voc_palette
from cauchy.hypes import HypesError
from cauchy.methods.base import Method
from cauchy.models.seg.base import SegmentationModel, upsample
from cauchy.models.seg.losses import CrossEntropy, SegLoss
from cauchy.registry import METHODS

MODES = ("whole", "slide")


def collate_segmentation(samples: list[dict[str, Any]], ignore_index: int = 255) -> dict[str, Any]:
    """Images zero-padded and masks padded with ``ignore_index`` (bottom/right) to the largest in the
    batch, ``image_sizes`` [B, 2] (h, w before padding), ``orig_mask`` as a list of per-image tensors
    at the original size, everything else as lists (``orig_size`` as a [B, 2] tensor)."""
    batch: dict[str, Any] = {"image": batches.stack([s["image"] for s in samples]),
                             "image_sizes": torch.tensor([list(s["image"].shape[-2:]) for s in samples]),
                             "orig_size": torch.tensor([list(s["orig_size"]) for s in samples])}
    if "mask" in samples[0]:
        batch["mask"] = batches.stack([torch.as_tensor(s["mask"]) for s in samples], fill=ignore_index)
    if "orig_mask" in samples[0]:
        batch["orig_mask"] = batches.packed([torch.as_tensor(np.ascontiguousarray(s["orig_mask"])) for s in samples])
    for key in samples[0]:
        if key not in batch:
            batch[key] = [s[key] for s in samples]
    return batch


def slide_windows(length: int, crop: int, stride: int) -> list[int]:
    """Window starts covering ``[0, length)`` with windows of ``crop`` every ``stride`` (the last flush)."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop, stride))
    return starts + [length - crop]


def index_dtype(num_classes: int) -> torch.dtype:
    """The type of predicted masks: uint8 while every class index fits it (up to 255 classes), so the
    evaluator and the PNG writer read one byte a pixel rather than argmax's eight."""
    return torch.uint8 if num_classes <= 255 else torch.int64


def pixel_pair(value: list[float] | None, key: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if not all(isinstance(v, int) or float(v).is_integer() for v in value):
        raise HypesError(key, f"expected [height, width] in whole pixels, got {value}")
    return int(value[0]), int(value[1])


class SegmentationMethod(Method):
    """``mode``: ``whole`` (the transformed image at once) or ``slide`` (``crop_size`` [h, w] windows
    every ``stride`` [h, w], logits averaged where windows overlap). ``ignore_index`` is the reader's
    (``data.params.ignore_index``): masks are padded with it and the default loss leaves it out; a
    named loss must leave out the same value. Masks are drawn and saved in the VOC palette."""

    default_evaluator = "seg"
    padded_images = True

    def __init__(self, model: nn.Module, loss: nn.Module | None = None, *, mode: str = "whole",
                 crop_size: list[float] | None = None, stride: list[float] | None = None,
                 ignore_index: int = 255) -> None:
        if not isinstance(model, SegmentationModel):
            raise HypesError("network.model_name", f"a segmentation method needs a segmentation model, got "
                                                   f"{type(model).__name__}")
        if mode not in MODES:
            raise HypesError("test.mode", f"expected one of {', '.join(MODES)}, got {mode!r}")
        if mode == "slide" and not (crop_size and stride):
            raise HypesError("test.crop_size", "slide mode needs test.crop_size and test.stride ([height, width])")
        if isinstance(loss, SegLoss) and loss.ignore_index != ignore_index:
            raise HypesError("loss.params.ignore_index", f"is {loss.ignore_index} but the masks' ignore value "
                                                         f"(data.params.ignore_index) is {ignore_index}")
        super().__init__(model, loss if loss is not None else CrossEntropy(ignore_index=ignore_index))
        self.mode, self.ignore_index = mode, ignore_index
        self.crop_size, self.stride = pixel_pair(crop_size, "test.crop_size"), pixel_pair(stride, "test.stride")
        self.palette = voc_palette()

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_segmentation(samples, self.ignore_index)

    def prepare(self, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        """Also the label maps widened to int64 (the loss's target type) on the device: the loader
        moves them in their reader's narrow type."""
        batch = super().prepare(batch, device)
        if "mask" in batch:
            batch["mask"] = batch["mask"].long()
        return batch

    def forward_train(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = self.model(batch["image"])
        losses = {"loss_seg": self.loss(out["out"], batch["mask"])}
        if "aux" in out:
            losses["loss_aux"] = self.model.aux_weight * self.loss(out["aux"], batch["mask"])
        return {"loss": sum(losses.values()), **losses}

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` logits for a batch of (padded) images, whole or by sliding windows."""
        if self.mode == "whole":
            return self.model(images)["out"]
        (ch, cw), (sh, sw) = self.crop_size, self.stride
        b, _, h, w = images.shape
        padded = F.pad(images, (0, max(cw - w, 0), 0, max(ch - h, 0)))
        ph, pw = padded.shape[-2:]
        total, count = None, torch.zeros(1, 1, ph, pw, device=images.device)
        for y in slide_windows(ph, ch, sh):
            for x in slide_windows(pw, cw, sw):
                window = self.model(padded[:, :, y:y + ch, x:x + cw])["out"]
                if total is None:
                    total = images.new_zeros(b, window.shape[1], ph, pw)
                total[:, :, y:y + ch, x:x + cw] += window
                count[:, :, y:y + ch, x:x + cw] += 1
        return (total / count)[:, :, :h, :w]

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        return self.from_exported([self.logits(batch["image"])], batch)

    def from_exported(self, outputs: list[torch.Tensor], batch: dict[str, Any]) -> list[dict[str, Any]]:
        """``outputs``: the logits ``[B, C, H, W]`` of the padded batch; each image's mask at its original size."""
        logits = outputs[0]
        dtype = index_dtype(logits.shape[1])
        out = []
        for i, ((h, w), (oh, ow)) in enumerate(zip(batch["image_sizes"].tolist(), batch["orig_size"].tolist())):
            out.append({"mask": upsample(logits[i:i + 1, :, :h, :w], (oh, ow))[0].argmax(dim=0).to(dtype)})
        return out

    def describe(self, prediction: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
        """The mask's size and pixels per class present (the mask itself goes to a PNG, not JSON)."""
        mask = prediction["mask"]
        counts = torch.bincount(mask.flatten().long(), minlength=len(class_names)).tolist()
        return {"size": list(mask.shape), "pixels": {name: n for name, n in zip(class_names, counts) if n}}

    def truth(self, batch: dict[str, Any], index: int) -> dict[str, Any] | None:
        """The reader's mask at the original size (ignored pixels included)."""
        return {"mask": batch["orig_mask"][index]} if "orig_mask" in batch else None

    def draw(self, image: np.ndarray, prediction: dict[str, Any], class_names: list[str]) -> np.ndarray:
        """``image`` (RGB) with the mask's colours blended over it, half and half."""
        colours = colorize(prediction["mask"].cpu().numpy(), self.palette)
        return cv2.addWeighted(np.ascontiguousarray(image), 0.5, colours, 0.5, 0)

    def prediction_files(self, prediction: dict[str, Any], image_path: str) -> dict[str, bytes]:
        """``<stem>_mask.png``: the class indices as a palette PNG (readable as a VOC mask)."""
        png = Image.fromarray(prediction["mask"].cpu().numpy().astype(np.uint8), mode="P")
        png.putpalette(self.palette.reshape(-1).tolist())
        buffer = io.BytesIO()
        png.save(buffer, format="PNG")
        return {os.path.splitext(os.path.basename(image_path))[0] + "_mask.png": buffer.getvalue()}


METHODS.register("fcn_segmentor")(SegmentationMethod)
