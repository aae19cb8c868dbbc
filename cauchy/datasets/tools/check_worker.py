"""Loading every image of the opened splits in worker processes, each returning the small
:class:`ItemFacts` of its images and drawing the first ones of each split as previews.

The workers are forked (they inherit the opened splits instead of receiving them: no copy of a large
split per worker) and the reading of annotations overlaps the decoding: each split but the last is
checked, as soon as it is open, by processes forked then (its chunks shared out in turn among them)
while the main process reads the next split; the last split by a pool forked once it is open (chunks
handed out as workers finish, a batch of facts at a time), which starts while the earlier splits'
workers finish theirs. The caller opens the largest split last: only the first split's reading is
then serial.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import cv2

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import keep_freed_memory
from cauchy.datasets.tools.item_facts import ItemFacts, facts_of
from cauchy.datasets.tools.previews import draw_preview

PREVIEWS_PER_SPLIT = 8
CHUNK = 64  # images per task handed to a worker, at most
Chunk = tuple[str, Sequence[int]]  # a split and indices of its images


def named_file(message: str) -> str:
    """The file a DatasetError names (its messages start with it)."""
    return message.split(": ", 1)[0]


class Inspection:
    """What the workers inherit: the task, the splits opened so far and where previews go."""

    def __init__(self, task: str, previews: Path) -> None:
        self.task, self.previews = task, previews
        self.views: dict[str, Any] = {}

    def check(self, chunk: Chunk) -> list[ItemFacts]:
        split, indices = chunk
        view = self.views[split]
        out = []
        for index in indices:
            try:
                sample = view[index]
            except DatasetError as exc:
                out.append(ItemFacts(split, index, named_file(str(exc)), problem=str(exc)))
                continue
            out.append(facts_of(self.task, sample, split, index, len(view.class_names)))
            if index < PREVIEWS_PER_SPLIT:
                skeleton = view.skeleton if self.task == "pose" else ()
                picture = draw_preview(self.task, sample, view.class_names, skeleton)
                cv2.imwrite(str(self.previews / f"{split}_{index}.jpg"), picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return out


_INSPECTION: Inspection | None = None  # set just before the workers fork


def _check(chunk: Chunk) -> list[ItemFacts]:
    assert _INSPECTION is not None
    return _INSPECTION.check(chunk)


def _check_share(share: Sequence[Chunk], results: Connection) -> None:
    """An early split's worker: its share of the chunks, the facts (or what went wrong) sent back at once."""
    keep_freed_memory()
    try:
        results.send([facts for chunk in share for facts in _check(chunk)])
    except Exception as exc:  # a bug, raised again in the main process
        results.send(exc)


def chunks(split: str, n: int, workers: int) -> list[Chunk]:
    """A split's images in tasks of up to CHUNK, at least 8 per worker where the split allows."""
    size = max(1, min(CHUNK, n // (workers * 8)))
    return [(split, range(start, min(start + size, n))) for start in range(0, n, size)]


def _start_early(split: str, view: Any, workers: int) -> list[tuple[multiprocessing.Process, Connection]]:
    """Processes forked now checking ``split``, each with every ``workers``-th chunk."""
    context = multiprocessing.get_context("fork")
    tasks = chunks(split, len(view), workers)
    started = []
    for first in range(min(workers, len(tasks))):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_check_share, args=(tasks[first::workers], send), daemon=True)
        process.start()
        send.close()
        started.append((process, receive))
    return started


def _collect(early: list[tuple[multiprocessing.Process, Connection]]) -> Iterator[list[ItemFacts]]:
    for process, receive in early:
        try:
            facts = receive.recv()
        except EOFError:
            process.join()
            raise RuntimeError(f"an inspection worker ended with exit code {process.exitcode}") from None
        process.join()
        if isinstance(facts, Exception):
            raise facts
        yield facts


def check_all(inspection: Inspection, openers: Sequence[tuple[str, Callable[[], Any]]],
              workers: int) -> Iterator[list[ItemFacts]]:
    """The facts of every image of the splits ``openers`` open (``(split, open)``, ``open()`` returning
    the split's reader or None), a batch at a time (in no fixed order). Each is opened in this process
    while the workers check the ones before; the last should be the largest."""
    global _INSPECTION
    _INSPECTION = inspection
    early: list[tuple[multiprocessing.Process, Connection]] = []
    try:
        for position, (split, open_split) in enumerate(openers):
            view = open_split()
            if view is None:
                continue
            inspection.views[split] = view
            if position < len(openers) - 1:
                early += _start_early(split, view, workers)
                continue
            with multiprocessing.get_context("fork").Pool(workers, initializer=keep_freed_memory) as pool:
                batches = pool.imap_unordered(_check, chunks(split, len(view), workers))
                yield from _collect(early)  # the earlier splits' workers finish while the pool's start
                early = []
                yield from batches
        yield from _collect(early)  # the last split did not open
    finally:
        for process, _ in early:
            process.kill()
        _INSPECTION = None
