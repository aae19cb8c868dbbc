"""Loading every image of the opened splits in worker processes (forked: they inherit the readers'
datasets instead of receiving them), each returning the small :class:`ItemFacts` of its images and
drawing the first ones of each split as previews."""
from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.tools.item_facts import ItemFacts, facts_of
from cauchy.datasets.tools.previews import draw_preview

PREVIEWS_PER_SPLIT = 8
CHUNK = 64  # images per task handed to a worker, at most


def named_file(message: str) -> str:
    """The file a DatasetError names (its messages start with it)."""
    return message.split(": ", 1)[0]


class Inspection:
    """What the workers inherit: the task, the opened splits and where previews go."""

    def __init__(self, task: str, views: dict[str, Any], previews: Path) -> None:
        self.task, self.views, self.previews = task, views, previews

    def check(self, chunk: tuple[str, Sequence[int]]) -> list[ItemFacts]:
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


_INSPECTION: Inspection | None = None  # set just before the pool forks


def _check(chunk: tuple[str, Sequence[int]]) -> list[ItemFacts]:
    assert _INSPECTION is not None
    return _INSPECTION.check(chunk)


def chunks(sizes: dict[str, int], size: int) -> list[tuple[str, list[int]]]:
    return [(split, list(range(start, min(start + size, n)))) for split, n in sizes.items()
            for start in range(0, n, size)]


def check_all(inspection: Inspection, workers: int) -> Iterator[list[ItemFacts]]:
    """The facts of every image, a batch at a time as workers finish them (in no fixed order)."""
    global _INSPECTION
    sizes = {split: len(view) for split, view in inspection.views.items()}
    size = max(1, min(CHUNK, sum(sizes.values()) // (workers * 8)))
    _INSPECTION = inspection
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap_unordered(_check, chunks(sizes, size))
    finally:
        _INSPECTION = None
