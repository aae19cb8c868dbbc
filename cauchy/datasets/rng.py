"""Random numbers for augmentation, reproducible under ``torch.manual_seed`` and per DataLoader worker.

Torch seeds each worker with ``base_seed + worker_id`` (``base_seed`` drawn from the main
process's generator), so a numpy generator derived from ``torch.initial_seed()`` differs per worker
and per epoch, yet repeats when the run is seeded. The generator is rebuilt whenever that seed
changes (a new worker, a new ``torch.manual_seed`` value). Calling ``torch.manual_seed`` again
with the *same* value does not restart it: call :func:`reseed` for that (tests, notebooks).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

_seed: int | None = None
_generator: np.random.Generator | None = None


def reseed(seed: int) -> np.random.Generator:
    """Restart the augmentation stream from ``seed`` (also after a repeated ``manual_seed(seed)``)."""
    global _seed, _generator
    _seed = seed
    _generator = np.random.default_rng(seed)
    return _generator


def rng() -> np.random.Generator:
    """The generator for the current process, following torch's (worker) seed."""
    seed = torch.initial_seed()
    if _generator is None or seed != _seed:
        return reseed(seed)
    return _generator


def get_state() -> dict:
    """This process's augmentation stream (seed and generator position), for checkpoints."""
    generator = rng()
    return {"seed": _seed, "bit_generator": generator.bit_generator.state}


def set_state(state: dict) -> None:
    """Continue the augmentation stream exactly where ``get_state`` left it (exact resume)."""
    reseed(state["seed"]).bit_generator.state = state["bit_generator"]


def get_state() -> dict[str, Any]:
    """The current process's stream position, for checkpoints (matters when workers == 0)."""
    generator = rng()
    return {"seed": _seed, "bit_generator": generator.bit_generator.state}


def set_state(state: dict[str, Any]) -> None:
    """Continue the stream saved by :func:`get_state`.

    The stream is restarted whenever torch's initial seed changes, so restore torch's RNG state
    (``torch.set_rng_state`` carries its seed) before calling this.
    """
    reseed(state["seed"]).bit_generator.state = state["bit_generator"]
