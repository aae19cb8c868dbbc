"""The uint8 pipeline plus normalisation on the model's device against the float pipeline it replaces:
each image normalised on the CPU as ``(image / div_value - mean) / std`` (float64 here), then padded
with zeros to the batch's size, as the collates padded normalised images before."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cauchy.build import build_method
from cauchy.datasets.transforms import Normalize
from cauchy.hypes import load_hypes, resolve_hypes
from cauchy.methods.base import Method
from cauchy.methods.det import collate_detection
from cauchy.methods.seg import collate_segmentation

DIV, MEAN, STD = 200.0, [0.4, 0.5, 0.6], [0.2, 0.3, 0.25]


class PaddedMethod(Method):
    padded_images = True


def float_batch(images: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """The old path: per image float normalisation on the CPU, then zero padding bottom/right."""
    out = np.zeros((len(images), 3, height, width))
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        out[i, :, :h, :w] = ((image / DIV - np.array(MEAN)) / np.array(STD)).transpose(2, 0, 1)
    return out


@pytest.mark.parametrize("collate", ["det", "seg", "stack"])
def test_uint8_batch_normalised_on_the_device_equals_the_float_path(collate: str) -> None:
    gen = np.random.default_rng(0)
    shapes = [(13, 17), (9, 20), (13, 20)] if collate != "stack" else [(11, 7)] * 3
    images = [gen.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in shapes]
    normalize = Normalize(div_value=DIV, mean=MEAN, std=STD)
    samples = [normalize({"image": image, "orig_size": image.shape[:2], "mask": np.zeros(image.shape[:2], np.uint8),
                          "boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)})
               for image in images]
    method = (PaddedMethod if collate != "stack" else Method)(nn.Identity())
    method.normalizer = normalize.normalizer
    batch = {"det": lambda: collate_detection(samples, size_divisor=8), "seg": lambda: collate_segmentation(samples),
             "stack": lambda: {"image": torch.stack([s["image"] for s in samples])}}[collate]()
    assert batch["image"].dtype == torch.uint8
    prepared = method.prepare(batch, torch.device("cpu"))["image"]
    assert prepared.dtype == torch.float32
    want = float_batch(images, *prepared.shape[-2:])
    np.testing.assert_allclose(prepared.numpy(), want, atol=1e-5)
    assert method.prepare({"image": prepared}, torch.device("cpu"))["image"] is prepared  # float passes as is


def test_build_method_takes_the_hypes_normalisation() -> None:
    h = resolve_hypes(load_hypes("hypes/cls/image_classifier_smallcnn_digits.json"))
    h["data"]["normalize"] = {"div_value": DIV, "mean": MEAN, "std": STD}
    method = build_method(h, num_classes=10)
    image = torch.full((1, 3, 2, 2), 100, dtype=torch.uint8)
    want = (100 / DIV - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(method.normalizer(image)[0, :, 0, 0].numpy(), want, atol=1e-6)
    assert not any(key.startswith("normalizer") for key in method.state_dict())  # checkpoints unchanged
