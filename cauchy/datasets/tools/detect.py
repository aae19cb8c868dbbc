"""Classification layouts, most explicit first: a list file is deliberate, while class folders may
also sit under a ``txt_list`` or ``csv_list`` root. Only the first entry of a list is looked at."""
from __future__ import annotations

import csv
import os

from cauchy.datasets.cls.csv_list import csv_list, has_path_label
from cauchy.datasets.cls.image_folder import image_folder, images_under
from cauchy.datasets.cls.label_json import label_json
from cauchy.datasets.cls.txt_list import split_line, txt_list
from cauchy.datasets.tools.layout import Layout, Splits, entries, listed_classes, split_params


def _label_json_splits(root: str) -> Splits:
    return split_params([e.name for e in entries(root) if e.is_dir() and os.path.isfile(os.path.join(e.path, "label.json"))])


def _csv_list_splits(root: str) -> Splits:
    names = []
    for entry in entries(root):
        if entry.is_file() and entry.name.lower().endswith(".csv"):
            with open(entry.path, encoding="utf-8", errors="replace", newline="") as fh:
                if has_path_label(next(csv.reader(fh), [])):
                    names.append(entry.name[:-len(".csv")])
    return split_params(names)


def _first_fields(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return next((fields for fields in map(split_line, fh) if fields is not None), [])


def _txt_list_splits(root: str) -> Splits:
    names = []
    for entry in entries(root):
        if entry.is_file() and entry.name.lower().endswith(".txt"):
            fields = _first_fields(entry.path)
            if len(fields) == 2 and fields[1].isdigit():
                names.append(entry.name[:-len(".txt")])
    return split_params(names)


def _class_folders(split_dir: str) -> list[str]:
    return [cls.name for cls in entries(split_dir) if cls.is_dir() and next(images_under(cls.path), None) is not None]


def _image_folder_splits(root: str) -> Splits:
    return split_params([split.name for split in entries(root) if split.is_dir() and _class_folders(split.path)])


def _image_folder_classes(root: str, splits: Splits) -> list[str]:
    """The reader's rule (sorted class folder names), over every split."""
    return sorted({name for split in splits for name in _class_folders(os.path.join(root, split))})


CLS_LAYOUTS = [
    Layout("cls", "label_json", "<split>/label.json with images under <split>/image/", _label_json_splits, listed_classes,
           reader=label_json),
    Layout("cls", "csv_list", "<split>.csv with a 'path,label' header", _csv_list_splits, listed_classes,
           reader=csv_list),
    Layout("cls", "txt_list", "<split>.txt of 'relative/path label' lines", _txt_list_splits, listed_classes,
           reader=txt_list),
    Layout("cls", "image_folder", "<split>/<class>/<image>", _image_folder_splits, _image_folder_classes,
           reader=image_folder),
]
