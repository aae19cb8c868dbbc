"""One training loop for every task; everything around the step is a hook (detectron2-style)."""
from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler

from cauchy import distributed
from cauchy.datasets.rng import SampleKey, SeededSamples
from cauchy.methods.base import Method

log = logging.getLogger("cauchy.train")


class HookBase:
    """Called around training; ``state_dict`` is saved in checkpoints so resume is exact."""

    trainer: Trainer

    def before_train(self) -> None: ...
    def after_train(self) -> None: ...
    def before_step(self) -> None: ...
    def after_step(self) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class EpochBatchSampler(Sampler[list[SampleKey]]):
    """Batches of a seeded per-epoch permutation that can start mid-epoch (for exact resume).

    It yields :class:`SampleKey` s, which carry each sample's augmentation seed: load them through
    ``cauchy.datasets.rng.SeededSamples``.

    With ``world_size`` ranks, each step takes one global batch of ``batch_size * world_size``
    consecutive samples of the same permutation and gives rank ``rank`` its contiguous share
    (``batch_size`` each): the ranks together see what one process with the global batch would, in
    the same order, and a resumed run restarts at the same global batch. A last, partial global batch
    is split as evenly as it goes (dropped when some rank would get nothing, or with ``drop_last``).
    """

    def __init__(self, size: int, batch_size: int, *, shuffle: bool, drop_last: bool, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        self.size, self.batch_size = size, batch_size
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        full, rest = divmod(self.size, self.batch_size * self.world_size)
        return full if self.drop_last or rest < self.world_size else full + 1

    def __iter__(self) -> Iterator[list[SampleKey]]:
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        else:
            order = list(range(self.size))
        span = self.batch_size * self.world_size
        for b in range(self.start_batch, len(self)):
            batch = order[b * span:(b + 1) * span]
            yield [SampleKey(batch[i], self.seed, self.epoch)
                   for i in distributed.shard(len(batch), self.rank, self.world_size)]


def training_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = True, drop_last: bool = False,
                    seed: int = 0, rank: int = 0, world_size: int = 1, **kwargs: Any) -> DataLoader:
    """The loader the Trainer expects: resumable seeded batches of keys, each sample augmented from its
    own stream; ``batch_size`` is per rank. ``kwargs`` go to the DataLoader (workers, collate_fn, ...)."""
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle=shuffle, drop_last=drop_last,  # type: ignore[arg-type]
                                seed=seed, rank=rank, world_size=world_size)
    return DataLoader(SeededSamples(dataset), batch_sampler=sampler, **kwargs)


def rng_state() -> dict[str, Any]:
    """Every random stream training draws from, as plain values and tensors (weights-only loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                      cached),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Runs ``max_iters`` optimisation steps of ``method`` over ``loader``, calling hooks around each."""

    def __init__(self, method: Method, loader: DataLoader, optimizer: torch.optim.Optimizer, *,
                 max_iters: int, device: torch.device, hooks: Iterable[HookBase] = (),
                 amp: bool = False, amp_cpu: bool = False, clip_grad_norm: float | None = None) -> None:
        self.method, self.loader, self.optimizer = method, loader, optimizer
        self.max_iters, self.device = max_iters, device
        self.iters_per_epoch = len(loader)
        if self.iters_per_epoch == 0:
            raise ValueError("the training set yields no batch (empty, or smaller than a batch with drop_last)")
        self.clip_grad_norm = clip_grad_norm
        self.autocast = amp and (device.type == "cuda" or amp_cpu)
        self.amp_dtype = torch.float16 if device.type == "cuda" and not torch.cuda.is_bf16_supported() else torch.bfloat16
        # fp16 needs its gradients scaled (bf16 has float32's range); the scaler's state is in checkpoints
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.autocast and self.amp_dtype == torch.float16)
        self.iter = 0
        self.stop_requested = False
        self.last_losses: dict[str, torch.Tensor] = {}
        self.last_batch_size = 0
        self.hooks: list[HookBase] = []
        self.register_hooks(hooks)
        self._data_iter: Iterator[Any] | None = None
        self.train_module = self._train_module(method, device)

    @property
    def precision(self) -> str:
        """What the forward pass computes in, for the log: ``float32``, or ``bf16``/``fp16`` autocast."""
        return ("bf16 autocast" if self.amp_dtype == torch.bfloat16 else "fp16 autocast") if self.autocast else "float32"

    @staticmethod
    def _train_module(method: Method, device: torch.device) -> torch.nn.Module:
        """What a step calls with the batch: the method (its ``forward`` is ``forward_train``), wrapped in
        DistributedDataParallel when several ranks train (rank 0's weights are broadcast to the others
        here, and gradients are averaged over the ranks during ``backward``)."""
        if not distributed.is_distributed():
            return method
        return DistributedDataParallel(method, device_ids=[device] if device.type == "cuda" else None)

    def register_hooks(self, hooks: Iterable[HookBase]) -> None:
        for hook in hooks:
            hook.trainer = self
            self.hooks.append(hook)

    @property
    def epoch(self) -> int:
        """Completed epochs."""
        return self.iter // self.iters_per_epoch

    @property
    def epoch_float(self) -> float:
        return self.iter / self.iters_per_epoch

    @property
    def epoch_finished(self) -> bool:
        return self.iter % self.iters_per_epoch == 0

    def train(self) -> None:
        self.method.train()
        for hook in self.hooks:
            hook.before_train()
        while self.iter < self.max_iters and not self.stop_requested:
            for hook in self.hooks:
                hook.before_step()
            self.run_step()
            self.iter += 1
            for hook in self.hooks:
                hook.after_step()
        self._data_iter = None
        for hook in self.hooks:
            hook.after_train()

    def run_step(self) -> None:
        batch = self.method.prepare(self.next_batch(), self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.autocast):
            losses = self.train_module(batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["loss"]).backward()
        if self.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.method.parameters(), self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.last_losses = {k: v.detach() for k, v in losses.items()}
        self.last_batch_size = self.method.batch_size(batch)

    def next_batch(self) -> Any:
        if self._data_iter is None:
            sampler = self.loader.batch_sampler
            if isinstance(sampler, EpochBatchSampler):
                sampler.set_epoch(self.epoch, self.iter % self.iters_per_epoch)
            self._data_iter = iter(self.loader)
        try:
            return next(self._data_iter)
        except StopIteration:
            self._data_iter = None
            return self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        """Everything resume needs; with several ranks every rank calls it (their random streams are
        gathered: ``rng_ranks``), and rank 0 writes it."""
        ranks_rng = distributed.all_gather_objects(rng_state())
        return {
            "model": self.method.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "trainer": {"iter": self.iter, "max_iters": self.max_iters, "world_size": distributed.world_size()},
            "hooks": {type(h).__name__: h.state_dict() for h in self.hooks},
            "rng": ranks_rng[0],
            "rng_ranks": ranks_rng,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.method.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.iter = state["trainer"]["iter"]
        for hook in self.hooks:
            hook.load_state_dict(state["hooks"].get(type(hook).__name__, {}))
        ranks = state.get("rng_ranks") or [state["rng"]]
        saved_world = state["trainer"].get("world_size", 1)
        if saved_world != distributed.world_size():
            log.warning("the checkpoint was written by %d rank(s), resumed on %d: the data order continues from "
                        "global batch %d of the epoch, not exactly", saved_world, distributed.world_size(),
                        self.iter % self.iters_per_epoch)
        set_rng_state(ranks[distributed.rank()] if len(ranks) == distributed.world_size() else ranks[0])
        self._data_iter = None
