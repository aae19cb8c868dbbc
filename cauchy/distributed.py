"""One job on several processes (GPUs, or CPU processes): ``torch.distributed`` started torchrun-style.

The launcher (``torch.distributed.run``; ``run_tasks.py --nproc-per-node N`` calls it) sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` for each process; :func:`init` joins
them through the ``env://`` rendezvous, NCCL on CUDA and gloo on the CPU. Without ``WORLD_SIZE`` (or
with 1) everything here is the single-process case: rank 0 of 1, no process group, no communication.

Objects (evaluator states, flags, random states) travel over gloo even when the gradients go over
NCCL: a second, gloo process group carries them, so gathering a Python object never syncs a CUDA
stream or copies through the GPU. See docs/distributed.md.
"""
from __future__ import annotations

import logging
import os
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger("cauchy.distributed")

_objects_group: Any = None  # the gloo group for Python objects (the default group itself when it is gloo)


def env_world_size() -> int:
    """The number of processes the launcher started (1 when it started none)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    """This process's rank as the launcher set it (readable before :func:`init`)."""
    return int(os.environ.get("RANK", "0"))


def launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0, the one process that writes metrics, plots and checkpoints."""
    return rank() == 0


def init(device: torch.device) -> None:
    """Join the launcher's processes (``env://``): NCCL when ``device`` is CUDA, else gloo. A no-op for one
    process. ``device`` is this rank's (``cuda:LOCAL_RANK``, see :func:`device_for`)."""
    global _objects_group
    if env_world_size() <= 1 or is_distributed():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", init_method="env://", device_id=device)
        _objects_group = dist.new_group(backend="gloo")
    else:
        dist.init_process_group("gloo", init_method="env://")
        _objects_group = dist.group.WORLD
    log.info("rank %d of %d (local rank %d) on %s, backend %s", dist.get_rank(), dist.get_world_size(),
             local_rank(), device, dist.get_backend())


def shutdown() -> None:
    """Leave the process group (each rank, at the end of its phase)."""
    global _objects_group
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _objects_group = None


def device_for(device_type: str) -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` on CUDA (one GPU per process among the visible ones)."""
    if device_type == "cuda":
        return torch.device("cuda", local_rank())
    return torch.device(device_type)


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` for one process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj, group=_objects_group)
    return out


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (a stop asked of one rank stops all at one step)."""
    if not is_distributed():
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_objects_group)
    return bool(value.item())


def mean_over_ranks(values: list[float]) -> list[float]:
    """Each value averaged over the ranks, in float64 (the logged losses of a step are every rank's)."""
    if not is_distributed():
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor, group=_objects_group)
    return (tensor / world_size()).tolist()


def sum_over_ranks(value: int) -> int:
    if not is_distributed():
        return value
    tensor = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(tensor, group=_objects_group)
    return int(tensor.item())


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (batch-norm running statistics) on every rank: DistributedDataParallel broadcasts
    them before each forward, but each rank's last step then updates its own, so an evaluation pass
    would otherwise run slightly different models (rank 0's is the one checkpointed)."""
    if is_distributed():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def barrier() -> None:
    """Wait for every rank (rank 0 has written its checkpoint before any rank exits)."""
    if is_distributed():
        dist.barrier(group=_objects_group)


def shard(size: int, rank_: int, world: int) -> range:
    """Rank ``rank_``'s contiguous share of ``size`` items (the first ``size % world`` ranks hold one more):
    the ranks' shares, concatenated in rank order, are ``range(size)`` exactly (no padding, no repeat)."""
    base, extra = divmod(size, world)
    start = rank_ * base + min(rank_, extra)
    return range(start, start + base + (1 if rank_ < extra else 0))
