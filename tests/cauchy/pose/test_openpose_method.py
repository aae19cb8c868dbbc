"""The openpose method on sticks data: its targets decode back to the true people in original
pixels, it trains, and bad settings are named by their hypes key."""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from cauchy.build import build_dataset, build_method
from cauchy.hypes import HypesError, load_hypes, resolve_hypes
from cauchy.models.pose.openpose import OpenPose

HYPES = "hypes/pose/openpose_small_sticks.json"


def sticks_hypes(root: str, **changes: Any) -> dict[str, Any]:
    h = resolve_hypes(load_hypes(HYPES), [f"data.data_dir={root}", "data.workers=0", "network.params.width=16",
                                          "network.params.stages=2"])
    for key, value in changes.items():
        section, name = key.split("__")
        h[section][name] = value
    return h


def batch_of(h: dict[str, Any], split: str, method: Any) -> tuple[dict[str, Any], Any]:
    dataset = build_dataset(h, split)
    method.use_metadata(dataset.metadata)
    return method.prepare(method.collate([dataset[i] for i in range(len(dataset))]), torch.device("cpu")), dataset


def nearest_errors(truth: dict[str, Any], predicted: np.ndarray) -> list[float]:
    """Per annotated person, the mean distance over its labelled joints to the closest prediction."""
    out = []
    for person in np.asarray(truth["keypoints"]):
        labelled = person[:, 2] > 0
        if predicted.shape[0] == 0:
            out.append(np.inf)
            continue
        found = predicted[:, labelled, 2] > 0
        dist = np.linalg.norm(predicted[:, labelled, :2] - person[None, labelled, :2], axis=-1)
        out.append(float(np.where(found, dist, 1e3).mean(axis=1).min()))
    return out


def test_targets_decode_back_to_the_people_in_original_pixels(sticks: str) -> None:
    """Heatmaps and fields drawn from the ground truth, grouped as predictions are: the people come
    back, in the original image's pixels (the val images are resized to 160 for the network). Nearly
    all: where two people's limbs cross, their fields average there and a joint can go to the wrong
    person, as in the paper."""
    h = sticks_hypes(sticks)
    method = build_method(h, 14)
    batch, _ = batch_of(h, "val", method)
    grid = tuple(-(-v // method.model.stride) for v in batch["image"].shape[-2:])
    pafs, heatmaps = method.targets(batch, grid)
    assert pafs.shape == (len(batch["image"]), 28, *grid) and heatmaps.shape == (len(batch["image"]), 14, *grid)
    predictions = method.decode(pafs, heatmaps, batch)
    errors = [e for truth, p in zip(batch["truth"], predictions)
              for e in nearest_errors(truth, p["keypoints"].numpy())]
    assert len(errors) >= 8 and np.mean(np.array(errors) < 1.0) >= 0.8 and np.median(errors) < 0.3, errors
    for p in predictions:
        assert p["keypoints"].shape[1:] == (14, 3) and p["scores"].shape == (len(p["keypoints"]),)


def test_training_lowers_the_loss(sticks: str) -> None:
    torch.manual_seed(0)
    h = sticks_hypes(sticks)
    method = build_method(h, 14)
    batch, _ = batch_of(h, "train", method)
    optimizer = torch.optim.Adam(method.parameters(), lr=3e-3)
    method.train()
    first = {k: v.detach() for k, v in method.forward_train(batch).items()}
    assert set(first) == {"loss", "loss_paf", "loss_heatmap"}
    for _ in range(15):
        optimizer.zero_grad()
        loss = method.forward_train(batch)["loss"]
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.7 * float(first["loss"])


def test_bad_settings_name_their_key(sticks: str) -> None:
    h = sticks_hypes(sticks)
    with pytest.raises(HypesError, match=r"^target\.blur: unknown key"):
        build_method(sticks_hypes(sticks, target__blur=1), 14)
    with pytest.raises(HypesError, match=r"^target\.grouping\.min_limbs: unknown key"):
        build_method(sticks_hypes(sticks, target__grouping={"min_limbs": 2}), 14)
    wrong = copy.deepcopy(h)
    wrong["network"]["params"]["num_limbs"] = 13
    method = build_method(wrong, 14)
    with pytest.raises(HypesError, match=r"^network\.params\.num_limbs: is 13 but the data's skeleton has 14"):
        batch_of(wrong, "val", method)
    other = copy.deepcopy(h)
    other["network"] = {**other["network"], "model_name": "tiny_unet", "params": {}}
    with pytest.raises(HypesError, match=r"^network\.model_name: method openpose needs an OpenPose model"):
        build_method(other, 14)


class Oracle(OpenPose):
    """An OpenPose whose outputs are given: for each input it knows, one stage's fields and heatmaps."""

    def __init__(self, answers: list[tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]]) -> None:
        super().__init__(nn.Identity(), 3, 4, num_classes=14, num_limbs=14, stages=1, width=4, first_hidden=4)
        self.answers = answers

    def forward(self, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [next(out for image, out in self.answers if torch.equal(image, images))]


def test_flip_test_averages_the_mirror_images_fields_mapped_back(sticks: str) -> None:
    """Given the true fields of an image and of its mirror image, the flip test gives back the image's
    own: heatmaps with left and right swapped, every limb's field from its mirror limb (the hips' limb
    runs the other way in the mirror) with x negated. Before the flip test the mirror pass did not exist."""
    h = sticks_hypes(sticks)
    method = build_method(h, 14)
    batch, _ = batch_of(h, "val", method)
    images = batch["image"]
    width = images.shape[-1]
    grid = tuple(v // method.model.stride for v in images.shape[-2:])
    index = method.flip_index
    mirrored = []
    for kps in batch["keypoints"]:
        m = torch.as_tensor(kps, dtype=torch.float32).clone()
        m[..., 0] = width - m[..., 0]
        mirrored.append(m[:, index])
    truth = method.targets(batch, grid)
    mirror_truth = method.targets({"image": images.flip(-1), "keypoints": mirrored}, grid)
    assert not torch.allclose(truth[0], mirror_truth[0].flip(-1))  # the fields do change in a mirror
    method.model = Oracle([(images, truth), (images.flip(-1), mirror_truth)])
    pafs, heatmaps = method.with_mirror(images, *truth)
    torch.testing.assert_close(heatmaps, truth[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(pafs, truth[0], atol=1e-5, rtol=0)
    plain = build_method(sticks_hypes(sticks, target__flip_test=False), 14)
    assert plain.flip_test is False and method.flip_test is True
