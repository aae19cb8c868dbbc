"""The one interface the engine trains and evaluates: what differs per task lives behind it."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from cauchy.datasets import batches
from cauchy.datasets.normalize import InputNormalizer
from cauchy.metrics.base import Evaluator


class Method(nn.Module):
    """A model plus what its task adds: targets, the loss dict, decoding of predictions, and how
    predictions are evaluated, described, saved and drawn.

    Subclasses implement ``forward_train``, ``predict`` and, when samples are not stackable as-is,
    ``collate``; they set ``default_evaluator`` and override ``describe``, ``truth``, ``draw`` and
    ``test_files`` where the defaults below do not fit their task. Generic code (runner, hooks)
    reaches a task only through these; it never looks inside a batch or a prediction.
    """

    default_evaluator: ClassVar[str | list[str] | None] = None
    """Evaluator name(s) used when the hypes' ``val.evaluator`` / ``test.evaluator`` is null."""

    padded_images: ClassVar[bool] = False
    """True when the collate pads images to the batch's largest (bottom/right) and records each one's
    ``image_sizes``: :meth:`prepare` keeps the padding zero after normalising."""

    static_shapes: ClassVar[bool] = True
    """False when the model's layers see new shapes from step to step (R-CNN heads convolve however
    many regions a step keeps): cuDNN's autotuning (``cudnn.benchmark``) tunes each new shape again,
    so it stays off for them (on an H200 it made Mask R-CNN's and Keypoint R-CNN's training steps 11 and
    13 times slower)."""

    def __init__(self, model: nn.Module, loss: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.normalizer = InputNormalizer()  # build_method sets the hypes' data.normalize

    def prepare(self, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        """A loader's batch as ``forward_train`` and ``predict`` read it: on ``device``, the uint8
        images normalised there (one place for every task; the workers only decode and move pixels)."""
        sizes = batch.get("image_sizes") if self.padded_images else None
        batch = move_to(batch, device)
        batch["image"] = self.normalizer(batch["image"], sizes)
        return batch

    def forward_train(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``{"loss": total, "loss_<part>": ...}`` for one batch, in training mode."""
        raise NotImplementedError

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``forward_train``: what calling the method does, so DistributedDataParallel can wrap it."""
        return self.forward_train(batch)

    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """One dict per image, with the task's standard keys (see docs/contracts.md)."""
        raise NotImplementedError

    def from_exported(self, outputs: list[torch.Tensor], batch: dict[str, Any]) -> list[dict[str, Any]]:
        """What ``predict`` gives, from the outputs of this method's exported graph (``cauchy.export``'s head
        for it) on the batch's normalised images: the post-processing the ONNX Runtime backend of
        ``cauchy.inference`` runs. ``predict`` goes through the same code where a method overrides this."""
        raise NotImplementedError(f"{type(self).__name__} predictions are not decoded from an exported graph")

    def use_metadata(self, metadata: dict[str, Any]) -> None:
        """Take what the task needs of the train set's ``metadata`` beyond its class names (pose: the
        skeleton and left/right pairs). Called after the method is built: in training with the train
        set's, in test and predict with the checkpoint's copy of it. Default: nothing."""

    def describe(self, prediction: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
        """One prediction as JSON for results.json and predictions.json: tensors as lists (the
        runner adds ``path``). Tasks add readable fields (class names) or leave out bulky ones."""
        return {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in prediction.items()}

    def truth(self, batch: dict[str, Any], index: int) -> dict[str, Any] | None:
        """Ground truth of image ``index`` of a collated batch, in the shape ``predict`` gives (original
        pixels), so ``draw`` can show it beside the prediction; None when the batch has none."""
        return None

    def draw(self, image: np.ndarray, prediction: dict[str, Any], class_names: list[str]) -> np.ndarray | None:
        """An RGB uint8 picture of ``prediction`` (or of ``truth``) on the original ``image``; None when
        the task has no drawing (then predict writes no images and validation shows none)."""
        return None

    def prediction_files(self, prediction: dict[str, Any], image_path: str) -> dict[str, bytes]:
        """Extra files the predict phase writes for one image beside its drawing, ``{file name: encoded
        bytes}`` (seg: the label map as a palette PNG); names should start with the image's stem."""
        return {}

    def test_files(self, evaluator: Evaluator) -> dict[str, Any]:
        """Extra JSON files of the test phase, ``{file name in the run directory: document}``, taken
        from the evaluator that just ran (det: ``detections.json`` in COCO's results format)."""
        return {}

    @staticmethod
    def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack tensors (``batches.stack``: in a loader's worker into its reused shared memory), keep
        everything else as lists."""
        batch: dict[str, Any] = {}
        for key in samples[0]:
            values = [s[key] for s in samples]
            if isinstance(values[0], torch.Tensor):
                batch[key] = batches.stack(values)
            elif isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
                batch[key] = torch.tensor(values)
            else:
                batch[key] = values
        return batch

    @staticmethod
    def batch_size(batch: dict[str, Any]) -> int:
        return len(batch["image"])


def move_to(obj: Any, device: torch.device) -> Any:
    """Tensors (nested in dicts, lists and tuples) moved to ``device``; other values unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(v, device) for v in obj)
    return obj
