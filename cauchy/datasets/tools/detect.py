"""Which on-disk classification format a directory holds, so an upload can be read without asking.

Checked in this order, most explicit first: a list file is deliberate, while class folders may
also sit under a ``txt_list`` or ``csv_list`` root. Only the first entry of a list is looked at.
"""
from __future__ import annotations

import csv
import os

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import is_image_file

def _entries(root: str) -> list[os.DirEntry]:
    return sorted(os.scandir(root), key=lambda entry: entry.name)


def _is_label_json(root: str) -> bool:
    return any(entry.is_dir() and os.path.isfile(os.path.join(entry.path, "label.json")) for entry in _entries(root))


def _is_csv_list(root: str) -> bool:
    for entry in _entries(root):
        if entry.is_file() and entry.name.lower().endswith(".csv"):
            with open(entry.path, encoding="utf-8", errors="replace", newline="") as fh:
                header = next(csv.reader(fh), [])
            if {"path", "label"} <= {column.strip() for column in header}:
                return True
    return False


def _first_line(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return next((line.strip() for line in fh if line.strip() and not line.lstrip().startswith("#")), "")


def _is_txt_list(root: str) -> bool:
    for entry in _entries(root):
        if entry.is_file() and entry.name.lower().endswith(".txt"):
            fields = _first_line(entry.path).rsplit(None, 1)
            if len(fields) == 2 and fields[1].isdigit():
                return True
    return False


def _is_image_folder(root: str) -> bool:
    for split in _entries(root):
        if split.is_dir():
            for cls in _entries(split.path):
                if cls.is_dir() and any(f.is_file() and is_image_file(f.name) for f in os.scandir(cls.path)):
                    return True
    return False


_FORMATS = {  # name: (check, layout for the error message), in the order they are tried
    "label_json": (_is_label_json, "<split>/label.json with images under <split>/image/"),
    "csv_list": (_is_csv_list, "<split>.csv with a 'path,label' header"),
    "txt_list": (_is_txt_list, "<split>.txt of 'relative/path label' lines"),
    "image_folder": (_is_image_folder, "<split>/<class>/<image>"),
}


def detect_cls_format(root: str) -> str:
    """The ``DATASETS`` name of the classification format in ``root``; DatasetError if none fits."""
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: dataset folder not found")
    for name, (check, _) in _FORMATS.items():
        if check(root):
            return name
    expected = "; ".join(f"{name}: {layout}" for name, (_, layout) in _FORMATS.items())
    raise DatasetError(f"{root}: no classification dataset format recognised; expected one of {expected}")
