"""``root/<split>.csv`` with a ``path,label`` header (paths relative to root; other columns ignored)."""
from __future__ import annotations

import csv
import os

from cauchy.datasets.cls.base import list_file_dataset, parse_label
from cauchy.datasets.errors import DatasetError
from cauchy.registry import DATASETS


def has_path_label(header: list[str] | None) -> bool:
    """Whether a CSV header names the two columns this format needs (the format detector asks too)."""
    return {"path", "label"} <= set(header or [])


def read_csv_list(list_path: str, root: str) -> list[tuple[str, int]]:
    with open(list_path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if not has_path_label(header):
            raise DatasetError(f"{list_path}:1: expected a header with columns 'path,label', got {header}")
        samples = []
        for row in reader:
            where = f"{list_path}:{reader.line_num}"
            path, label = row["path"], row["label"]
            if not path or label is None:
                raise DatasetError(f"{where}: expected 'path,label', got {row}")
            samples.append((os.path.join(root, path), parse_label(label, where, ",".join(map(str, row.values())))))
    return samples


csv_list = DATASETS.register("csv_list")(list_file_dataset(".csv", read_csv_list))
