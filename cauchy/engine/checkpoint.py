"""Checkpoints written atomically (temporary file, fsync, rename): a crash never leaves half a file."""
from __future__ import annotations

import glob
import math
import os
from typing import Any

import torch

from cauchy import distributed, rundir
from cauchy.engine.trainer import HookBase
from cauchy.files import atomic_link, atomic_write
from cauchy.weights_only import UnsafeFileError, load_weights_only


def atomic_save(obj: Any, path: str) -> None:
    atomic_write(path, lambda fh: torch.save(obj, fh))


def load_checkpoint(path: str) -> dict[str, Any]:
    """A Cauchy checkpoint, unpickled weights-only: its RNG states, hypes and trainer state are tensors
    and plain values (``Trainer.state_dict``), so a file with code in it is refused, not run."""
    state = load_weights_only(path, "checkpoint")
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise UnsafeFileError(f"checkpoint {path} holds no model state (a dict with a 'model' state dict)")
    return state


def resolve_resume(run_dir: str, resume: str) -> str:
    """``latest`` means the run directory's latest checkpoint; anything else is a path."""
    if resume != "latest":
        return resume
    path = os.path.join(run_dir, rundir.LATEST_CHECKPOINT)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--resume latest: no checkpoint at {path}")
    return path


class CheckpointHook(HookBase):
    """Saves ``latest.pth`` each epoch and at the end, ``best.pth`` on a better metric,
    ``iter_NNNNNNN.pth`` every ``every`` iterations (keeping the last ``keep``). With several ranks
    every rank decides alike (the metrics are gathered) and only rank 0 writes.

    The names due at one iteration share one file: the state is serialized once and the other names
    are hard links to it (a better metric at the end of an epoch costs one write, not two). A best
    reported by the evaluation hook is written with that iteration's other checkpoints, so after
    every observer (a plateau schedule, say) has seen the metric.
    """

    def __init__(self, directory: str, *, extra: dict[str, Any], every: int | None = None, keep: int = 3,
                 best_metric: str | None = None, best_mode: str = "max") -> None:
        self.directory, self.extra = directory, extra
        self.every, self.keep = every, keep
        self.best_metric, self.best_mode = best_metric, best_mode
        self.best_value = -math.inf if best_mode == "max" else math.inf
        self.best_due = False

    def save(self, names: list[str]) -> None:
        """Write the trainer's state under ``names`` (plus ``best.pth`` when a better metric is pending)."""
        if self.best_due:
            names, self.best_due = [*names, rundir.BEST], False
        if not names:
            return
        state = self.trainer.state_dict()  # on every rank (it gathers their random streams)
        if not distributed.is_main():
            return
        state.update(self.extra)
        first = os.path.join(self.directory, names[0])
        atomic_save(state, first)
        for name in names[1:]:
            atomic_link(first, os.path.join(self.directory, name))

    def before_step(self) -> None:
        self.save([])  # a best reported after our after_step, when the evaluation hook comes later

    def after_step(self) -> None:
        it = self.trainer.iter
        periodic = bool(self.every) and it % self.every == 0
        names = [rundir.iter_checkpoint_name(it)] if periodic else []
        if self.trainer.epoch_finished and it < self.trainer.max_iters:
            names.append(rundir.LATEST)
        self.save(names)
        if periodic and distributed.is_main():
            for old in sorted(glob.glob(os.path.join(self.directory, rundir.ITER_GLOB)))[:-self.keep]:
                os.unlink(old)

    def after_train(self) -> None:
        self.save([rundir.LATEST])

    def observe(self, metrics: dict[str, Any]) -> None:
        """Called by the evaluation hook; ``best.pth`` is due when the chosen metric improved."""
        value = metrics.get(self.best_metric) if self.best_metric else None
        if not isinstance(value, (int, float)):
            return
        value = float(value)  # a numpy scalar would not load weights-only
        better = value > self.best_value if self.best_mode == "max" else value < self.best_value
        if better:
            self.best_value = value
            self.best_due = True

    def state_dict(self) -> dict[str, Any]:
        return {"best_value": self.best_value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.best_value = state["best_value"]
