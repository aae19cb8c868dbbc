"""batches.stack / batches.rows: the same batches from workers (reused shared memory) as in-process,
held batches never overwritten, padding, and label maps widened only on the device."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from cauchy.datasets import batches
from cauchy.datasets.transforms import Normalize
from cauchy.methods.det import collate_detection
from cauchy.methods.seg import SegmentationMethod, collate_segmentation
from cauchy.models.seg.tiny_unet import TinyUNet


class Samples(Dataset):
    """Normalised samples of varying size (image, mask, boxes), different per index and per pass."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        gen = np.random.default_rng(index)
        h, w = 20 + index % 5, 24 + index % 3
        boxes = gen.uniform(0, 20, size=(index % 4, 4)).astype(np.float32)
        mask = gen.integers(0, 5, (h, w), dtype=np.uint8)
        return Normalize()({"image": gen.integers(0, 256, (h, w, 3), dtype=np.uint8), "mask": mask,
                            "orig_mask": mask, "boxes": boxes, "labels": np.arange(len(boxes)), "orig_size": (h, w)})


def collate(samples: list[dict]) -> dict:
    seg = collate_segmentation(samples, ignore_index=255)
    det = collate_detection(samples, size_divisor=8)
    return {"image": seg["image"], "mask": seg["mask"], "padded": det["image"], "boxes": det["boxes"],
            "orig_mask": seg["orig_mask"]}


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in ("image", "mask", "padded")) and all(
        len(a[k]) == len(b[k]) and all(torch.equal(x, y) for x, y in zip(a[k], b[k])) for k in ("boxes", "orig_mask"))


def test_worker_batches_equal_in_process_ones_and_held_batches_are_never_overwritten():
    data = Samples(40)
    expected = [{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in b.items()}
                for b in DataLoader(data, batch_size=4, collate_fn=collate)]
    loader = DataLoader(data, batch_size=4, collate_fn=collate, num_workers=2, persistent_workers=True)
    held = []
    for _ in range(3):  # the slots are reused from the second pass on; the held batches keep theirs
        got = list(loader)
        assert len(got) == len(expected) and all(same(a, b) for a, b in zip(got, expected))
        assert all(type(b["boxes"]) is list and type(b["orig_mask"]) is list and b["image"].is_contiguous()
                   for b in got)
        held += got[:7]  # 5 tensors a batch: the workers run out of slots and fall back to fresh memory
    assert 5 * len(held) > 2 * batches.SLOTS
    assert all(same(b, expected[i % 7]) for i, b in enumerate(held))


def test_stack_pads_with_fill_and_transposes_hwc_views():
    small = torch.from_numpy(np.full((2, 3, 3), 7, np.uint8)).permute(2, 0, 1)
    large = torch.arange(3 * 4 * 5, dtype=torch.uint8).reshape(3, 4, 5)
    out = batches.stack([small, large], fill=9, size=(3, 4, 6))
    assert out.shape == (2, 3, 4, 6) and out.is_contiguous()
    assert bool((out[0, :, :2, :3] == 7).all()) and int((out[0] == 9).sum()) == 3 * (24 - 6)
    assert torch.equal(out[1, :, :, :5], large) and bool((out[1, :, :, 5] == 9).all())


def test_seg_masks_cross_narrow_and_are_widened_by_prepare():
    batch = collate_segmentation([Samples(2)[i] for i in range(2)])
    assert batch["mask"].dtype == torch.uint8 and bool((batch["mask"][0, -1] == 255).all())
    method = SegmentationMethod(TinyUNet(num_classes=5, widths=(4, 4, 4, 4)))
    prepared = method.prepare(batch, torch.device("cpu"))
    assert prepared["mask"].dtype == torch.int64 and prepared["image"].dtype == torch.float32


class Images(Dataset):
    """Same-size uint8 images: a batch fits any slot, so slots never grow."""

    def __len__(self) -> int:
        return 40

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.full((3, 16, 16), index, dtype=torch.uint8)


def stack_images(samples: list[torch.Tensor]) -> torch.Tensor:
    return batches.stack(samples)


def test_a_slot_descriptor_crosses_once_and_ended_workers_mappings_are_dropped(monkeypatch):
    """Descriptors cross with a slot's first batch, not with every batch: after the first pass the receiver
    maps next to nothing new. Once a loader's workers have ended, a new worker's first slot drops their mappings."""
    passes: list[dict[str, int]] = []
    real_map = batches._map

    def counting_map(key, generation, fd, size):
        passes[-1]["tensors"] += 1
        passes[-1]["descriptors"] += fd is not None
        return real_map(key, generation, fd, size)

    monkeypatch.setattr(batches, "_map", counting_map)
    loader = DataLoader(Images(), batch_size=4, collate_fn=stack_images, num_workers=2, persistent_workers=True)
    for _ in range(3):
        passes.append({"tensors": 0, "descriptors": 0})
        for i, batch in enumerate(loader):
            assert torch.equal(batch[:, 0, 0, 0], torch.arange(4 * i, 4 * i + 4, dtype=torch.uint8))
    assert [p["tensors"] for p in passes] == [10, 10, 10] and passes[0]["descriptors"] >= 2, passes
    # later passes reuse the mappings (at most a slot more: the last batch of a pass is still held while the
    # next pass prefetches); a descriptor with every batch would be 20
    assert passes[1]["descriptors"] + passes[2]["descriptors"] <= 2, passes
    first_workers = {key[:2] for key in batches._mapped}
    assert len(first_workers) == 2
    del loader  # its workers end
    for _ in DataLoader(Images(), batch_size=4, collate_fn=stack_images, num_workers=1):
        pass
    assert not first_workers & {key[:2] for key in batches._mapped}
