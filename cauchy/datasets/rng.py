"""Random numbers for augmentation: in training, one stream per sample, seeded by (run seed, epoch, index).

The training sampler hands out :class:`SampleKey` s and :class:`SeededSamples` loads each sample with
its own stream current, so a sample's augmentation depends on the run seed, the epoch and its index
alone: the same with 0 or 8 workers, and a run resumed mid-epoch draws exactly what the uninterrupted
run drew (no per-worker stream to save in checkpoints).

Outside such a sample (evaluation, tests, notebooks) transforms draw from a process stream that
follows torch's seed: ``torch.manual_seed`` with a new value restarts it; :func:`reseed` restarts it
with the same value.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

_seed: int | None = None
_generator: np.random.Generator | None = None
_sample_entropy: tuple[int, ...] | None = None  # set while a keyed sample loads; its stream is made on first use
_sample_generator: np.random.Generator | None = None


class SampleKey(NamedTuple):
    """What the training sampler yields: which sample, and the (run seed, epoch) its stream derives from."""

    index: int
    seed: int
    epoch: int


def reseed(seed: int) -> np.random.Generator:
    """Restart the process stream from ``seed`` (also after a repeated ``manual_seed(seed)``)."""
    global _seed, _generator
    _seed = seed
    _generator = np.random.default_rng(seed)
    return _generator


def rng() -> np.random.Generator:
    """The current sample's stream while a keyed sample loads, else this process's stream."""
    global _sample_generator
    if _sample_entropy is not None:
        if _sample_generator is None:
            _sample_generator = np.random.default_rng(_sample_entropy)
        return _sample_generator
    seed = torch.initial_seed()
    if _generator is None or seed != _seed:
        return reseed(seed)
    return _generator


@contextmanager
def sample_stream(key: SampleKey) -> Iterator[None]:
    """Make ``key``'s own stream the one :func:`rng` returns (created only if a transform draws)."""
    global _sample_entropy, _sample_generator
    saved = _sample_entropy, _sample_generator
    _sample_entropy, _sample_generator = (key.seed, key.epoch, key.index), None
    try:
        yield
    finally:
        _sample_entropy, _sample_generator = saved


class SeededSamples(Dataset):
    """``dataset`` indexed by :class:`SampleKey`: each sample is loaded with its own augmentation stream."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: SampleKey) -> Any:
        with sample_stream(key):
            return self.dataset[key.index]
