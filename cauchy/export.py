"""A published model as an ONNX or TorchScript file, and what an edge predictor needs to use one.

What an exported graph holds (the same for both formats): one input ``images``, float32
``[B, 3, H, W]`` already normalised (``(pixel / div_value - mean) / std``, the job's
``data.normalize``), and the method's dense tensors, per hypes ``method``:

- ``image_classifier``: ``scores`` [B, C], the softmax of the logits;
- ``fcn_segmentor`` (``test.mode`` whole): ``logits`` [B, C, H, W] at the input's size;
- ``top_down_pose``: ``heatmaps`` [B, K, H/s, W/s], averaged with those of the mirrored image
  (mirrored back, left/right swapped) when ``target.flip_test`` is on;
- ``yolov3``: ``boxes`` [B, N, 4] (xyxy, input pixels) and ``scores`` [B, N, C] (objectness x class
  probability) of every anchor of every scale.

The batch axis is dynamic, and so are height and width where the method takes any size (classifier,
segmentation). Decoding the file, resizing, thresholds, NMS and mapping back to original pixels stay
outside the graph: their shapes depend on the data, they are cheap in NumPy, and the exporters
handle them poorly (torchvision's NMS and per-image loops). ``edge_settings`` describes those
steps for the edge predictor, ``scripts/edge/predict.py``. torchvision's detectors and bottom-up pose are not exported
(their post-processing is a per-image Python loop inside the model); asking for one is an
``ExportError`` that lists the methods that are.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from cauchy import rundir
from cauchy.build import build_transforms, trained_method
from cauchy.datasets.pose.transforms import TopDownAffine
from cauchy.datasets.transforms import CenterCrop, Normalize, RandomScale, Resize
from cauchy.methods.base import Method
from cauchy.methods.cls import TOP_K
from cauchy.methods.det import SIZE_DIVISOR
from cauchy.methods.pose import unflip
from cauchy.models.det.yolov3 import PRE_NMS, dense_detections
from cauchy.registry import Registry, UnknownComponentError
from cauchy.weights_only import load_weights_only

OPSET = 18


class ExportError(ValueError):
    """A model, hypes or pipeline the export cannot represent; ``key`` names the hypes entry at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


class ExportHead(nn.Module):
    """The graph of one method: normalised images in, the method's dense tensors out (named ``outputs``).
    ``postprocess`` names the edge predictor's decoding of them and ``settings`` gives its numbers."""

    outputs: ClassVar[tuple[str, ...]]
    postprocess: ClassVar[str]
    any_size: ClassVar[bool] = True
    """Whether height and width are dynamic axes too (False: the model wants its input size)."""

    def __init__(self, method: Method) -> None:
        super().__init__()
        self.method = method

    def settings(self) -> dict[str, Any]:
        return {}


HEADS = Registry("exportable method")


@HEADS.register("image_classifier")
class ClassScores(ExportHead):
    outputs, postprocess = ("scores",), "cls"

    def settings(self) -> dict[str, Any]:
        return {"top_k": TOP_K}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.method.model(images).float().softmax(dim=1)


@HEADS.register("fcn_segmentor")
class SegmentationLogits(ExportHead):
    outputs, postprocess = ("logits",), "seg"

    def __init__(self, method: Method) -> None:
        if method.mode != "whole":
            raise ExportError("test.mode", "only whole-image inference is exported; sliding windows are a loop "
                                           "over the image the graph cannot hold (use \"whole\")")
        super().__init__(method)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.method.logits(images).float()


@HEADS.register("top_down_pose")
class PoseHeatmaps(ExportHead):
    outputs, postprocess, any_size = ("heatmaps",), "pose_top_down", False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        heatmaps = self.method.heatmaps(images)["heatmaps"].float()
        index = self.method.flip_index
        if self.method.target["flip_test"] and index is not None:
            heatmaps = (heatmaps + unflip(self.method.model(images.flip(-1))["heatmaps"].float(), index)) / 2
        return heatmaps

    def settings(self) -> dict[str, Any]:
        return {"stride": self.method.model.stride, "score_threshold": self.method.target["score_threshold"]}


@HEADS.register("yolov3")
class DenseDetections(ExportHead):
    outputs, postprocess, any_size = ("boxes", "scores"), "det_dense", False

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return dense_detections(self.method.model(images), self.method.anchors)

    def settings(self) -> dict[str, Any]:
        return {"score_thresh": self.method.score_thresh, "nms_iou": self.method.nms_iou,
                "max_dets": self.method.max_dets, "pre_nms": PRE_NMS, "size_divisor": SIZE_DIVISOR}


def head_class(h: dict[str, Any]) -> type[ExportHead]:
    """The export head of the hypes' method; another method is an ExportError listing those there are."""
    try:
        return HEADS.get(h["method"])
    except UnknownComponentError as exc:
        raise ExportError("method", str(exc)) from None


def export_head(h: dict[str, Any], method: Method) -> ExportHead:
    return head_class(h)(method).eval()


@dataclass
class Published:
    """A published model ready to export: the resolved hypes of the job that trained it, the model
    with the published weights, the class names and the train set's metadata (pose: skeleton)."""

    hypes: dict[str, Any]
    method: Method
    class_names: list[str]
    metadata: dict[str, Any]


def load_published(weights: str | os.PathLike[str], run_dir: str | os.PathLike[str] | None = None,
                   entry: dict[str, Any] | None = None) -> Published:
    """The model of the weights file ``weights`` (a state dict) built as the job that trained it built it:
    from its manifest ``entry``'s ``hypes``, ``class_names`` and ``metadata`` when the publish recorded
    them, else from the job's ``run_dir`` (its ``hypes.json``, and the class names and metadata of the
    checkpoint the weights were published from)."""
    entry = entry or {}
    h, state = entry.get("hypes"), {}
    if h is None:
        hypes_path = Path(run_dir) / rundir.HYPES if run_dir is not None else None
        if hypes_path is None or not hypes_path.is_file():
            raise ExportError("", "the entry records no hypes and its source job's are gone: the model cannot be rebuilt")
        h = json.loads(hypes_path.read_text(encoding="utf-8"))
        found = rundir.model_checkpoint(run_dir)
        state = load_weights_only(found, "checkpoint") if found is not None else {}
    head_class(h)  # before building a model that cannot be exported
    class_names = list(entry.get("class_names") or state.get("class_names") or h["data"]["class_names"] or [])
    if not class_names:
        raise ExportError("data.class_names", "the source job records no class names")
    metadata = dict(entry.get("metadata") or state.get("metadata") or {})
    method = trained_method(h, class_names, metadata, load_weights_only(weights, "weights file"))
    return Published(h, method.eval(), class_names, metadata)


EdgeStep = Callable[[Any], dict[str, Any]]
EDGE_STEPS: dict[type, EdgeStep] = {}
"""The test pipeline's transforms as the edge predictor's steps, by transform class."""


def edge_step(kind: type) -> Callable[[EdgeStep], EdgeStep]:
    def deco(fn: EdgeStep) -> EdgeStep:
        EDGE_STEPS[kind] = fn
        return fn

    return deco


def fixed(name: str, value: tuple[float, float]) -> float:
    if value[0] != value[1]:
        raise ExportError(f"test.aug_trans.{name}", f"is random ({list(value)}); the edge predictor repeats "
                                                    "only fixed test-time transforms")
    return value[0]


@edge_step(Resize)
def _resize(t: Resize) -> dict[str, Any]:
    return {"op": "resize", "size": list(t.size), "keep_ratio": t.keep_ratio, "fill": t.fill,
            "interpolation": t.interpolation}


@edge_step(RandomScale)
def _scale(t: RandomScale) -> dict[str, Any]:
    return {"op": "scale", "factor": fixed("random_scale.scale", t.scale), "interpolation": t.interpolation}


@edge_step(CenterCrop)
def _center_crop(t: CenterCrop) -> dict[str, Any]:
    return {"op": "center_crop", "size": list(t.size), "fill": t.fill}


@edge_step(TopDownAffine)
def _top_down(t: TopDownAffine) -> dict[str, Any]:
    if t.rotation or t.shift:
        raise ExportError("test.aug_trans.top_down_affine", "rotates or shifts at random; the edge predictor "
                                                            "repeats only fixed test-time transforms")
    return {"op": "top_down_affine", "size": list(t.size), "box_scale": t.box_scale,
            "factor": fixed("top_down_affine.scale", t.scale), "fill": t.fill}


@edge_step(Normalize)
def _normalize(t: Normalize) -> dict[str, Any]:
    return {}  # the last step, always: the edge predictor normalises with ``edge_settings``'s numbers


def edge_settings(published: Published, head: ExportHead) -> dict[str, Any]:
    """What the edge predictor (``scripts/edge/predict.py``) does around the graph: the test pipeline's steps, the
    normalisation, and the method's decoding with its settings."""
    steps = []
    for transform in build_transforms(published.hypes, "test").transforms:
        step = EDGE_STEPS.get(type(transform))
        if step is None:
            raise ExportError("test.aug_trans", f"{type(transform).__name__} has no edge equivalent; supported: "
                                                f"{', '.join(sorted(k.__name__ for k in EDGE_STEPS))}")
        if spec := step(transform):
            steps.append(spec)
    normalizer = published.method.normalizer
    return {"task": published.hypes["task"], "method": published.hypes["method"], "outputs": list(head.outputs),
            "class_names": published.class_names, "preprocess": steps,
            "normalize": {"scale": normalizer.scale.flatten().tolist(), "offset": normalizer.offset.flatten().tolist()},
            "postprocess": {"kind": head.postprocess, **head.settings()}}


def example_images(published: Published, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """``batch`` random images through the test pipeline and the normaliser: a traced input of the size
    the model sees (det padded to its divisor, as the collate pads it)."""
    gen = np.random.default_rng(seed)
    transforms = build_transforms(published.hypes, "test")
    samples = [transforms({"image": gen.integers(0, 256, (48, 64, 3), dtype=np.uint8), "orig_size": (48, 64)})
               for _ in range(batch)]
    loader_batch = published.method.collate(samples)
    return published.method.prepare(loader_batch, torch.device("cpu"))["image"]


def dynamic_axes(head: ExportHead) -> dict[str, dict[int, str]]:
    """The dynamic axes of the input and every output (batch; height and width where ``any_size``)."""
    image = {0: "batch", 2: "height", 3: "width"} if head.any_size else {0: "batch"}
    return {"images": image, **{name: {0: "batch"} for name in head.outputs}}


def write_onnx(head: ExportHead, example: torch.Tensor, path: str, opset: int = OPSET) -> dict[str, Any]:
    """torch's TorchScript-based exporter (``dynamo=False``; torch 2.14 defaults to the dynamo one): it
    exports every head here in about a second where dynamo takes 2 to 45 (docs/export.md), with the
    same outputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export": chosen
        torch.onnx.export(head, (example,), path, input_names=["images"], output_names=list(head.outputs),
                          dynamic_axes=dynamic_axes(head), opset_version=opset, dynamo=False)
    return {"opset": opset}


def write_torchscript(head: ExportHead, example: torch.Tensor, path: str, opset: int = OPSET) -> dict[str, Any]:
    """A traced module (``torch.jit.load`` runs it without Cauchy's code); the batch size may change.
    torch calls TorchScript deprecated in favour of ``torch.export``, whose files need torch's newest
    runtime; TorchScript still loads in C++ (libtorch) and older torch, which is why it is offered."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the deprecation notice
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks traced as constants: sizes are fixed
        traced = torch.jit.trace(head, example, check_trace=False)
    traced.save(path)
    return {}


FORMATS: dict[str, Callable[..., dict[str, Any]]] = {"onnx": write_onnx, "torchscript": write_torchscript}
"""Format name -> writer (the file names on the weights host: ``cauchy.manifest.EXPORTS``)."""


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ExportError("format", f"unknown export format {fmt!r}; valid: {', '.join(sorted(FORMATS))}")
    return fmt


def export(published: Published, fmt: str, path: str, opset: int = OPSET) -> dict[str, Any]:
    """Write ``published`` as ``fmt`` to ``path``; returns what the manifest records of it (format, opset,
    inputs, outputs, seconds) and the edge settings."""
    check_format(fmt)
    head = export_head(published.hypes, published.method)
    settings = edge_settings(published, head)
    example = example_images(published)
    started = time.perf_counter()
    with torch.no_grad():
        written = FORMATS[fmt](head, example, path, opset)
    return {"format": fmt, **written, "input": {"name": "images", "shape": ["batch", 3, *(
        ["height", "width"] if head.any_size else list(example.shape[-2:]))]}, "outputs": list(head.outputs),
        "seconds": round(time.perf_counter() - started, 3), "edge": settings}


def run_head(published: Published, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The head's outputs in PyTorch, as a tuple: what an exported file must reproduce."""
    with torch.no_grad():
        out = export_head(published.hypes, published.method)(images)
    return out if isinstance(out, tuple) else (out,)

