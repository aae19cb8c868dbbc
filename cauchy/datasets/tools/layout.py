"""What format recognition returns and how each on-disk layout is described (torch-free).

A :class:`Layout` is one reader's layout: a function that finds its splits in a folder (empty when
the folder is not laid out that way), using the reader's own file names and parsing rules, and the
layout in words for the error that lists what was expected.
"""
from __future__ import annotations

import glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.seg.masks import CLASS_LIST, read_class_list

Splits = dict[str, dict[str, Any]]  # split name -> the reader's keyword arguments (``split`` and the like)


@dataclass(frozen=True)
class Recognised:
    """A recognised dataset: ``DATASETS[format](root=root, **splits[name])`` reads split ``name``.
    ``class_names`` is None when only validation can tell (class indices, or names inside each file)."""

    task: str
    format: str
    splits: Splits
    class_names: list[str] | None = None
    keypoint_names: list[str] | None = None


@dataclass(frozen=True)
class Layout:
    """One reader's on-disk layout: ``find_splits(root)``, ``class_names(root, splits)`` and the reader
    itself (its ``DATASETS`` function, imported directly: the registry would import torch), which
    validation calls with each split's parameters; None for a format the tools read themselves."""

    task: str
    format: str
    expected: str
    find_splits: Callable[[str], Splits]
    class_names: Callable[[str, Splits], list[str] | None] = lambda root, splits: None
    reader: Callable[..., Any] | None = None


class UnrecognisedLayout(DatasetError):
    """No layout fits the folder; the message says what was expected and what was found."""


def entries(root: str) -> list[os.DirEntry]:
    return sorted(os.scandir(root), key=lambda entry: entry.name) if os.path.isdir(root) else []


def found(root: str, limit: int = 12) -> str:
    """The top of a folder in words, for the error: ``images/, labels/, notes.txt`` (or 'nothing')."""
    names = [entry.name + ("/" if entry.is_dir() else "") for entry in entries(root)]
    text = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return text or "an empty folder"


def split_params(names: list[str], **params: Any) -> Splits:
    """``{name: {"split": name, **params}}`` for each split name, in name order."""
    return {name: {"split": name, **params} for name in sorted(names)}


def listed_splits(root: str, split_list: str, beside: str) -> Splits:
    """VOC style: a split per list file matching ``split_list`` (with ``{split}``), when the folder
    ``beside`` exists too."""
    if not os.path.isdir(os.path.join(root, beside)):
        return {}
    lists = glob.glob(os.path.join(root, split_list.format(split="*")))
    return split_params([os.path.splitext(os.path.basename(path))[0] for path in lists])


def listed_classes(root: str, splits: Splits) -> list[str] | None:
    """The names of ``root/classes.txt`` (the readers' class list file), None without one."""
    path = os.path.join(root, CLASS_LIST)
    return read_class_list(path)[0] if os.path.isfile(path) else None
