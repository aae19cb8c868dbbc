"""Geometric transforms keep boxes, mask and keypoints consistent with the image (property tests).

Each generated sample paints its first box into the mask (1) and the image (255), and puts a
keypoint at the centre of a painted pixel, so after a transform the painted region, the box and
the keypoint can be compared directly.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cauchy.datasets import geometry
from cauchy.datasets.transforms import CenterCrop, RandomCrop, RandomExpand, RandomHFlip, RandomResizedCrop, Resize

SETTINGS = settings(max_examples=60, deadline=None, database=None)  # no .hypothesis/ in the checkout


@st.composite
def samples(draw):
    h, w = draw(st.integers(4, 48)), draw(st.integers(4, 48))
    n = draw(st.integers(1, 5))
    boxes = []
    for _ in range(n):
        x1, x2 = sorted(draw(st.lists(st.integers(0, w), min_size=2, max_size=2, unique=True)))
        y1, y2 = sorted(draw(st.lists(st.integers(0, h), min_size=2, max_size=2, unique=True)))
        boxes.append([x1, y1, x2, y2])
    boxes = np.array(boxes, dtype=np.float32)
    x1, y1, x2, y2 = boxes[0].astype(int)
    image = np.zeros((h, w, 3), np.uint8)
    image[y1:y2, x1:x2] = 255
    mask = (image[..., 0] > 0).astype(np.uint8)
    keypoints = np.array([[x1 + 0.5, y1 + 0.5, 2], [x2 - 0.5, y2 - 0.5, 1]], dtype=np.float32)
    return {"image": image, "mask": mask, "boxes": boxes, "labels": np.arange(n, dtype=np.int64),
            "difficult": np.zeros(n, bool), "keypoints": keypoints}


GEOMETRIC = [
    RandomHFlip(p=1.0),
    RandomCrop(size=[10, 14]),
    RandomCrop(size=40, min_visible=0.5),
    CenterCrop(size=[9, 30]),
    RandomExpand(ratio=[1.0, 3.0], p=1.0),
    RandomResizedCrop(size=[12, 20]),
    Resize(size=[30, 20]),
    Resize(size=24, keep_ratio=True),
]


def _painted_box(mask: np.ndarray) -> list[int] | None:
    ys, xs = np.nonzero(mask)
    return None if xs.size == 0 else [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@SETTINGS
@given(sample=samples(), index=st.integers(0, len(GEOMETRIC) - 1))
def test_boxes_stay_inside_and_targets_stay_aligned(sample, index):
    out = GEOMETRIC[index](sample)
    h, w = out["image"].shape[:2]
    boxes = out["boxes"]
    assert out["mask"].shape == (h, w) and out["image"].dtype == np.uint8 and boxes.dtype == np.float32
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert len(out["labels"]) == len(out["difficult"]) == len(boxes)
    assert set(out["labels"].tolist()) <= set(sample["labels"].tolist())


PIXEL_EXACT = [RandomHFlip(p=1.0), RandomCrop(size=[10, 14]), RandomCrop(size=60), CenterCrop(size=[9, 30]),
               RandomExpand(ratio=[1.0, 3.0], p=1.0)]


@SETTINGS
@given(sample=samples(), index=st.integers(0, len(PIXEL_EXACT) - 1))
def test_flip_crop_expand_move_box_mask_image_and_keypoints_together(sample, index):
    out = PIXEL_EXACT[index](sample)
    np.testing.assert_array_equal(out["image"][..., 0] == 255, out["mask"] == 1)
    painted = _painted_box(out["mask"])
    if 0 in out["labels"]:  # box 0 survived: it is exactly the painted region
        assert out["boxes"][out["labels"].tolist().index(0)].tolist() == painted
    else:  # a box is dropped only when nothing of it is left in the window
        assert painted is None
    for x, y, visible in out["keypoints"]:
        if visible:
            assert out["mask"][int(y), int(x)] == 1


@SETTINGS
@given(sample=samples())
def test_flip_twice_is_identity(sample):
    twice = geometry.hflip(geometry.hflip(sample, [(0, 1)]), [(0, 1)])
    for key in ("image", "mask", "boxes", "keypoints", "labels"):
        np.testing.assert_array_equal(twice[key], sample[key])


@SETTINGS
@given(sample=samples(), h=st.integers(1, 64), w=st.integers(1, 64))
def test_resize_scales_boxes_and_keypoints(sample, h, w):
    out = Resize(size=[h, w])(sample)
    old_h, old_w = sample["image"].shape[:2]
    scale = np.array([w / old_w, h / old_h] * 2, dtype=np.float32)
    assert out["image"].shape == (h, w, 3) and out["mask"].shape == (h, w)
    np.testing.assert_allclose(out["boxes"], sample["boxes"] * scale, rtol=1e-5)
    np.testing.assert_allclose(out["keypoints"][:, :2], sample["keypoints"][:, :2] * scale[:2], rtol=1e-5)


@SETTINGS
@given(sample=samples(), size=st.integers(8, 64))
def test_keep_ratio_resize_pads_bottom_right_only(sample, size):
    out = Resize(size=size, keep_ratio=True, fill=7, mask_fill=9)(sample)
    old_h, old_w = sample["image"].shape[:2]
    scale = min(size / old_h, size / old_w)
    new_h, new_w = round(old_h * scale), round(old_w * scale)
    assert out["image"].shape == (size, size, 3)
    assert (out["image"][new_h:] == 7).all() and (out["image"][:, new_w:] == 7).all()
    assert (out["mask"][new_h:] == 9).all() and (out["mask"][:, new_w:] == 9).all()
    np.testing.assert_allclose(out["boxes"][:, 0::2], sample["boxes"][:, 0::2] * new_w / old_w, rtol=1e-5)


def test_crop_drops_boxes_that_leave_and_clips_the_rest():
    sample = {"image": np.zeros((20, 20, 3), np.uint8),
              "boxes": np.array([[0, 0, 5, 5], [8, 8, 30, 12], [2, 2, 11, 11]], np.float32),
              "labels": np.array([3, 4, 5])}
    out = geometry.crop(sample, 10, 6, 10, 10)
    assert out["labels"].tolist() == [4, 5]
    assert out["boxes"].tolist() == [[0, 2, 10, 6], [0, 0, 1, 5]]
    strict = geometry.crop(sample, 10, 6, 10, 10, min_visible=0.2)
    assert strict["labels"].tolist() == [4]


def test_flip_swaps_keypoint_pairs_and_mirrors_x():
    sample = {"image": np.zeros((4, 10, 3), np.uint8),
              "keypoints": np.array([[1.5, 1, 2], [7, 2, 1], [5, 3, 0]], np.float32)}
    out = RandomHFlip(p=1.0, flip_pairs=[[0, 1]])(sample)
    assert out["keypoints"].tolist() == [[3, 2, 1], [8.5, 1, 2], [5, 3, 0]]


def test_transforms_do_not_modify_their_input():
    image = np.arange(12 * 10 * 3, dtype=np.uint8).reshape(12, 10, 3)
    sample = {"image": image, "boxes": np.array([[1, 1, 9, 9]], np.float32), "labels": np.array([0]),
              "mask": image[..., 0].copy(), "keypoints": np.array([[2, 2, 1]], np.float32)}
    before = {key: value.copy() for key, value in sample.items()}
    for transform in GEOMETRIC:
        transform(sample)
    for key, value in before.items():
        np.testing.assert_array_equal(sample[key], value)


@pytest.mark.parametrize("factory, message", [
    (lambda: Resize(size=[1, 2, 3]), "size: expected a positive int or"),
    (lambda: RandomResizedCrop(size=8, scale=[1.0, 0.5]), "scale: expected"),
    (lambda: Resize(size=8, interpolation="bicubicish"), "interpolation 'bicubicish' is not one of"),
    (lambda: RandomExpand(ratio=[0.5, 2.0]), r"ratio: expected \[low, high\] with 1 <= low"),
])
def test_bad_parameters_are_named(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_resize_keeps_a_border_box_inside_despite_float32_rounding():
    # 27 * (30 / 27) is 30.000002 in float32: found by the property test above.
    sample = {"image": np.zeros((27, 4, 3), np.uint8), "boxes": np.array([[0, 0, 1, 27]], np.float32)}
    assert Resize(size=[30, 20])(sample)["boxes"].tolist() == [[0.0, 0.0, 5.0, 30.0]]
