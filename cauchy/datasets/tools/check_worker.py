"""Loading every image of the opened splits in worker processes, each returning the small
:class:`ItemFacts` of its images and drawing the first ones of each split as previews.

The splits are checked as they are opened: the first one is opened before the workers fork (they
inherit it), the others while the workers already check the earlier ones (the main process parses
the next split's annotations as the workers decode; each later split reaches the workers through a
pickle file, read once per worker). So the reading of annotations overlaps the decoding, except for
the first split's, and the caller opens the largest split last.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import keep_freed_memory
from cauchy.datasets.tools.item_facts import ItemFacts, facts_of
from cauchy.datasets.tools.previews import draw_preview

PREVIEWS_PER_SPLIT = 8
CHUNK = 64  # images per task handed to a worker, at most
Chunk = tuple[str, Sequence[int], "str | None"]  # split, image indices, the split's hand-over file (None: inherited)


def named_file(message: str) -> str:
    """The file a DatasetError names (its messages start with it)."""
    return message.split(": ", 1)[0]


class Inspection:
    """What the workers share: the task, the splits opened so far and where previews go."""

    def __init__(self, task: str, previews: Path) -> None:
        self.task, self.previews = task, previews
        self.views: dict[str, Any] = {}

    def view(self, split: str, handover: str | None) -> Any:
        """The split's reader: inherited, or loaded from its hand-over file the first time."""
        if split not in self.views:
            assert handover is not None
            with open(handover, "rb") as fh:
                self.views[split] = pickle.load(fh)
        return self.views[split]

    def check(self, chunk: Chunk) -> list[ItemFacts]:
        split, indices, handover = chunk
        view = self.view(split, handover)
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


_INSPECTION: Inspection | None = None  # set just before the pool forks


def _check(chunk: Chunk) -> list[ItemFacts]:
    assert _INSPECTION is not None
    return _INSPECTION.check(chunk)


def chunks(split: str, n: int, workers: int, handover: str | None = None) -> list[Chunk]:
    """A split's images in tasks of up to CHUNK, at least 8 per worker where the split allows."""
    size = max(1, min(CHUNK, n // (workers * 8)))
    return [(split, range(start, min(start + size, n)), handover) for start in range(0, n, size)]


def check_all(inspection: Inspection, opened: Iterable[tuple[str, Any]], workers: int) -> Iterator[list[ItemFacts]]:
    """The facts of every image of the splits ``opened`` yields as ``(split, reader)``, a batch at a time
    as workers finish them (in no fixed order). ``opened`` is consumed in the pool's task thread while
    the workers check the splits before: it should yield the largest split last."""
    global _INSPECTION
    splits = iter(opened)
    first = next(splits, None)
    if first is None:
        return
    inspection.views[first[0]] = first[1]

    def tasks(handovers: str) -> Iterator[Chunk]:
        yield from chunks(first[0], len(first[1]), workers)
        for number, (split, view) in enumerate(splits):
            handover = os.path.join(handovers, f"{number}.pickle")
            with open(handover, "wb") as fh:
                pickle.dump(view, fh, protocol=pickle.HIGHEST_PROTOCOL)
            yield from chunks(split, len(view), workers, handover)

    _INSPECTION = inspection
    try:
        with tempfile.TemporaryDirectory(prefix="cauchy-inspect-") as handovers, \
                multiprocessing.get_context("fork").Pool(workers, initializer=keep_freed_memory) as pool:
            yield from pool.imap_unordered(_check, tasks(handovers))
    finally:
        _INSPECTION = None
