"""Colour palettes for label maps: the one place that knows the Pascal VOC colour map.

Torch-free (the shapes prepare script and the format tools use it too).
"""
from __future__ import annotations

import numpy as np


def voc_palette(n: int = 256) -> np.ndarray:
    """``n`` x 3 uint8 RGB colours of the VOC devkit's bit-interleaving colour map (class ``i`` ->
    ``palette[i]``; the ignore value 255 comes out as VOC's cream (224, 224, 192))."""
    palette = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def colorize(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """HxW label map -> HxWx3 uint8 RGB through ``palette`` (256 x 3)."""
    return palette[mask.astype(np.intp)]
