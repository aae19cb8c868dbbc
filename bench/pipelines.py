"""What the input-pipeline benchmarks (cls, det, seg) compare Cauchy's pipeline with, in one place.

- ``torchvision_pil``: PIL decoding + ``transforms.v2`` ending in float conversion and normalisation
  in the workers (torchvision's classic recipe);
- ``torchvision_tensor``: ``torchvision.io.decode_jpeg`` + ``transforms.v2`` on uint8 tensors, uint8
  batches out (torchvision's fastest CPU path; normalisation left to the device, as Cauchy's
  pipeline leaves it: ``Method.prepare``);
- ``decode_only``: every file a sample reads, only decoded (the JPEG by ``decode_jpeg``, which decodes
  as fast as the cv2 decoder Cauchy uses; seg's palette PNG mask to its label indices, by PIL as the
  PIL side and Cauchy's reader must: cv2 and torchvision expand palettes to colours), through a
  DataLoader with the same batch size and workers, only the sizes sent back: the physical limit of any
  pipeline that reads these files.

Each benchmark gives its v2 transform (``transforms(normalise)``: with or without the final float
conversion and normalisation) and, per image, its targets (``target(index, (h, w), read_mask)``);
:func:`timed_pass` times one pass of any loader. The benchmark's JSON line reports ``ratio``
against the strongest torchvision side and ``of_decode_limit`` (``rounds.summary``).
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import psutil
import torch
from PIL import Image
from rounds import alternate, cpu_seconds
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.io import decode_image, decode_jpeg, read_file
from torchvision.transforms import v2

Target = Callable[[int, tuple[int, int], Callable[[str], tv_tensors.Mask]], Any]
DECODE_LIMIT = "decode_only"


def read_pil(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def read_tensor(path: str) -> tv_tensors.Image:
    return tv_tensors.Image(decode_jpeg(read_file(path)))


def read_pil_mask(path: str) -> tv_tensors.Mask:
    with Image.open(path) as png:
        return tv_tensors.Mask(torch.from_numpy(np.array(png)))


def read_tensor_mask(path: str) -> tv_tensors.Mask:
    return tv_tensors.Mask(decode_image(read_file(path))[0])


READERS = {"torchvision_pil": (read_pil, read_pil_mask), "torchvision_tensor": (read_tensor, read_tensor_mask)}


class TorchvisionFiles(Dataset):
    """``transforms(image, target)`` of JPEG ``paths`` decoded the way ``side`` (a key of READERS) does;
    ``target(index, (h, w), read_mask)`` builds the image's targets (labels, boxes, a mask file read
    the same way)."""

    def __init__(self, paths: list[str], side: str, transforms: v2.Transform, target: Target) -> None:
        self.paths, self.transforms, self.target = paths, transforms, target
        self.read_image, self.read_mask = READERS[side]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Any:
        image = self.read_image(self.paths[index])
        size = tuple(image.shape[-2:]) if isinstance(image, torch.Tensor) else (image.height, image.width)
        return self.transforms(image, self.target(index, size, self.read_mask))


class DecodeOnly(Dataset):
    """Each sample's files read and decoded (its JPEG, and its mask when ``mask_paths`` are given),
    nothing else: only the sizes leave the worker."""

    def __init__(self, paths: list[str], mask_paths: list[str] | None = None) -> None:
        self.paths, self.mask_paths = paths, mask_paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, ...]:
        shape = tuple(decode_jpeg(read_file(self.paths[index])).shape)
        if self.mask_paths is not None:
            shape += tuple(read_pil_mask(self.mask_paths[index]).shape)
        return shape


def to_model(normalise: bool, mean: tuple[float, ...], std: tuple[float, ...]) -> list[v2.Transform]:
    """The v2 pipelines' last steps: a tensor image, then (``normalise``) float32 ``(x - mean) / std``
    (other tv_tensors left as they are); without it the image stays uint8."""
    if not normalise:
        return [v2.ToImage()]
    return [v2.ToImage(), v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True), v2.Normalize(mean, std)]


def baseline_loaders(paths: list[str], transforms: Callable[[bool], v2.Transform], target: Target,
                     collate: Callable[[list], Any], batch_size: int, workers: int,
                     mask_paths: list[str] | None = None) -> dict[str, DataLoader]:
    """The two torchvision sides (``transforms(normalise)`` builds each its v2 pipeline: the PIL side
    normalising floats, the tensor side on uint8 to the end) and the decode limit (``mask_paths``: the
    mask files the samples read too), shuffled like the Trainer's loader, with persistent workers as
    Cauchy's side has."""
    common: dict[str, Any] = dict(batch_size=batch_size, shuffle=True, num_workers=workers,
                                  persistent_workers=workers > 0)
    loaders = {side: DataLoader(TorchvisionFiles(paths, side, transforms(side == "torchvision_pil"), target),
                                collate_fn=collate, **common) for side in READERS}
    loaders[DECODE_LIMIT] = DataLoader(DecodeOnly(paths, mask_paths), collate_fn=list, **common)
    return loaders


def timed_pass(loader: DataLoader, check: Callable[[Any], int], cpu: list[float]) -> float:
    """Images per second over one pass; ``check(batch)`` validates a batch and returns its size. The
    pass's CPU time per image (main process and workers, in microseconds) is appended to ``cpu``."""
    count = 0
    me = psutil.Process()
    start, start_cpu = time.perf_counter(), cpu_seconds(me)
    for batch in loader:
        count += check(batch)
    rate = count / (time.perf_counter() - start)
    cpu.append((cpu_seconds(me) - start_cpu) / count * 1e6)
    return rate


def images_in(batch: Any) -> int:
    """The decode limit's batches: lists of image shapes."""
    return len(batch)


def pipeline_rates(loaders: dict[str, DataLoader], check: Callable[[Any], int],
                   rounds: int) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Images per second of each loader per round (``rounds.alternate``), and the CPU figures
    (:func:`cpu_figures`); ``check`` validates the pipelines' batches (the decode limit's are only counted)."""
    cpu: dict[str, list[float]] = {name: [] for name in loaders}
    rates = alternate({name: partial(timed_pass, loader, images_in if name == DECODE_LIMIT else check, cpu[name])
                       for name, loader in loaders.items()}, rounds)
    return rates, cpu_figures({name: values[1:] for name, values in cpu.items()})  # the warm-up pass left out


def cpu_figures(cpu: dict[str, list[float]]) -> dict[str, Any]:
    """Median CPU microseconds per image of each side (main process and workers) and
    ``of_decode_only_cpu``: the limit's over the first side's. On a machine whose cores are all busy
    (other sessions' work) images/s follow the load of the moment, while CPU per image barely moves:
    this is the steadier fraction of the limit."""
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    first = next(iter(medians))
    print("  CPU us/image: " + ", ".join(f"{name} {value:.0f}" for name, value in medians.items()))
    return {"cpu_us_per_image": {name: round(value, 1) for name, value in medians.items()},
            f"of_{DECODE_LIMIT}_cpu": round(medians[DECODE_LIMIT] / medians[first], 3)}


def model_images(images: torch.Tensor, size: tuple[int, int]) -> int:
    """Checks a batch of images of ``size`` (h, w), normalised float32 or uint8 (normalised on the
    device by the consumer); returns how many it holds."""
    assert images.dtype in (torch.float32, torch.uint8) and tuple(images.shape[-2:]) == tuple(size), images.shape
    return len(images)
