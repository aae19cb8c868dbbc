"""Label maps on disk: decoding single-channel and palette PNGs, the class list file, and the check
that a mask fits its image and holds only known labels. Torch-free (the format tools use it).

A class list (``classes.txt``) has one class per line, either ``name`` (the label id is the line's
index, 0-based) or ``id name`` (ids as stored in the masks, e.g. Cityscapes' label ids; they are
mapped to contiguous class indices in the file's order). Blank lines and ``#`` comments are skipped.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from cauchy.datasets.errors import DatasetError

CLASS_LIST = "classes.txt"
MASK_MODES = ("P", "L", "I;16", "I")  # palette, 8-bit grey, 16/32-bit grey: one label per pixel


def read_mask(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A label map (HxW integer array) and the file's palette (256 x 3 uint8, None when it has none);
    an RGB file or an undecodable one is a DatasetError naming it."""
    try:
        with Image.open(path) as png:
            if png.mode not in MASK_MODES:
                raise DatasetError(f"{path}: mask must be a single-channel or palette image (label ids), "
                                   f"got mode {png.mode}")
            palette = png.getpalette() if png.mode == "P" else None
            labels = np.array(png)
    except FileNotFoundError:
        raise DatasetError(f"{path}: mask file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DatasetError(f"{path}: not a decodable mask ({exc})") from None
    if palette is not None:
        colours = np.zeros((256, 3), dtype=np.uint8)
        flat = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:256]
        colours[:len(flat)] = flat
        palette = colours
    return labels, palette


def read_class_list(path: str) -> tuple[list[str], list[int]]:
    """``(names, label ids)`` from a class list file (see the module docstring)."""
    names, ids = [], []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            first, _, rest = text.partition(" ")
            if first.isdigit() and rest.strip():
                ids.append(int(first))
                names.append(rest.strip())
            else:
                ids.append(len(names))
                names.append(text)
            if ids[-1] in ids[:-1]:
                raise DatasetError(f"{path}:{number}: label id {ids[-1]} is listed twice")
    if not names:
        raise DatasetError(f"{path}: lists no classes")
    return names, ids


def label_table(ids: Sequence[int], ignore_index: int, size: int) -> np.ndarray:
    """Lookup table raw mask value -> class index; the ignore value maps to itself, and every other
    value to -1 (unknown: makes the mask bad)."""
    table = np.full(size, -1, dtype=np.int64)
    table[np.asarray(ids, dtype=np.intp)] = np.arange(len(ids))
    if ignore_index < size:
        table[ignore_index] = ignore_index
    return table


def _known_values(labels: np.ndarray, table: np.ndarray) -> np.ndarray | None:
    """For a uint8 mask holding only values ``table`` knows, those known values (a superset of the
    ones present), from one lookup pass (``cv2.LUT``: several times faster than counting the values,
    which is done, to name the bad ones, when this gives None)."""
    if labels.dtype != np.uint8:
        return None
    known = table[:256] >= 0
    unknown = np.ones(256, dtype=np.uint8)
    unknown[:len(known)] = ~known
    return None if cv2.LUT(labels, unknown).any() else np.flatnonzero(known)


def check_mask(path: str, labels: np.ndarray, image_size: tuple[int, int], table: np.ndarray) -> np.ndarray:
    """``labels`` mapped through ``table`` (uint8 when every value fits, else int32); a mask of
    another size than its image or with an unknown value is a DatasetError naming the file."""
    if labels.shape[:2] != tuple(image_size):
        raise DatasetError(f"{path}: mask is {labels.shape[1]}x{labels.shape[0]} but its image is "
                           f"{image_size[1]}x{image_size[0]}")
    values = _known_values(labels, table)
    if values is None:
        small = labels.dtype in (np.uint8, np.uint16)  # counted by value, several times faster than np.unique
        values = np.flatnonzero(np.bincount(labels.ravel())) if small else np.unique(labels)
    bad = values[(values < 0) | (values >= len(table))]
    if not bad.size:
        bad = values[table[values] < 0]
    if bad.size:
        raise DatasetError(f"{path}: mask values {bad[:10].tolist()} are neither a class label "
                           f"(0..{int((table >= 0).sum()) - 1} after mapping) nor the ignore value")
    dtype = np.uint8 if table.max() < 256 else np.int32
    if labels.dtype == dtype and np.array_equal(table[values], values):  # ids are the indices (VOC): no lookup
        return labels
    return table.astype(dtype).take(labels)  # the table in the output type: no int64 map of the whole mask


def class_list_of(root: str, class_names: Sequence[str] | None, default: Sequence[str] | None = None
                  ) -> tuple[list[str], list[int]]:
    """Class names and their label ids: ``root/classes.txt`` when present (``class_names``, e.g. the
    train split's, then picks its entries by name), else ``class_names`` or ``default`` with ids 0..n-1."""
    path = os.path.join(root, CLASS_LIST)
    if os.path.isfile(path):
        names, ids = read_class_list(path)
        if class_names is None:
            return names, ids
        by_name = dict(zip(names, ids))
        missing = [name for name in class_names if name not in by_name]
        if missing:
            raise DatasetError(f"{path}: classes {missing[:5]} (from data.class_names or the train split) are not listed")
        return list(class_names), [by_name[name] for name in class_names]
    chosen = class_names if class_names is not None else default
    if chosen is None:
        raise DatasetError(f"{path}: class list not found (give data.class_names or write one class name per line)")
    return list(chosen), list(range(len(chosen)))
