"""OpenPose's decoding (Cao et al. 2017, section 2.4): joint candidates from heatmap peaks, limb
candidates scored by the line integral of the part affinity field, greedy matching per limb, and
people assembled from the chosen limbs.

Everything here is in grid units of the network's output (continuous coordinates: cell ``(i, j)``
covers ``[j, j + 1) x [i, i + 1)``, its centre is ``(j + 0.5, i + 0.5)``); the method maps the
people to original pixels. Pure numpy, so it is tested on hand-built fields.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupingParams:
    """The paper's thresholds: ``peak_thresh`` for a joint candidate; a limb candidate needs at least
    ``min_aligned`` of its ``samples`` points with a field component along it above ``min_dot``, and a
    positive mean score after the distance prior (limbs longer than half the image height lose);
    a person needs ``min_parts`` joints and a mean score per joint of ``min_mean_score``."""

    peak_thresh: float = 0.1
    samples: int = 10
    min_dot: float = 0.05
    min_aligned: float = 0.8
    min_parts: int = 3
    min_mean_score: float = 0.4


def find_peaks(heatmaps: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Per channel of ``heatmaps`` [K, h, w], its local maxima (8-neighbourhood) above ``threshold``
    as ``[n, 3]`` rows (x, y, score) at cell centres, moved by up to half a cell towards the peak of a
    parabola through each maximum and its neighbours (sub-cell accuracy)."""
    k, h, w = heatmaps.shape
    padded = np.pad(heatmaps, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    is_peak = heatmaps > threshold
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:  # ties go to the first cell in raster order: one peak per plateau
                neighbour = padded[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
                is_peak &= heatmaps > neighbour if (dy, dx) < (0, 0) else heatmaps >= neighbour
    out = []
    for c in range(k):
        ys, xs = np.nonzero(is_peak[c])
        score = heatmaps[c, ys, xs]
        offsets = [parabola_offset(score, padded[c, ys + 1 - step[0], xs + 1 - step[1]],
                                   padded[c, ys + 1 + step[0], xs + 1 + step[1]]) for step in ((0, 1), (1, 0))]
        out.append(np.stack([xs + 0.5 + offsets[0], ys + 0.5 + offsets[1], score], axis=1).astype(np.float32))
    return out


def parabola_offset(centre: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Where a parabola through (-1, before), (0, centre), (1, after) peaks, within half a cell; 0 at
    the border (a neighbour outside the grid)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        curvature = before - 2 * centre + after
        offset = np.where(np.isfinite(before) & np.isfinite(after) & (curvature < 0),
                          0.5 * (before - after) / curvature, 0.0)
    return np.clip(np.nan_to_num(offset), -0.5, 0.5)


def limb_score(paf: np.ndarray, start: np.ndarray, end: np.ndarray, params: GroupingParams,
               grid_height: int) -> float | None:
    """The line integral of ``paf`` [2, h, w] along ``start`` -> ``end`` (mean of the field's component
    along the segment at ``samples`` points) plus the distance prior; None when the candidate fails
    the paper's criteria."""
    vec = end - start
    length = float(np.hypot(*vec))
    if length < 1e-6:
        return None
    unit = vec / length
    t = np.linspace(0.0, 1.0, params.samples)
    points = start[None] + t[:, None] * vec[None]
    h, w = paf.shape[1:]
    cols = np.clip(np.floor(points[:, 0]).astype(int), 0, w - 1)
    rows = np.clip(np.floor(points[:, 1]).astype(int), 0, h - 1)
    dots = paf[0, rows, cols] * unit[0] + paf[1, rows, cols] * unit[1]
    score = float(dots.mean()) + min(0.5 * grid_height / length - 1.0, 0.0)
    if np.count_nonzero(dots > params.min_dot) < params.min_aligned * params.samples or score <= 0:
        return None
    return score


def match_limb(peaks_a: np.ndarray, peaks_b: np.ndarray, paf: np.ndarray, params: GroupingParams,
               grid_height: int) -> list[tuple[int, int, float]]:
    """The connections ``(i, j, score)`` of one limb: candidates sorted by score, taken greedily while
    neither end is already used (a bipartite matching, each joint in at most one connection)."""
    candidates = []
    for i, a in enumerate(peaks_a):
        for j, b in enumerate(peaks_b):
            score = limb_score(paf, a[:2], b[:2], params, grid_height)
            if score is not None:
                candidates.append((score, i, j))
    used_a, used_b, chosen = set(), set(), []
    for score, i, j in sorted(candidates, reverse=True):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            chosen.append((i, j, score))
    return chosen


def group_people(heatmaps: np.ndarray, pafs: np.ndarray, limbs: Sequence[Sequence[int]],
                 params: GroupingParams = GroupingParams()) -> tuple[np.ndarray, np.ndarray]:
    """People from heatmaps [K, h, w] and ``pafs`` [2 * len(limbs), h, w]: ``keypoints`` [P, K, 3]
    (x, y in grid units, the peak's score; 0, 0, 0 where a joint was not found) and ``scores`` [P]
    (the person's peak and connection scores summed, over their most, ``K + len(limbs)``).

    Limbs are joined in the order given: a connection that shares a joint with one person extends it,
    one that links two people with no joint type in common merges them, any other starts a person.
    """
    k, grid_h = heatmaps.shape[0], heatmaps.shape[1]
    peaks = find_peaks(heatmaps, params.peak_thresh)
    parts: list[np.ndarray] = []  # per person: index of its peak per joint type, -1 if none
    totals: list[float] = []
    for c, (a, b) in enumerate(limbs):
        for i, j, score in match_limb(peaks[a], peaks[b], pafs[2 * c:2 * c + 2], params, grid_h):
            found = [p for p, row in enumerate(parts) if row[a] == i or row[b] == j]
            if not found:
                row = np.full(k, -1)
                row[a], row[b] = i, j
                parts.append(row)
                totals.append(float(peaks[a][i, 2] + peaks[b][j, 2]) + score)
                continue
            first = found[0]
            if len(found) == 2 and not np.any((parts[first] >= 0) & (parts[found[1]] >= 0)):
                second = found[1]
                parts[first] = np.maximum(parts[first], parts[second])
                totals[first] += totals.pop(second) + score
                del parts[second]
                continue
            row = parts[first]
            for joint, index in ((a, i), (b, j)):
                if row[joint] < 0:
                    row[joint] = index
                    totals[first] += float(peaks[joint][index, 2])
            totals[first] += score
    keypoints, scores = [], []
    for row, total in zip(parts, totals):
        count = int(np.count_nonzero(row >= 0))
        if count < params.min_parts or total / count < params.min_mean_score:
            continue
        person = np.zeros((k, 3), dtype=np.float32)
        for joint in np.nonzero(row >= 0)[0]:
            person[joint] = peaks[joint][row[joint]]
        keypoints.append(person)
        scores.append(total / (k + len(limbs)))
    return (np.stack(keypoints) if keypoints else np.zeros((0, k, 3), np.float32),
            np.asarray(scores, dtype=np.float32))
