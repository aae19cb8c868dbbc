"""Property: after any chain of geometric transforms each person's keypoints stay with its box, move
exactly as the sample's recorded ``affine`` says, and invisible points stay invisible.

People are told apart by their ``labels`` (a per-box field, filtered with the boxes); the recorded
map says where each original keypoint must be, and a mirror (negative determinant) says the
left/right joints have swapped by the sample's ``flip_index``.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cauchy.datasets import geometry
from cauchy.datasets.pose.skeleton import flip_index, flip_pairs_from_names
from cauchy.datasets.pose.transforms import RandomAffine, TopDownAffine, similarity
from cauchy.datasets.rng import SampleKey, sample_stream
from cauchy.datasets.transforms import RandomExpand, RandomHFlip, RandomResizedCrop, Resize

SETTINGS = settings(max_examples=80, deadline=None, database=None)
NAMES = ["nose", "left_eye", "right_eye", "left_hand", "right_hand"]
FLIP = flip_index(len(NAMES), flip_pairs_from_names(NAMES))


@st.composite
def people(draw):
    h, w = draw(st.integers(8, 64)), draw(st.integers(8, 64))
    n = draw(st.integers(1, 4))
    gen = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x0 = gen.uniform(0, w - 2, n)
    y0 = gen.uniform(0, h - 2, n)
    x1 = x0 + gen.uniform(1, w - x0)
    y1 = y0 + gen.uniform(1, h - y0)
    boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.float32)
    kps = np.zeros((n, len(NAMES), 3), np.float32)
    kps[..., 0] = gen.uniform(x0[:, None], x1[:, None], (n, len(NAMES)))
    kps[..., 1] = gen.uniform(y0[:, None], y1[:, None], (n, len(NAMES)))
    kps[..., 2] = gen.integers(0, 3, (n, len(NAMES)))
    kps[kps[..., 2] == 0] = 0  # COCO writes unlabelled joints as (0, 0, 0)
    image = gen.integers(0, 256, (h, w, 3)).astype(np.uint8)
    return {"image": image, "boxes": boxes, "keypoints": kps, "labels": np.arange(n), "flip_index": FLIP.copy(),
            "affine": np.eye(3)}


def crop_op(data):
    def apply(sample):
        h, w = sample["image"].shape[:2]
        x0, y0 = data.draw(st.integers(-w // 2, w - 1)), data.draw(st.integers(-h // 2, h - 1))
        return geometry.crop(sample, x0, y0, data.draw(st.integers(1, w + 8)), data.draw(st.integers(1, h + 8)),
                             min_visible=data.draw(st.sampled_from([0.0, 0.5])))
    return apply


def affine_op(data):
    def apply(sample):
        h, w = sample["image"].shape[:2]
        matrix = similarity((data.draw(st.floats(0, w)), data.draw(st.floats(0, h))), data.draw(st.floats(0.5, 2.0)),
                            data.draw(st.floats(-180, 180)), (data.draw(st.floats(0, 40)), data.draw(st.floats(0, 40))))
        return geometry.affine(sample, matrix, data.draw(st.integers(4, 48)), data.draw(st.integers(4, 48)))
    return apply


def top_down_op(data):
    def apply(sample):
        sample = {**sample, **{k: sample[k][:1] for k in ("boxes", "keypoints", "labels")}}  # one person
        return TopDownAffine(size=[32, 24], scale=[0.7, 1.3], rotation=40, shift=0.1)(sample)
    return apply


FIXED = [RandomHFlip(p=1.0), Resize(size=[20, 30]), RandomExpand(ratio=[1.0, 2.0], p=1.0),
         RandomResizedCrop(size=[24, 24], scale=[0.3, 1.0]), RandomAffine(scale=[0.7, 1.4], rotation=30, translate=0.2)]


@SETTINGS
@given(sample=people(), data=st.data())
def test_keypoints_stay_with_their_person_through_any_chain(sample, data):
    ops = data.draw(st.lists(st.sampled_from(["crop", "affine", "top_down"] + list(range(len(FIXED)))), max_size=5))
    out = sample
    with sample_stream(SampleKey(data.draw(st.integers(0, 1000)), 0, 0)):  # the random transforms' own stream
        for op in ops:
            if not len(out["boxes"]):
                break
            out = {"crop": crop_op, "affine": affine_op, "top_down": top_down_op}[op](data)(out) \
                if isinstance(op, str) else FIXED[op](out)
    h, w = out["image"].shape[:2]
    assert len(out["boxes"]) == len(out["keypoints"]) == len(out["labels"])
    matrix = out["affine"]
    mirrored = np.linalg.det(matrix[:2, :2]) < 0
    for row, person in enumerate(out["labels"]):
        original = sample["keypoints"][person][FLIP] if mirrored else sample["keypoints"][person]
        kps, box = out["keypoints"][row], out["boxes"][row]
        assert ((kps[:, 2] == 0) | (kps[:, 2] == original[:, 2])).all()  # kept as labelled, or dropped to 0
        visible = kps[:, 2] > 0
        expected = original[:, :2].astype(np.float64) @ matrix[:2, :2].T + matrix[:2, 2]
        np.testing.assert_allclose(kps[visible, :2], expected[visible], atol=2e-3 * max(1.0, np.abs(expected).max()))
        tol = 1e-3 * max(1.0, float(np.abs(box).max()))
        assert ((kps[visible, 0] >= box[0] - tol) & (kps[visible, 0] <= box[2] + tol)).all()
        assert ((kps[visible, 1] >= box[1] - tol) & (kps[visible, 1] <= box[3] + tol)).all()
        assert ((kps[visible, 0] < w) & (kps[visible, 1] < h)).all()


@SETTINGS
@given(sample=people())
def test_crop_drops_keypoint_rows_with_their_boxes(sample):
    h, w = sample["image"].shape[:2]
    out = geometry.crop(sample, w // 2, h // 2, w, h, min_visible=0.5)
    assert len(out["keypoints"]) == len(out["boxes"]) == len(out["labels"]) <= len(sample["boxes"])
    for row, person in enumerate(out["labels"]):
        np.testing.assert_allclose(out["keypoints"][row, :, :2], sample["keypoints"][person, :, :2] - [w // 2, h // 2],
                                   atol=1e-4)
