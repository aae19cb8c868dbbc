"""Part affinity field targets and OpenPose's greedy grouping: fields built from known people, and
people recovered from hand-built heatmaps and fields."""
from __future__ import annotations

import numpy as np
import pytest

from cauchy.datasets.pose.paf import part_affinity_fields
from cauchy.models.pose.paf_grouping import GroupingParams, find_peaks, group_people, limb_score, match_limb

# a stick figure: head 0, neck 1, left/right hand 2/3, hip 4, left/right foot 5/6
LIMBS = [(0, 1), (1, 2), (1, 3), (1, 4), (4, 5), (4, 6)]


def person(x: float, y: float, s: float = 1.0) -> np.ndarray:
    """A standing figure with its neck at (x, y), ``s`` times the unit size, in grid units."""
    offsets = np.array([[0, -3], [0, 0], [-3, 2], [3, 2], [0, 5], [-2, 10], [2, 10]], dtype=np.float32)
    joints = np.array([x, y], dtype=np.float32) + s * offsets
    return np.concatenate([joints, np.full((7, 1), 2, np.float32)], axis=1)


def gaussian_heatmaps(people: np.ndarray, grid: tuple[int, int], sigma: float = 1.0) -> np.ndarray:
    """Per joint, the maximum over people of a Gaussian at each labelled joint (grid units)."""
    h, w = grid
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    out = np.zeros((people.shape[1], h, w), np.float32)
    for p in people:
        for j, (x, y, v) in enumerate(p):
            if v > 0:
                out[j] = np.maximum(out[j], np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)))
    return out


def test_field_is_the_unit_vector_on_the_limb_and_zero_off_it() -> None:
    kps = np.array([[[2.0, 8.0, 2], [18.0, 8.0, 1]]], dtype=np.float32)  # a horizontal limb, stride 2
    paf = part_affinity_fields(kps, [(0, 1)], grid=(10, 12), stride=2, width=1.0)
    assert paf.shape == (2, 10, 12) and paf.dtype == np.float32
    # the limb runs from (1, 4) to (9, 4) in grid units: rows 3 and 4 (centres 3.5, 4.5) are within 1,
    # and so are the cells of columns 0 and 9 at its round ends (centres 0.707 from an end), not column 10
    assert np.allclose(paf[0, 3:5, 0:10], 1.0) and np.allclose(paf[1], 0.0)
    assert np.allclose(paf[0, :3], 0.0) and np.allclose(paf[0, 5:], 0.0) and np.allclose(paf[0, :, 10:], 0.0)


def test_diagonal_limb_points_along_it_and_overlaps_average() -> None:
    a = np.array([[[0.0, 0.0, 1], [20.0, 20.0, 1]]], dtype=np.float32)
    paf = part_affinity_fields(a, [(0, 1)], grid=(20, 20), stride=1, width=1.5)
    on = np.hypot(paf[0], paf[1]) > 0
    assert on[10, 10] and not on[0, 19]
    assert np.allclose(paf[0][on], np.sqrt(0.5)) and np.allclose(paf[1][on], np.sqrt(0.5))
    crossing = np.concatenate([a, [[[20.0, 0.0, 1], [0.0, 20.0, 1]]]]).astype(np.float32)
    paf = part_affinity_fields(crossing, [(0, 1)], grid=(20, 20), stride=1, width=1.5)
    assert np.allclose(paf[:, 10, 10], [0.0, np.sqrt(0.5)])  # the mean of (1, 1)/√2 and (-1, 1)/√2


def test_unlabelled_or_absent_ends_give_no_field() -> None:
    kps = np.array([[[2.0, 2.0, 0], [10.0, 2.0, 2]], [[3.0, 3.0, 1], [3.0, 3.0, 1]]], dtype=np.float32)
    assert not part_affinity_fields(kps, [(0, 1)], grid=(8, 8), stride=2).any()
    assert part_affinity_fields(np.zeros((0, 2, 3), np.float32), [(0, 1)], grid=(4, 4), stride=1).shape == (2, 4, 4)
    with pytest.raises(ValueError, match="width"):
        part_affinity_fields(kps, [(0, 1)], grid=(8, 8), stride=2, width=0)


def test_peaks_are_found_with_sub_cell_accuracy() -> None:
    people = np.stack([person(10.3, 8.7), person(30.0, 9.2)])
    peaks = find_peaks(gaussian_heatmaps(people, (32, 44)), 0.1)
    assert [len(p) for p in peaks] == [2] * 7
    neck = peaks[1][np.argsort(peaks[1][:, 0])]
    assert np.allclose(neck[:, :2], [[10.3, 8.7], [30.0, 9.2]], atol=0.1)
    assert np.all(neck[:, 2] > 0.8)


def test_limb_score_prefers_the_aligned_candidate() -> None:
    paf = part_affinity_fields(np.array([[[2.0, 5.0, 1], [12.0, 5.0, 1]]]), [(0, 1)], grid=(10, 16), stride=1)
    params = GroupingParams()
    along = limb_score(paf, np.array([2.0, 5.0]), np.array([12.0, 5.0]), params, grid_height=40)
    assert along is not None and 0.85 <= along <= 1.0  # the last sample lies just past the field's end
    # a limb longer than half the image height pays for it: 0.5 * 10 / 10 - 1 = -0.5
    assert limb_score(paf, np.array([2.0, 5.0]), np.array([12.0, 5.0]), params, grid_height=10) == \
        pytest.approx(along - 0.5)
    assert limb_score(paf, np.array([2.0, 5.0]), np.array([2.0, 9.5]), params, 40) is None  # across the field
    assert limb_score(paf, np.array([12.0, 5.0]), np.array([2.0, 5.0]), params, 40) is None  # against it


def test_match_limb_is_greedy_one_to_one() -> None:
    kps = np.array([[[2.0, 3.0, 1], [12.0, 3.0, 1]], [[2.0, 8.0, 1], [12.0, 8.0, 1]]], dtype=np.float32)
    paf = part_affinity_fields(kps, [(0, 1)], grid=(12, 16), stride=1)
    chosen = match_limb(kps[:, 0], kps[:, 1], paf, GroupingParams(), 12)
    assert sorted((i, j) for i, j, _ in chosen) == [(0, 0), (1, 1)]


@pytest.mark.parametrize("order", [LIMBS, LIMBS[::-1], [LIMBS[i] for i in (3, 0, 5, 1, 4, 2)]])
def test_grouping_recovers_the_people(order: list[tuple[int, int]]) -> None:
    """Three people side by side, close enough that their hands nearly touch, one of them smaller and
    one missing a foot: each comes back whole, whatever order the limbs are listed in."""
    people = np.stack([person(8.0, 6.0), person(17.0, 7.0, 0.8), person(27.0, 6.5, 1.1)])
    people[2, 6, 2] = 0
    grid = (24, 36)
    found, scores = group_people(gaussian_heatmaps(people, grid), part_affinity_fields(people, order, grid, 1.0),
                                 order)
    assert found.shape == (3, 7, 3) and scores.shape == (3,)
    found = found[np.argsort(found[:, 1, 0])]
    visible = people[..., 2] > 0
    assert np.allclose(found[..., :2][visible], people[..., :2][visible], atol=0.15)
    assert np.array_equal(found[..., 2] > 0, visible)
    assert np.all(scores > 0.5) and np.all(scores <= 1.0)


def test_fragments_below_the_minimum_are_dropped() -> None:
    people = person(8.0, 6.0)[None]
    people[0, 2:, 2] = 0  # only head and neck: two joints
    grid = (20, 16)
    found, scores = group_people(gaussian_heatmaps(people, grid), part_affinity_fields(people, LIMBS, grid, 1.0),
                                 LIMBS)
    assert found.shape == (0, 7, 3) and scores.shape == (0,)
    found, _ = group_people(gaussian_heatmaps(people, grid), part_affinity_fields(people, LIMBS, grid, 1.0), LIMBS,
                            GroupingParams(min_parts=2))
    assert found.shape == (1, 7, 3)


def test_no_field_means_no_connection() -> None:
    """Peaks alone make no people: grouping follows the fields, not distance."""
    people = np.stack([person(8.0, 6.0)])
    grid = (20, 16)
    found, _ = group_people(gaussian_heatmaps(people, grid), np.zeros((2 * len(LIMBS), *grid), np.float32), LIMBS)
    assert len(found) == 0
