"""Cauchy's edge predictor: a published model's answers with onnxruntime, NumPy and OpenCV alone.

It ships as ``predict.py`` in an edge bundle (``<weights>.edge.zip``) beside the exported
``model.onnx`` and ``manifest.json`` (the weights' manifest entry and its ``edge`` section: the test
pipeline's steps, the normalisation and the method's decoding settings, written by
``cauchy/export.py``; this file is ``scripts/edge/predict.py`` of the Cauchy repository), and prints
what the framework's predict phase writes to ``predictions/predictions.json``::

    pip install -r requirements.txt
    python predict.py IMAGE_OR_FOLDER [...] [--bundle DIR] [--out FILE]

It imports nothing of Cauchy or torch, so the pre- and post-processing below restate the
framework's in NumPy (``cauchy/datasets/transforms.py``, ``geometry.py``, the methods' ``predict``
and ``describe``); tests/export/test_edge_bundle.py holds the two to the same answers on the same
images. Images are run one at a time: the framework pads a batch to its largest image, which
would change answers at the borders.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class Sample:
    """One image on its way to the model: the pixels (RGB, HxWx3 uint8), the original size, and how
    the steps moved it (``scale_factor`` [sx, sy] of the resizes, ``affine`` original -> input pixels)."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.orig_size = image.shape[:2]
        self.scale_factor = np.ones(2, dtype=np.float32)
        self.affine = np.eye(3)

    def resize(self, h: int, w: int, interpolation: int) -> None:
        old_h, old_w = self.image.shape[:2]
        self.scale_factor = self.scale_factor * np.array([w / old_w, h / old_h], dtype=np.float32)
        if (old_h, old_w) != (h, w):
            self.image = cv2.resize(self.image, (w, h), interpolation=interpolation)
            self.affine = np.diag([w / old_w, h / old_h, 1.0]) @ self.affine

    def place(self, x0: int, y0: int, w: int, h: int, fill: Any) -> None:
        """The ``w`` x ``h`` window at (x0, y0), padded with ``fill`` where it leaves the image."""
        height, width = self.image.shape[:2]
        out = np.empty((h, w, 3), dtype=np.uint8)
        out[...] = fill
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
        if ix1 > ix0 and iy1 > iy0:
            out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = self.image[iy0:iy1, ix0:ix1]
        self.image = out
        self.affine = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64) @ self.affine


def step_resize(sample: Sample, size: list[int], keep_ratio: bool, fill: Any, interpolation: int) -> None:
    h, w = size
    old_h, old_w = sample.image.shape[:2]
    new_h, new_w = h, w
    if keep_ratio:
        scale = min(h / old_h, w / old_w)
        new_h, new_w = max(1, min(h, round(old_h * scale))), max(1, min(w, round(old_w * scale)))
    sample.resize(new_h, new_w, interpolation)
    if keep_ratio:
        sample.place(0, 0, w, h, fill)


def step_scale(sample: Sample, factor: float, interpolation: int) -> None:
    old_h, old_w = sample.image.shape[:2]
    sample.resize(max(1, round(old_h * factor)), max(1, round(old_w * factor)), interpolation)


def step_center_crop(sample: Sample, size: list[int], fill: Any) -> None:
    h, w = size
    height, width = sample.image.shape[:2]
    sample.place((width - w) // 2, (height - h) // 2, w, h, fill)


def step_top_down_affine(sample: Sample, size: list[int], box_scale: float, factor: float, fill: Any) -> None:
    """The whole image as the one person's box, grown to the input's aspect ratio and by ``box_scale``."""
    h, w = size
    height, width = sample.image.shape[:2]
    bw, bh = max(width, 1e-3), max(height, 1e-3)
    if bw / bh <= w / h:
        bw = bh * (w / h)
    bw *= box_scale
    scale = w / (bw * factor)
    cx, cy = width / 2, height / 2
    matrix = np.array([[scale, 0.0, w / 2 - scale * cx], [0.0, scale, h / 2 - scale * cy], [0.0, 0.0, 1.0]])
    a, b = matrix[:2, :2], matrix[:2, 2]
    cv_matrix = np.concatenate([a, (b + a @ np.array([0.5, 0.5]) - 0.5)[:, None]], axis=1)
    sample.image = cv2.warpAffine(sample.image, cv_matrix, (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    sample.affine = matrix @ sample.affine


STEPS: dict[str, Callable[..., None]] = {"resize": step_resize, "scale": step_scale, "center_crop": step_center_crop,
                                         "top_down_affine": step_top_down_affine}


def normalised(sample: Sample, normalize: dict[str, list[float]]) -> np.ndarray:
    """[1, 3, H, W] float32: ``pixel * scale + offset`` per channel, as the framework's normaliser."""
    chw = np.ascontiguousarray(sample.image.transpose(2, 0, 1)).astype(np.float32)
    scale = np.asarray(normalize["scale"], dtype=np.float32)[:, None, None]
    offset = np.asarray(normalize["offset"], dtype=np.float32)[:, None, None]
    return (offset + chw * scale)[None]


def pad_to(images: np.ndarray, divisor: int) -> np.ndarray:
    """Zero-pad bottom/right to multiples of ``divisor`` (a detection batch's padding, after normalising)."""
    h, w = images.shape[-2:]
    ph, pw = -(-h // divisor) * divisor, -(-w // divisor) * divisor
    return np.pad(images, ((0, 0), (0, 0), (0, ph - h), (0, pw - w))) if (ph, pw) != (h, w) else images


def decode_cls(outputs: list[np.ndarray], sample: Sample, names: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    """The scores, the best class, and the best ``top_k`` classes (best first; ties by class index)."""
    scores = outputs[0][0]
    label = int(scores.argmax())
    best = np.argsort(-scores, kind="stable")[:settings["top_k"]]
    return {"scores": scores.tolist(), "label": label, "class_name": names[label], "score": float(scores[label]),
            "top": [{"label": int(i), "class_name": names[i], "score": float(scores[i])} for i in best]}


def decode_seg(outputs: list[np.ndarray], sample: Sample, names: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    """Logits resized to the original size (bilinear, pixel centres aligned), argmax, pixels per class."""
    oh, ow = sample.orig_size
    logits = outputs[0][0].transpose(1, 2, 0)
    resized = cv2.resize(logits, (ow, oh), interpolation=cv2.INTER_LINEAR).reshape(oh, ow, -1)
    mask = resized.argmax(axis=-1)
    counts = np.bincount(mask.ravel(), minlength=len(names)).tolist()
    return {"size": [oh, ow], "pixels": {name: n for name, n in zip(names, counts) if n}}


def decode_heatmaps(heatmaps: np.ndarray, stride: float) -> tuple[np.ndarray, np.ndarray]:
    """``(xy [K, 2] input pixels, peaks [K])``: each heatmap's peak refined by a quadratic fit of its log."""
    k, h, w = heatmaps.shape
    flat = heatmaps.reshape(k, h * w).astype(np.float32)
    index = flat.argmax(axis=1)
    peaks = flat[np.arange(k), index]
    iy, ix = index // w, index % w
    log = np.log(np.maximum(flat, np.float32(1e-10))).reshape(k, h, w)
    rows = np.arange(k)

    def offset(centre: np.ndarray, before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> np.ndarray:
        curvature = before - 2 * centre + after
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.float32(0.5) * (before - after) / np.minimum(curvature, np.float32(-1e-12))
        return np.clip(np.where(valid & (curvature < 0), step, np.float32(0)), -0.5, 0.5).astype(np.float32)

    c = log[rows, iy, ix]
    dx = offset(c, log[rows, iy, np.maximum(ix - 1, 0)], log[rows, iy, np.minimum(ix + 1, w - 1)], (ix > 0) & (ix < w - 1))
    dy = offset(c, log[rows, np.maximum(iy - 1, 0), ix], log[rows, np.minimum(iy + 1, h - 1), ix], (iy > 0) & (iy < h - 1))
    xy = np.stack([(ix.astype(np.float32) + np.float32(0.5) + dx) * np.float32(stride),
                   (iy.astype(np.float32) + np.float32(0.5) + dy) * np.float32(stride)], axis=1)
    return xy, peaks


def decode_pose_top_down(outputs: list[np.ndarray], sample: Sample, names: list[str],
                         settings: dict[str, Any]) -> dict[str, Any]:
    """Keypoints at the heatmaps' peaks, in original pixels; the person's score is the mean of the
    peaks above ``score_threshold``."""
    xy, peaks = decode_heatmaps(outputs[0][0], settings["stride"])
    back = np.linalg.inv(sample.affine)
    original = (xy.astype(np.float64) @ back[:2, :2].T + back[:2, 2]).astype(np.float32)
    strong = peaks > settings["score_threshold"]
    score = float(peaks[strong].mean(dtype=np.float32)) if strong.any() else 0.0
    person = np.concatenate([original, peaks[:, None]], axis=1).tolist()
    return {"people": [{"score": score, "keypoints": dict(zip(names, person))}]}


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy NMS, best score first (a box goes when its IoU with a kept one is > ``iou``)."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for position, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[position + 1:]
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = w * h
        suppressed[rest[inter / (areas[i] + areas[rest] - inter) > iou]] = True
    return np.asarray(keep, dtype=np.int64)


def decode_det_dense(outputs: list[np.ndarray], sample: Sample, names: list[str],
                     settings: dict[str, Any]) -> dict[str, Any]:
    """Scores above ``score_thresh``, the best ``pre_nms``, NMS per class, the first ``max_dets``,
    boxes divided by the resize factors and clipped to the original image."""
    boxes, scores = outputs[0][0], outputs[1][0]
    flat = scores.reshape(-1)
    keep = np.flatnonzero(flat > settings["score_thresh"])
    keep = keep[np.argsort(-flat[keep], kind="stable")[:settings["pre_nms"]]]
    box_index, label = keep // scores.shape[1], keep % scores.shape[1]
    candidates, candidate_scores = boxes[box_index], flat[keep]
    if len(candidates):  # classes apart: each class's boxes shifted beyond every other's
        shifted = candidates + (label.astype(np.float32) * (candidates.max() + np.float32(1)))[:, None]
        chosen = nms(shifted, candidate_scores, settings["nms_iou"])[:settings["max_dets"]]
    else:
        chosen = np.zeros(0, dtype=np.int64)
    sx, sy = sample.scale_factor
    h, w = sample.orig_size
    out = candidates[chosen] / np.array([sx, sy, sx, sy], dtype=np.float32)
    out[:, 0::2] = out[:, 0::2].clip(0, w)
    out[:, 1::2] = out[:, 1::2].clip(0, h)
    labels = label[chosen].tolist()
    return {"boxes": out.tolist(), "scores": candidate_scores[chosen].tolist(), "labels": labels,
            "class_names": [names[v] for v in labels]}


DECODERS: dict[str, Callable[[list[np.ndarray], Sample, list[str], dict[str, Any]], dict[str, Any]]] = {
    "cls": decode_cls, "seg": decode_seg, "pose_top_down": decode_pose_top_down, "det_dense": decode_det_dense}


def read_image(path: str) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR_RGB)
    if image is None:
        raise ValueError(f"{path}: not a decodable image")
    return image


def image_paths(inputs: list[str]) -> list[str]:
    """Image files given, and those below folders given (sorted, as the predict phase lists them)."""
    paths: list[str] = []
    for given in inputs:
        if os.path.isdir(given):
            paths += sorted(os.path.join(root, name) for root, _, names in os.walk(given)
                            for name in names if name.lower().endswith(IMAGE_EXTENSIONS))
        else:
            paths.append(given)
    return paths


class EdgePredictor:
    """The bundle in ``directory``: ``predict(path)`` is one image's prediction as the predict phase
    describes it."""

    def __init__(self, directory: str) -> None:
        with open(os.path.join(directory, "manifest.json"), encoding="utf-8") as fh:
            self.edge = json.load(fh)["edge"]
        self.session = ort.InferenceSession(os.path.join(directory, self.edge["model"]),
                                            providers=["CPUExecutionProvider"])
        self.decode = DECODERS[self.edge["postprocess"]["kind"]]

    def predict(self, path: str) -> dict[str, Any]:
        sample = Sample(read_image(path))
        for step in self.edge["preprocess"]:
            STEPS[step["op"]](sample, **{k: v for k, v in step.items() if k != "op"})
        images = normalised(sample, self.edge["normalize"])
        settings = self.edge["postprocess"]
        if "size_divisor" in settings:
            images = pad_to(images, settings["size_divisor"])
        outputs = self.session.run(None, {"images": images})
        return {"path": path, **self.decode(outputs, sample, self.edge["class_names"], settings)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Predict with an exported Cauchy model (onnxruntime).")
    parser.add_argument("inputs", nargs="+", help="image files or folders of images")
    parser.add_argument("--bundle", default=os.path.dirname(os.path.abspath(__file__)),
                        help="the unpacked bundle (default: this file's folder)")
    parser.add_argument("--out", help="write the predictions JSON here (default: standard output)")
    args = parser.parse_args(argv)
    predictor = EdgePredictor(args.bundle)
    text = json.dumps({"predictions": [predictor.predict(path) for path in image_paths(args.inputs)]}, indent=1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
