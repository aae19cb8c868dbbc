"""``root/<split>.txt``: one ``relative/path label`` line per image (paths relative to root).

Blank lines and lines starting with ``#`` are ignored; the label is the last field, so paths
may contain spaces.
"""
from __future__ import annotations

import os

from cauchy.datasets.cls.base import list_file_dataset, parse_label
from cauchy.datasets.errors import DatasetError
from cauchy.registry import DATASETS


def split_line(line: str) -> list[str] | None:
    """A line's fields, path then label; None for a blank or comment line (the format detector uses it too)."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    return text.rsplit(None, 1)


def read_txt_list(list_path: str, root: str) -> list[tuple[str, int]]:
    samples = []
    with open(list_path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            fields = split_line(line)
            if fields is None:
                continue
            text = line.strip()
            where = f"{list_path}:{lineno}"
            if len(fields) != 2:
                raise DatasetError(f"{where}: expected 'relative/path label', got {text!r}")
            samples.append((os.path.join(root, fields[0]), parse_label(fields[1], where, text)))
    return samples


txt_list = DATASETS.register("txt_list")(list_file_dataset(".txt", read_txt_list))
