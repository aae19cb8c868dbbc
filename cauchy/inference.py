"""A trained model as a predictor: pre-processing, the model call on a batch, post-processing to JSON.

One implementation for the two places that predict: the predict phase (``run_tasks.py --phase
predict``, over a directory of images) and the model server (``services/serving``, over request
bodies). Both build a :class:`Predictor` and go through it, so a deployment answers exactly what the
predict phase writes to ``predictions.json``.

- Pre-processing is the hypes' ``test`` transforms (resize, ``data.normalize``'s uint8 step) on one
  decoded image (:meth:`Predictor.sample`); thread-safe, so a server runs it outside the model's lock.
- The model call is a :class:`Backend` on a collated batch: :class:`TorchBackend` runs the method;
  another backend (ONNX Runtime on an exported file) registers in ``BACKENDS`` under its name.
- Post-processing is the method's own ``describe`` (JSON in original image coordinates: cls scores and
  the top-k, det boxes/labels/scores, seg class areas, pose keypoints with scores), ``prediction_files``
  (seg: the mask as a PNG) and ``draw``.

From a weights host entry (``load_predictor``): the entry records the job's resolved hypes and the
train set's metadata (pose: keypoint names and skeleton) at publish time, which is what rebuilds the
method; the weights file is checked against the entry's sha256.
"""
from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from cauchy.build import build_transforms, trained_method
from cauchy.datasets.images import image_sample
from cauchy.files import sha256_file
from cauchy.hypes import resolve_hypes
from cauchy.methods.base import Method
from cauchy.registry import Registry
from cauchy.weights import WeightsError, read_state_dict


class InferenceError(ValueError):
    """A weights entry that cannot be served (no hypes recorded, a file that fails its hash check)."""


class Backend(Protocol):
    """Runs the model on a collated batch of uint8 images: one raw prediction per image, with the task's
    standard keys in original image coordinates (what ``Method.predict`` returns)."""

    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]: ...


BackendFactory = Callable[[Method, dict[str, Any], str, torch.device], Backend]
BACKENDS = Registry("inference backend")
"""``name -> factory(method, entry, weights directory, device)``; the method is built, its weights not loaded."""


class TorchBackend:
    """The method itself, in eval mode on ``device``: ``prepare`` (normalise on the device), then ``predict``."""

    def __init__(self, method: Method, device: torch.device) -> None:
        self.method, self.device = method.to(device).eval(), device

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        return self.method.predict(self.method.prepare(batch, self.device))


@BACKENDS.register("torch")
def torch_backend(method: Method, entry: dict[str, Any], directory: str, device: torch.device) -> Backend:
    method.model.load_state_dict(read_state_dict(weights_file(entry, directory)))
    return TorchBackend(method, device)


class OnnxRuntimeBackend:
    """An exported graph (``cauchy.export``: normalised images in, the method's dense tensors out) run by
    ONNX Runtime; the method normalises before it (``prepare``) and decodes after it (``from_exported``),
    the same code its ``predict`` runs around the PyTorch model."""

    def __init__(self, method: Method, session: Any) -> None:
        self.method, self.session = method.eval(), session
        self.input = session.get_inputs()[0].name

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        batch = self.method.prepare(batch, torch.device("cpu"))
        outputs = self.session.run(None, {self.input: self.fit(batch["image"]).numpy()})
        return self.method.from_exported([torch.from_numpy(out) for out in outputs], batch)

    def fit(self, images: torch.Tensor) -> torch.Tensor:
        """A graph exported at a fixed size (det) takes the batch padded bottom and right with zeros (as the
        collate pads a normalised batch); coordinates are unchanged."""
        fixed = self.session.get_inputs()[0].shape[-2:]
        if not all(isinstance(side, int) for side in fixed):
            return images
        h, w = images.shape[-2:]
        if h > fixed[0] or w > fixed[1]:
            raise InferenceError(f"a batch of {h}x{w} images does not fit the exported graph's {fixed[0]}x{fixed[1]}")
        return F.pad(images, (0, fixed[1] - w, 0, fixed[0] - h))


ONNX_PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


@BACKENDS.register("onnxruntime")
def onnxruntime_backend(method: Method, entry: dict[str, Any], directory: str, device: torch.device) -> Backend:
    """The entry's ONNX export (``POST /api/v1/weights/<name>/export {"format": "onnx"}``), sha256-checked;
    as many intra-op threads as torch has (``torch.set_num_threads``: the replica's share of the CPU)."""
    import onnxruntime

    record = (entry.get("exports") or {}).get("onnx")
    if record is None:
        raise InferenceError(f"weights {entry['name']} have no ONNX export: export them first "
                             f"(cauchy export --weights {entry['name']} --format onnx)")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(weights_file({**record, "name": entry["name"]}, directory), options,
                                           providers=ONNX_PROVIDERS[device.type])
    return OnnxRuntimeBackend(method, session)


def weights_file(entry: dict[str, Any], directory: str, key: str = "file", sha_key: str = "sha256") -> str:
    """The entry's file (``key``) under ``directory``, checked against its recorded hash (``sha_key``)."""
    path = os.path.join(directory, entry[key])
    if not os.path.isfile(path):
        raise InferenceError(f"weights {entry['name']}: {entry[key]} is missing from the weights host")
    if entry.get(sha_key) and sha256_file(path) != entry[sha_key]:
        raise InferenceError(f"weights {entry['name']}: {entry[key]} does not match its sha256 {entry[sha_key]}")
    return path


@dataclass
class Predictor:
    """What one model needs to answer for images: its method (post-processing), class names, test
    transforms (pre-processing) and a backend (the model call)."""

    method: Method
    class_names: list[str]
    transforms: Callable[[dict[str, Any]], dict[str, Any]]
    backend: Backend

    def sample(self, image: np.ndarray, name: str) -> dict[str, Any]:
        """One decoded RGB image, pre-processed (no model, no lock needed)."""
        return self.transforms(image_sample(image, name))

    def predict_batch(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        return self.backend.predict(batch)

    def predict(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Pre-processed samples (:meth:`sample`) as one batch through the model."""
        return self.predict_batch(self.method.collate(samples))

    def describe(self, prediction: dict[str, Any]) -> dict[str, Any]:
        """The prediction as ``predictions.json`` holds it (without ``path``)."""
        return self.method.describe(prediction, self.class_names)

    def draw(self, image: np.ndarray, prediction: dict[str, Any]) -> np.ndarray | None:
        return self.method.draw(image, prediction, self.class_names)

    def files(self, prediction: dict[str, Any], name: str) -> dict[str, bytes]:
        """The extra files the predict phase writes beside the drawing (seg: ``<stem>_mask.png``)."""
        return self.method.prediction_files(prediction, name)

    def answer(self, prediction: dict[str, Any], name: str, image: np.ndarray | None = None) -> dict[str, Any]:
        """The model server's JSON for one image: :meth:`describe`, the extra files base64-encoded under
        ``files``, and with ``image`` given the drawing as a base64 PNG under ``drawn``."""
        out = {"name": name, **self.describe(prediction)}
        files = self.files(prediction, name)
        if files:
            out["files"] = {file: base64.b64encode(data).decode() for file, data in files.items()}
        drawn = self.draw(image, prediction) if image is not None else None
        if drawn is not None:
            out["drawn"] = base64.b64encode(encode_png(drawn)).decode()
        return out


def encode_png(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("cannot encode the drawing as PNG")
    return data.tobytes()


def entry_hypes(entry: dict[str, Any]) -> dict[str, Any]:
    """The resolved hypes an entry was published with (re-resolved: defaults added since then apply)."""
    hypes = entry.get("hypes")
    if not isinstance(hypes, dict):
        raise InferenceError(f"weights {entry.get('name')} were published without their hypes (before serving "
                             "existed): publish the job again to serve them")
    return resolve_hypes(hypes)


def load_predictor(entry: dict[str, Any], directory: str, device: str = "cpu", backend: str = "torch") -> Predictor:
    """The predictor of a weights host entry (``directory`` holds its file) on ``device``."""
    hypes = entry_hypes(entry)
    class_names = list(entry["class_names"])
    method = trained_method(hypes, class_names, entry.get("metadata"))
    try:
        built = BACKENDS.get(backend)(method, entry, directory, torch.device(device))
    except WeightsError as exc:
        raise InferenceError(str(exc)) from None
    return Predictor(method.eval(), class_names, build_transforms(hypes, "test"), built)
