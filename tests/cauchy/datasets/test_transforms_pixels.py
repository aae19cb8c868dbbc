"""normalize, color_jitter, Compose/build_transforms and the worker-seeded augmentation RNG."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from cauchy.datasets import rng
from cauchy.datasets.transforms import ColorJitter, Compose, Normalize, RandomCrop, build_transforms
from cauchy.engine.trainer import training_loader
from cauchy.registry import TRANSFORMS


def test_normalize_outputs_uint8_chw_and_tensor_targets_and_its_normalizer_the_float_image():
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = 255
    sample = {"image": image, "label": 3, "boxes": np.array([[0, 0, 2, 2]], np.float32),
              "labels": np.array([1], np.int32), "mask": np.ones((4, 6), np.uint8),
              "keypoints": np.zeros((2, 3), np.float32), "difficult": np.array([0], np.uint8)}
    normalize = Normalize(div_value=255.0, mean=[0.5, 0.25, 0.0], std=[0.5, 0.25, 2.0])
    out = normalize(sample)
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (3, 4, 6)
    assert torch.equal(out["image"], torch.from_numpy(image).permute(2, 0, 1))
    normalised = normalize.normalizer(out["image"])
    assert normalised.dtype == torch.float32 and normalised.shape == (3, 4, 6)
    assert torch.allclose(normalised[:, 0, 0], torch.tensor([1.0, -1.0, 0.0]))
    assert out["boxes"].dtype == torch.float32 and out["labels"].dtype == torch.int64
    assert out["mask"].dtype == torch.uint8 and out["mask"].shape == (4, 6)  # its reader's type: widened on the device
    assert out["keypoints"].dtype == torch.float32 and out["difficult"].dtype == torch.bool
    assert out["label"] == 3


def test_normalize_rejects_bad_std():
    with pytest.raises(ValueError, match="normalize: expected 3 means, 3 stds > 0"):
        Normalize(std=[0.2, 0.0, 0.1])


def test_color_jitter_keeps_uint8_and_ranges():
    gray = {"image": np.full((8, 8, 3), 100, np.uint8)}
    for _ in range(20):
        out = ColorJitter(brightness=0.5)(gray)["image"]
        assert out.dtype == np.uint8 and out.shape == (8, 8, 3)
        assert len(np.unique(out)) == 1 and 50 <= out[0, 0, 0] <= 150
        # grey has no saturation or hue to change; contrast of a flat image is the image
        np.testing.assert_array_equal(ColorJitter(contrast=0.9, saturation=0.9, hue=0.5)(gray)["image"], gray["image"])


def test_color_jitter_hue_rotates_colour():
    red = {"image": np.zeros((2, 2, 3), np.uint8)}
    red["image"][..., 0] = 255
    outs = {tuple(ColorJitter(hue=0.5)(red)["image"][0, 0]) for _ in range(20)}
    assert len(outs) > 1
    with pytest.raises(ValueError, match="hue: expected 0 <= hue <= 0.5"):
        ColorJitter(hue=0.7)


def test_build_transforms_by_name_and_errors_name_the_entry():
    compose = build_transforms([{"name": "resize", "size": 4}, {"name": "normalize"}])
    out = compose({"image": np.zeros((9, 7, 3), np.uint8)})
    assert out["image"].shape == (3, 4, 4)
    with pytest.raises(ValueError, match=r"train\[1\] \(nope\): unknown transform 'nope'; valid: center_crop"):
        build_transforms([{"name": "resize", "size": 4}, {"name": "nope"}], where="train")
    with pytest.raises(ValueError, match=r"transforms\[0\] \(resize\): .*unexpected keyword argument 'sise'"):
        build_transforms([{"name": "resize", "sise": 4}])
    with pytest.raises(ValueError, match=r"transforms\[0\]: missing 'name'"):
        build_transforms([{"size": 4}])


def test_registered_names():
    assert {"resize", "random_resized_crop", "center_crop", "random_crop", "random_hflip", "color_jitter",
            "random_expand", "normalize"} <= set(TRANSFORMS.names())


class GradientImages(Dataset):
    """Each pixel encodes its position, so a crop's origin can be read back from its corner."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        ys, xs = np.mgrid[0:32, 0:32].astype(np.uint8)
        return {"image": np.stack([xs, ys, ys], axis=-1)}


def _crop_origins(seed: int, workers: int) -> list[tuple[int, int]]:
    torch.manual_seed(seed)
    rng.reseed(seed)  # same seed again in this process: restart the main-process stream
    crop = Compose([RandomCrop(size=8)])
    loader = DataLoader(GradientImages(), batch_size=None, num_workers=workers,
                        collate_fn=lambda sample: crop(sample)["image"])
    return [(int(image[0, 0, 0]), int(image[0, 0, 1])) for image in loader]


def test_augmentation_is_reproducible_and_differs_per_worker():
    first = _crop_origins(seed=0, workers=2)
    assert first == _crop_origins(seed=0, workers=2)
    assert first != _crop_origins(seed=1, workers=2)
    assert first[0::2] != first[1::2]  # worker 0 and worker 1 draw different streams
    assert _crop_origins(seed=0, workers=0) == _crop_origins(seed=0, workers=0)


class CroppedGradients(GradientImages):
    """Augmented in ``__getitem__``, like the real readers."""

    crop = Compose([RandomCrop(size=8)])

    def __getitem__(self, index: int) -> dict:
        return self.crop(super().__getitem__(index))


def _keyed_crop_origins(workers: int, epoch: int, start_batch: int = 0) -> list[tuple[int, int]]:
    """Crop origins of one training epoch, loaded the way the Trainer loads (keys, seeded samples)."""
    torch.manual_seed(workers)  # the process and worker streams differ per call: keyed samples ignore them
    loader = training_loader(CroppedGradients(), 2, seed=5, num_workers=workers,
                             collate_fn=lambda samples: [sample["image"] for sample in samples])
    loader.batch_sampler.set_epoch(epoch, start_batch)
    return [(int(image[0, 0, 0]), int(image[0, 0, 1])) for batch in loader for image in batch]


def test_a_samples_augmentation_depends_on_seed_epoch_and_index_only():
    epoch0 = _keyed_crop_origins(workers=0, epoch=0)
    assert _keyed_crop_origins(workers=2, epoch=0) == epoch0  # any number of workers
    assert _keyed_crop_origins(workers=2, epoch=0, start_batch=3) == epoch0[6:]  # resumed mid-epoch
    assert _keyed_crop_origins(workers=0, epoch=1) != epoch0
    assert len(set(epoch0)) > 1
