"""random_scale_crop: the multi-scale crop of segmentation training in one step (window drawn in the
original image, only it resized) behaves as random_scale followed by random_crop."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cauchy.datasets.rng import reseed, rng
from cauchy.datasets.transforms import RandomCrop, RandomScaleCrop

SETTINGS = settings(max_examples=60, deadline=None, database=None)


def scene(h: int, w: int) -> dict:
    image = np.full((h, w, 3), 30, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    image[h // 4:h // 2, w // 4:w // 2] = 200
    mask[h // 4:h // 2, w // 4:w // 2] = 1
    boxes = np.array([[w // 4, h // 4, w // 2, h // 2]], np.float32)
    return {"image": image, "mask": mask, "boxes": boxes, "labels": np.array([0])}


@SETTINGS
@given(h=st.integers(8, 90), w=st.integers(8, 90), size=st.integers(4, 64), seed=st.integers(0, 2**31))
def test_output_has_the_crop_size_and_boxes_stay_inside(h, w, size, seed) -> None:
    reseed(seed)
    out = RandomScaleCrop(size=size, scale=[0.5, 2.0], mask_fill=255)(scene(h, w))
    assert out["image"].shape == (size, size, 3) and out["mask"].shape == (size, size)
    assert set(np.unique(out["mask"]).tolist()) <= {0, 1, 255}
    assert (out["boxes"] >= 0).all() and (out["boxes"] <= size).all()
    assert len(out["boxes"]) == len(out["labels"])


@SETTINGS
@given(h=st.integers(8, 90), w=st.integers(8, 90), size=st.integers(4, 64), seed=st.integers(0, 2**31))
def test_at_scale_one_it_is_random_crop(h, w, size, seed) -> None:
    reseed(seed)
    fused = RandomScaleCrop(size=size, scale=[1.0, 1.0], fill=7, mask_fill=255)(scene(h, w))
    reseed(seed)
    rng().uniform(1.0, 1.0)  # random_scale_crop draws its factor first
    plain = RandomCrop(size=size, fill=7, mask_fill=255)(scene(h, w))
    for key in ("image", "mask", "boxes"):
        np.testing.assert_array_equal(fused[key], plain[key])


def test_a_doubled_scale_shows_the_object_twice_as_large() -> None:
    reseed(0)
    sample = scene(40, 40)  # the object is 10x10
    out = RandomScaleCrop(size=80, scale=[2.0, 2.0], interpolation="nearest")(sample)
    assert int(out["mask"].sum()) == 400 and out["boxes"].tolist() == [[20.0, 20.0, 40.0, 40.0]]
    np.testing.assert_allclose(out["scale_factor"], [2.0, 2.0])
