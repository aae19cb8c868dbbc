"""Masks stay aligned with their images through random_scale, random_crop and random_hflip, are
resized nearest (labels stay labels) and padded with mask_fill; collate pads with the ignore value;
predicted masks are uint8 class indices while the classes fit a byte."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import cauchy.models  # noqa: F401
from cauchy.datasets.rng import SampleKey, sample_stream
from cauchy.datasets.transforms import build_transforms
from cauchy.methods.seg import SegmentationMethod, collate_segmentation, slide_windows
from cauchy.registry import MODELS


def labelled_image(gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A blocky label map and an image whose red channel is 40 * label."""
    mask = np.kron(gen.integers(0, 5, size=(6, 7)), np.ones((9, 9), dtype=np.int64)).astype(np.uint8)
    image = np.zeros(mask.shape + (3,), np.uint8)
    image[..., 0] = mask * 40
    return image, mask


@pytest.mark.parametrize("seed", range(6))
def test_geometry_keeps_mask_aligned(seed: int) -> None:
    gen = np.random.default_rng(seed)
    image, mask = labelled_image(gen)
    compose = build_transforms([{"name": "random_scale", "scale": [0.5, 2.0], "interpolation": "nearest"},
                                {"name": "random_crop", "size": [40, 40], "fill": 250, "mask_fill": 255},
                                {"name": "random_hflip"}])
    with sample_stream(SampleKey(index=seed, seed=seed, epoch=0)):
        out = compose({"image": image, "mask": mask})
    assert out["image"].shape[:2] == out["mask"].shape == (40, 40)
    padded = out["mask"] == 255
    assert (out["image"][..., 0][padded] == 250).all()
    # cv2's nearest image resize and the mask's (pixel centres) may differ by a pixel at label edges
    kernel = np.ones((3, 3), np.uint8)
    interior = ~padded & (cv2.dilate(out["mask"], kernel) == cv2.erode(out["mask"], kernel))
    assert interior.sum() > 400
    assert (out["image"][..., 0][interior] == out["mask"][interior].astype(np.int64) * 40).all()
    assert set(np.unique(out["mask"])) <= set(range(5)) | {255}


def test_collate_pads_masks_with_ignore_and_keeps_original_masks() -> None:
    samples = [{"image": torch.zeros(3, h, w), "mask": torch.zeros(h, w, dtype=torch.int64),
                "orig_mask": np.ones((h + 1, w + 1), np.uint8), "orig_size": (h + 1, w + 1), "path": f"{h}.jpg"}
               for h, w in ((4, 6), (5, 3))]
    batch = collate_segmentation(samples, ignore_index=200)
    assert batch["image"].shape == (2, 3, 5, 6) and batch["mask"].shape == (2, 5, 6)
    assert (batch["mask"][0, 4] == 200).all() and (batch["mask"][1, :, 3:] == 200).all()
    assert batch["image_sizes"].tolist() == [[4, 6], [5, 3]]
    assert [tuple(m.shape) for m in batch["orig_mask"]] == [(5, 7), (6, 4)]


def test_slide_windows_cover_the_image() -> None:
    assert slide_windows(10, 16, 8) == [0]
    assert slide_windows(40, 16, 12) == [0, 12, 24]
    assert slide_windows(37, 16, 12) == [0, 12, 21]


@pytest.mark.parametrize(("classes", "dtype"), [(5, torch.uint8), (255, torch.uint8), (256, torch.int64)])
def test_predicted_masks_are_the_argmax_in_the_narrowest_type(classes: int, dtype: torch.dtype) -> None:
    method = SegmentationMethod(MODELS.build("tiny_unet", num_classes=classes, widths=[4, 4]).eval())
    torch.manual_seed(0)
    batch = {"image": torch.randn(1, 3, 16, 20), "image_sizes": torch.tensor([[16, 20]]),
             "orig_size": torch.tensor([[16, 20]])}
    mask = method.predict(batch)[0]["mask"]
    with torch.no_grad():
        expected = method.model(batch["image"])["out"][0].argmax(dim=0)
    assert mask.dtype == dtype and torch.equal(mask.long(), expected)
