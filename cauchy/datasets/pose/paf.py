"""Part affinity fields (OpenPose, Cao et al. 2017): the training target that says, at every cell of
the output grid, in which direction a limb runs through it.

For limb ``c`` from joint ``a`` to joint ``b`` of person ``k`` (both labelled), every cell whose centre
lies within ``width`` cells of the segment ``x_a x_b`` holds the unit vector ``v`` from ``x_a`` to
``x_b``; where the limbs of several people overlap, the field is their average (the paper's eq. 9).
Channels ``2c`` and ``2c + 1`` hold the x and y components. The region is the paper's rectangle
(``0 <= v . (p - x_a) <= |x_b - x_a|``, ``|v_perp . (p - x_a)| <= width``) with round ends: on the
coarse output grid the rectangle alone leaves the cells at a short limb's ends empty, and the line
integral of the grouping, which samples up to the joints, would miss them.

Coordinates are continuous (pixel column ``i`` covers ``[i, i + 1)``): cell ``(i, j)`` of a grid
with ``stride`` input pixels per cell has its centre at input pixel ``((j + 0.5) s, (i + 0.5) s)``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def part_affinity_fields(keypoints: np.ndarray, limbs: Sequence[Sequence[int]], grid: tuple[int, int],
                         stride: float, width: float = 1.0) -> np.ndarray:
    """float32 ``[2 * len(limbs), h, w]`` fields on an ``h`` x ``w`` ``grid`` for ``keypoints``
    ``[N, K, 3]`` (x, y in input pixels, visibility; 0 = not labelled). ``width`` is the half-width
    of a limb in grid cells."""
    if width <= 0 or stride <= 0:
        raise ValueError(f"paf: width and stride must be > 0, got width={width}, stride={stride}")
    h, w = grid
    fields = np.zeros((len(limbs), 2, h, w), dtype=np.float32)
    counts = np.zeros((len(limbs), h, w), dtype=np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5  # cell centres in grid units
    for c, (a, b) in enumerate(limbs):
        for person in np.asarray(keypoints, dtype=np.float32):
            if person[a, 2] <= 0 or person[b, 2] <= 0:
                continue
            start, end = person[a, :2] / stride, person[b, :2] / stride
            vec = end - start
            length = float(np.hypot(*vec))
            if length < 1e-6:
                continue
            ux, uy = vec / length
            # the limb's bounding window (plus its width), so only nearby cells are tested
            x0 = max(int(np.floor(min(start[0], end[0]) - width)), 0)
            x1 = min(int(np.ceil(max(start[0], end[0]) + width)) + 1, w)
            y0 = max(int(np.floor(min(start[1], end[1]) - width)), 0)
            y1 = min(int(np.ceil(max(start[1], end[1]) + width)) + 1, h)
            if x0 >= x1 or y0 >= y1:
                continue
            dx, dy = xs[y0:y1, x0:x1] - start[0], ys[y0:y1, x0:x1] - start[1]
            along = np.clip(dx * ux + dy * uy, 0.0, length)  # the nearest point of the segment
            on = np.hypot(dx - along * ux, dy - along * uy) <= width
            fields[c, 0, y0:y1, x0:x1][on] += ux
            fields[c, 1, y0:y1, x0:x1][on] += uy
            counts[c, y0:y1, x0:x1][on] += 1
    fields /= np.maximum(counts, 1)[:, None]
    return fields.reshape(2 * len(limbs), h, w)
