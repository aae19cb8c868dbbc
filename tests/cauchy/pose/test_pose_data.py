"""The COCO keypoints reader (metadata, samples, errors), the sticks set, flip pairs from names,
heatmap targets and their decoding, and the top-down crop."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.pose.coco import coco_keypoints
from cauchy.datasets.pose.heatmaps import decode_heatmaps, gaussian_heatmaps
from cauchy.datasets.pose.skeleton import flip_index, flip_pairs_from_names, mirror_name
from cauchy.datasets.pose.transforms import TopDownAffine
from cauchy.datasets.transforms import Normalize


def test_sticks_read_as_person_and_image_samples(sticks):
    people = coco_keypoints(sticks, "train", image_dir="images")
    images = coco_keypoints(sticks, "train", image_dir="images", samples="image")
    names = people.class_names
    assert len(names) == 14 and names[:2] == ["head", "neck"]
    assert len(images) == 8 and len(people) == sum(len(images[i]["boxes"]) for i in range(8)) > 8
    meta = people.metadata
    assert [names[a] + "/" + names[b] for a, b in meta["flip_pairs"]][0] == "left_shoulder/right_shoulder"
    assert len(meta["flip_pairs"]) == 6 and len(meta["skeleton"]) == 14 and len(meta["sigmas"]) == 14
    sample = people[0]
    assert sample["boxes"].shape == (1, 4) and sample["keypoints"].shape == (1, 14, 3)
    truth = sample["truth"]
    np.testing.assert_allclose(truth["keypoints"][sample["person"]], sample["keypoints"][0], atol=1e-4)
    assert sample["flip_index"][names.index("left_wrist")] == names.index("right_wrist")
    whole = images[0]
    assert whole["keypoints"].shape == (len(whole["boxes"]), 14, 3)
    with open(os.path.join(sticks, "annotations", "person_keypoints_train.json")) as fh:
        doc = json.load(fh)
    first = [a for a in doc["annotations"] if a["image_id"] == doc["images"][0]["id"]]
    np.testing.assert_allclose(whole["keypoints"][0].reshape(-1), first[0]["keypoints"], atol=1e-4)
    assert first[0]["num_keypoints"] == int((np.array(first[0]["keypoints"][2::3]) > 0).sum())


def test_sticks_are_deterministic_and_single_sets_have_one_person(tmp_path, sticks_prepare, sticks_single):
    for name in ("a", "b"):
        sticks_prepare.prepare(str(tmp_path / name), train=2, val=1, size=64, seed=5)
    for rel in ("annotations/person_keypoints_train.json", "images/000000.jpg"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    single = coco_keypoints(sticks_single, "val", image_dir="images", samples="image")
    assert all(len(single[i]["boxes"]) == 1 for i in range(len(single)))


@pytest.mark.parametrize("name, mirror", [("left_eye", "right_eye"), ("r_knee", "l_knee"), ("Wrist_Left", "Wrist_Right"),
                                          ("LEFT-HAND", "RIGHT-HAND"), ("nose", None), ("lower_lip", None)])
def test_mirror_names(name, mirror):
    assert mirror_name(name) == mirror


def test_flip_pairs_and_index_from_names():
    names = ["nose", "left_eye", "right_eye", "neck", "right_ear", "left_ear"]
    assert flip_pairs_from_names(names) == [(1, 2), (4, 5)]
    assert flip_index(6, [(1, 2), (4, 5)]).tolist() == [0, 2, 1, 3, 5, 4]


def _broken(sticks, tmp_path, change):
    root = tmp_path / "broken"
    shutil.copytree(sticks, root)
    path = root / "annotations" / "person_keypoints_train.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return str(root), str(path)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["annotations"][1].update(keypoints=d["annotations"][1]["keypoints"][:-3]), "must be 42 numbers"),
    (lambda d: d["annotations"][1]["keypoints"].__setitem__(2, 3), "visibilities must be 0, 1 or 2"),
    (lambda d: d["annotations"][1].update(num_keypoints=99), "'num_keypoints' is 99"),
    (lambda d: d["annotations"][1].update(bbox=[1, 2, 3]), "'bbox' must be"),
    (lambda d: d["annotations"][1].update(image_id=999), "image ids that 'images' does not list: 999"),
    (lambda d: d["categories"][0].update(skeleton=[[1, 15]]), "'skeleton' must be pairs"),
    (lambda d: d["categories"][0].update(sigmas=[0.1]), "'sigmas' must be 14"),
    (lambda d: d["categories"][0].pop("keypoints"), "'keypoints' list of joint names, found 0"),
])
def test_bad_annotations_are_errors_naming_file_and_annotation(sticks, tmp_path, change, message):
    root, path = _broken(sticks, tmp_path, change)
    with pytest.raises(DatasetError) as err:
        coco_keypoints(root, "train", image_dir="images")
    assert message in str(err.value) and path in str(err.value)
    if "annotations[" in str(err.value):
        assert "(id 2)" in str(err.value)


def test_other_splits_must_have_the_same_keypoints(sticks):
    with pytest.raises(DatasetError, match="differ from the class names"):
        coco_keypoints(sticks, "val", image_dir="images", class_names=["a", "b"])


def test_heatmaps_decode_back_to_their_keypoints():
    gen = np.random.default_rng(0)
    xy = gen.uniform(4, [44, 60], size=(3, 5, 2))
    kps = torch.tensor(np.concatenate([xy, np.full((3, 5, 1), 2.0)], axis=2))
    kps[0, 0, 2] = 0
    kps[1, 1, 0] = -3.0  # off the map
    heatmaps, weights = gaussian_heatmaps(kps, (16, 12), 4.0, 2.0)
    assert heatmaps.shape == (3, 5, 16, 12) and weights[0, 0] == 0 and weights[1, 1] == 0 and weights.sum() == 13
    assert heatmaps[0, 0].abs().sum() == 0
    decoded, scores = decode_heatmaps(heatmaps, 4.0)
    on = weights.bool()
    torch.testing.assert_close(decoded[on], kps[..., :2][on].float(), atol=1e-3, rtol=0)
    assert (scores[on] > 0.5).all()


def test_top_down_affine_centres_the_person_and_records_the_map(sticks):
    people = coco_keypoints(sticks, "train", image_dir="images", transforms=TopDownAffine(size=[64, 48]))
    sample = people[2]
    assert sample["image"].shape == (64, 48, 3)
    box = sample["boxes"][0]
    np.testing.assert_allclose([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], [24, 32], atol=1e-3)
    orig = sample["truth"]["keypoints"][sample["person"]]
    mapped = orig[:, :2] @ sample["affine"][:2, :2].T + sample["affine"][:2, 2]
    visible = sample["keypoints"][0, :, 2] > 0
    np.testing.assert_allclose(sample["keypoints"][0, visible, :2], mapped[visible], atol=1e-3)
    tensors = Normalize()(sample)
    assert tensors["affine"].dtype == torch.float64 and tensors["flip_index"].dtype == torch.int64


def test_target_heatmaps_decode_to_the_annotation_in_original_pixels_and_flip_back(sticks):
    from cauchy.datasets import geometry
    from cauchy.methods.pose import to_original, unflip

    people = coco_keypoints(sticks, "train", image_dir="images",
                            transforms=TopDownAffine(size=[96, 64], scale=[0.8, 1.2], rotation=30))
    for index in range(4):
        sample = people[index]
        kps = torch.tensor(sample["keypoints"])
        heatmaps, weights = gaussian_heatmaps(kps, (24, 16), 4, 1.5)
        xy, _ = to_original(heatmaps, torch.tensor(sample["affine"])[None], 4)
        truth = sample["truth"]["keypoints"][sample["person"]]
        cell = kps[0, :, :2] / 4  # heatmap coordinates: sub-pixel refinement needs a neighbour on each side
        on = (weights[0].bool() & (cell >= 1).all(1) & (cell[:, 0] < 15) & (cell[:, 1] < 23)).numpy()
        np.testing.assert_allclose(xy[0].numpy()[on], truth[on, :2], atol=1e-2)
        mirrored = geometry.hflip(sample)
        flipped, _ = gaussian_heatmaps(torch.tensor(mirrored["keypoints"]), (24, 16), 4, 1.5)
        torch.testing.assert_close(unflip(flipped, torch.tensor(sample["flip_index"])), heatmaps, atol=1e-5, rtol=0)
