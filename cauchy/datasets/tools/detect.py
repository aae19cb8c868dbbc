"""Which on-disk classification format a directory holds, so an upload can be read without asking.

Checked in this order, most explicit first: a list file is deliberate, while class folders may
also sit under a ``txt_list`` or ``csv_list`` root. Only the first entry of a list is looked at.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Callable

from cauchy.datasets.cls.csv_list import has_path_label
from cauchy.datasets.cls.image_folder import images_under
from cauchy.datasets.cls.txt_list import split_line
from cauchy.datasets.errors import DatasetError


def _entries(root: str) -> list[os.DirEntry]:
    return sorted(os.scandir(root), key=lambda entry: entry.name)


def _is_label_json(root: str) -> bool:
    return any(entry.is_dir() and os.path.isfile(os.path.join(entry.path, "label.json")) for entry in _entries(root))


def _is_csv_list(root: str) -> bool:
    for entry in _entries(root):
        if entry.is_file() and entry.name.lower().endswith(".csv"):
            with open(entry.path, encoding="utf-8", errors="replace", newline="") as fh:
                if has_path_label(next(csv.reader(fh), [])):
                    return True
    return False


def _first_fields(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return next((fields for fields in map(split_line, fh) if fields is not None), [])


def _is_txt_list(root: str) -> bool:
    for entry in _entries(root):
        if entry.is_file() and entry.name.lower().endswith(".txt"):
            fields = _first_fields(entry.path)
            if len(fields) == 2 and fields[1].isdigit():
                return True
    return False


def _is_image_folder(root: str) -> bool:
    return any(cls.is_dir() and next(images_under(cls.path), None) is not None
               for split in _entries(root) if split.is_dir() for cls in _entries(split.path))


_FORMATS = {  # name: (check, layout for the error message), in the order they are tried
    "label_json": (_is_label_json, "<split>/label.json with images under <split>/image/"),
    "csv_list": (_is_csv_list, "<split>.csv with a 'path,label' header"),
    "txt_list": (_is_txt_list, "<split>.txt of 'relative/path label' lines"),
    "image_folder": (_is_image_folder, "<split>/<class>/<image>"),
}


Formats = dict[str, tuple[Callable[[str], bool], str]]


def first_format(root: str, formats: Formats, task: str) -> str:
    """The first of ``formats`` (name: (check, layout)) whose check accepts ``root``; DatasetError
    naming every layout if none does."""
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: dataset folder not found")
    for name, (check, _) in formats.items():
        if check(root):
            return name
    expected = "; ".join(f"{name}: {layout}" for name, (_, layout) in formats.items())
    raise DatasetError(f"{root}: no {task} dataset format recognised; expected one of {expected}")


def detect_cls_format(root: str) -> str:
    """The ``DATASETS`` name of the classification format in ``root``; DatasetError if none fits."""
    return first_format(root, _FORMATS, "classification")
