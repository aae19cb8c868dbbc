"""Batch tensors built where the loader runs: in a DataLoader worker, in shared memory the worker reuses.

``default_collate`` gives every batch fresh shared memory: the kernel zeroes it, the worker faults each
page in while copying the samples, and the memory is gone once the consumer drops the batch. On the
input-pipeline benchmarks that cost as much as the crop and resize of the images (about 130 us per
224x224 image in a worker, for a 4 us copy). Here each worker keeps a few slots of shared memory
(``memfd``) and writes batches into a free one; the process that receives the batch maps the slot
and marks it free again when the last tensor using that memory is gone (a finalizer on the array
the tensors keep alive), so a slot is never written while anything can still read it. When
every slot is in use (a consumer keeping batches), batches get fresh shared memory as before.

The receiver keeps each slot mapped once it has it: a slot's descriptor crosses (multiprocessing's
``DupFd``, a socket round trip to the worker's resource sharer, about 0.4 ms) only with the first batch
in it and after it grows; later batches name the slot and reuse the receiver's mapping, whose pages are
already in place. Mappings of workers that have ended are dropped when a new worker's first slot
arrives.

Images arrive from ``normalize`` as CHW views of HWC arrays (no transposing copy per sample):
:func:`stack` transposes them straight into the batch (``cv2.split`` into its planes, several times
faster than numpy's or torch's transposing copy), padding bottom/right where sizes differ.
"""
from __future__ import annotations

import math
import mmap
import os
import sys
import threading
import weakref
from collections.abc import Sequence
from multiprocessing.reduction import DupFd
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import get_worker_info

HEADER = 64  # bytes before a slot's data; the first is its flag: 1 while a batch in it may be read
SLOTS = 32  # per worker: its batches in flight (prefetch_factor) and being consumed, times the tensors per batch
POOLED = sys.platform == "linux"  # memfd_create


SlotKey = tuple[int, bytes, int]  # (worker pid, the worker's random token, slot index): unique across workers


class _Slot:
    """A worker's reusable shared buffer: a memfd, the worker's mapping of it, and which of its sizes
    (``generation``) the receiver has mapped."""

    def __init__(self, key: SlotKey, nbytes: int) -> None:
        self.key = key
        self.fd = os.memfd_create("cauchy-batch", os.MFD_CLOEXEC)
        self.generation, self.sent = 0, -1
        self.map = self._grow(nbytes)

    def _grow(self, nbytes: int) -> mmap.mmap:
        os.ftruncate(self.fd, HEADER + nbytes)
        self.nbytes = nbytes
        self.generation += 1
        return mmap.mmap(self.fd, HEADER + nbytes)

    def take(self, nbytes: int) -> None:
        if nbytes > self.nbytes:
            self.map = self._grow(nbytes)  # the old mapping closes once nothing exports it
        self.map[0] = 1

    def descriptor(self) -> DupFd | None:
        """The descriptor for the receiver when it has not mapped this size of the slot yet, else None."""
        if self.sent == self.generation:
            return None
        self.sent = self.generation
        return DupFd(self.fd)


_slots: list[_Slot] = []  # this worker's; the main process has none
_token: tuple[int, bytes] | None = None  # (pid, random bytes) of the process that made _slots
_mapped: dict[SlotKey, tuple[int, mmap.mmap]] = {}  # the receiver's: slot -> (generation, mapping)
_mapped_lock = threading.Lock()  # loaders' pin-memory threads receive side by side (training and validation)


def _forget_mappings() -> None:
    """In a forked child: none of the parent's mappings kept alive, and a lock no parent thread holds."""
    global _mapped_lock
    _mapped.clear()
    _mapped_lock = threading.Lock()


if POOLED:
    os.register_at_fork(after_in_child=_forget_mappings)


def _free_slot(nbytes: int) -> _Slot | None:
    """A slot no batch is read from, of at least ``nbytes``: the smallest that fits (small tensors
    keep to small slots), else a new one, else the largest free one grown; None when all ``SLOTS``
    are in use."""
    free = [s for s in _slots if s.map[0] == 0]
    fitting = [s for s in free if s.nbytes >= nbytes]
    if fitting:
        slot = min(fitting, key=lambda s: s.nbytes)
    elif len(_slots) < SLOTS:
        global _token
        if _token is None or _token[0] != os.getpid():  # a forked worker's own, not its parent's
            _token = (os.getpid(), os.urandom(8))
        slot = _Slot((*_token, len(_slots)), nbytes)
        _slots.append(slot)
    elif free:
        slot = max(free, key=lambda s: s.nbytes)
    else:
        return None
    slot.take(nbytes)
    return slot


def _layout(shape: Sequence[int], dtype: torch.dtype) -> tuple[int, np.dtype]:
    """A batch tensor's size in bytes and its numpy element type."""
    element = torch.empty((), dtype=dtype)
    return math.prod(shape) * element.element_size(), element.numpy().dtype


def _release(mapping: mmap.mmap) -> None:
    """The receiver's finalizer: the slot is free again."""
    mapping[0] = 0


def _map(key: SlotKey, generation: int, fd: DupFd | None, size: int) -> mmap.mmap:
    """The receiver's mapping of a slot: made from ``fd`` (closed at once: a process holding many batches
    holds no descriptors) when it comes, else the one kept since."""
    if fd is None:
        with _mapped_lock:
            kept = _mapped.get(key)
        if kept is None or kept[0] != generation:
            raise RuntimeError(f"batch slot {key[2]} of worker {key[0]} (size {generation}) was never mapped here: "
                               "the batch that carried its descriptor did not reach this process")
        return kept[1]
    handle = fd.detach()
    try:
        mapping = mmap.mmap(handle, HEADER + size)
    finally:
        os.close(handle)
    with _mapped_lock:
        if not any(k[:2] == key[:2] for k in _mapped):  # a new worker: forget the slots of ended ones
            ended = {pid for pid in {k[0] for k in _mapped} if not _alive(pid)}
            for old in [k for k in _mapped if k[0] in ended]:
                del _mapped[old]  # its batches still held keep their mapping alive
        _mapped[key] = (generation, mapping)
    return mapping


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (workers are reaped by their loader once they end)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        pass
    return True


def _receive(key: SlotKey, generation: int, fd: DupFd | None, size: int, shape: tuple[int, ...],
             dtype: torch.dtype) -> torch.Tensor:
    """Unpickling a :class:`_SlotTensor` in the receiving process: a plain tensor on the slot's mapping
    (``size`` bytes past the header), whose memory marks the slot free when the last tensor using it is gone."""
    mapping = _map(key, generation, fd, size)
    array = np.ndarray(shape, dtype=_layout(shape, dtype)[1], buffer=mapping, offset=HEADER)
    weakref.finalize(array, _release, mapping)
    return torch.from_numpy(array)


class _SlotTensor(torch.Tensor):
    """A batch tensor in a worker's slot: pickles as the slot (its descriptor the first time), not as a copy."""

    slot: _Slot

    def __reduce_ex__(self, protocol: int) -> tuple[Any, tuple[Any, ...]]:
        slot = self.slot
        return _receive, (slot.key, slot.generation, slot.descriptor(), slot.nbytes, tuple(self.shape), self.dtype)


def empty_batch(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised batch tensor: in a worker in one of its slots (fresh shared memory when none is
    free, as ``default_collate`` allocates), elsewhere in ordinary memory."""
    if get_worker_info() is None:
        return torch.empty(tuple(shape), dtype=dtype)
    nbytes, np_dtype = _layout(shape, dtype)
    slot = _free_slot(nbytes) if POOLED else None
    if slot is None:
        return torch.empty(tuple(shape), dtype=dtype).share_memory_()
    array = np.ndarray(tuple(shape), dtype=np_dtype, buffer=slot.map, offset=HEADER)
    out = torch.from_numpy(array).as_subclass(_SlotTensor)
    out.slot = slot
    return out


def _hwc(tensor: torch.Tensor) -> np.ndarray | None:
    """The HWC array behind a CHW uint8 image that is a view of HWC memory (what ``normalize`` gives),
    else None."""
    if tensor.dtype != torch.uint8 or tensor.dim() != 3:
        return None
    c, _, w = tensor.shape
    return tensor.permute(1, 2, 0).numpy() if c > 1 and tensor.stride() == (1, w * c, c) else None


def stack(tensors: Sequence[torch.Tensor], fill: float = 0, size: Sequence[int] | None = None) -> torch.Tensor:
    """``torch.stack`` into :func:`empty_batch`, tensors smaller than ``size`` (the trailing shape of
    the batch; the largest of each dimension by default) padded at the end of each dimension with
    ``fill``; CHW views of HWC images are transposed on the way."""
    largest = [max(t.shape[d] for t in tensors) for d in range(tensors[0].dim())]
    shape = [len(tensors), *(largest if size is None else size)]
    batch = empty_batch(shape, tensors[0].dtype)
    out = batch.as_subclass(torch.Tensor)  # written as a plain tensor (no subclass dispatch per operation)
    planes = out.numpy() if out.dtype == torch.uint8 else None  # numpy slicing: a fraction of torch's cost
    for i, tensor in enumerate(tensors):
        if tuple(tensor.shape) != tuple(shape[1:]):
            out[i].fill_(fill)
        hwc = _hwc(tensor) if planes is not None else None
        if hwc is not None:
            cv2.split(hwc, list(planes[i, :, :hwc.shape[0], :hwc.shape[1]]))
        else:
            out[(i, *(slice(0, n) for n in tensor.shape))].copy_(tensor)
    return batch


class _Packed(list):
    """Tensors that are views of one flat batch tensor, in a worker: pickles as that tensor and the
    shapes, and arrives as a plain list of the views."""

    def __init__(self, flat: torch.Tensor, shapes: list[tuple[int, ...]]) -> None:
        super().__init__(_unpack(flat.as_subclass(torch.Tensor), shapes))
        self.flat, self.shapes = flat, shapes

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _unpack, (self.flat, self.shapes)


def _unpack(flat: torch.Tensor, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
    sizes = [math.prod(shape) for shape in shapes]
    return [part.view(shape) for part, shape in zip(flat.split(sizes), shapes)]


def packed(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``tensors`` (one dtype, any shapes: boxes per image, original masks) copied into one flat
    :func:`empty_batch` and returned as views of it; from a worker the list crosses as that one buffer
    rather than one per tensor (each costs fresh shared memory and a descriptor in the worker, and a
    rebuild in the receiver), and arrives as a plain list."""
    shapes = [tuple(t.shape) for t in tensors]
    flat = empty_batch([sum(t.numel() for t in tensors)], tensors[0].dtype)
    for part, tensor in zip(_unpack(flat.as_subclass(torch.Tensor), shapes), tensors):
        part.copy_(tensor)
    return _unpack(flat, shapes) if get_worker_info() is None else _Packed(flat, shapes)
