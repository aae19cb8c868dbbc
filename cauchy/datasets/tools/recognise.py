"""Which task and on-disk format a folder holds, its splits and (where the files say) its classes.

Torch-free: the control service calls it on every upload. Each layout asks its reader's own rules
(``cauchy.datasets.tools.detect*``); the user may name the task or the format to settle a guess
(a VOC folder with both box and mask lists, a COCO file with boxes and polygons).
"""
from __future__ import annotations

import os
from pathlib import Path

from cauchy.datasets.tools.detect import CLS_LAYOUTS
from cauchy.datasets.tools.detect_det import DET_LAYOUTS
from cauchy.datasets.tools.detect_pose import POSE_LAYOUTS, keypoint_names
from cauchy.datasets.tools.detect_seg import SEG_LAYOUTS
from cauchy.datasets.tools.layout import Layout, Recognised, UnrecognisedLayout, found

# tried in this order when the task is not given: the most specific files first
LAYOUTS: list[Layout] = [*POSE_LAYOUTS, *DET_LAYOUTS, *SEG_LAYOUTS, *CLS_LAYOUTS]
TASKS = ("cls", "det", "seg", "pose")
TASK_WORDS = {"cls": "classification", "det": "detection", "seg": "segmentation", "pose": "pose"}


def layouts_for(task: str | None, fmt: str | None) -> list[Layout]:
    """The layouts to try; an unknown task or format is an error listing the known ones."""
    if task is not None and task not in TASKS:
        raise UnrecognisedLayout(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    chosen = [layout for layout in LAYOUTS if task in (None, layout.task) and fmt in (None, layout.format)]
    if not chosen:
        known = ", ".join(layout.format for layout in LAYOUTS if task in (None, layout.task))
        raise UnrecognisedLayout(f"unknown format {fmt!r}{f' for task {task}' if task else ''}; known: {known}")
    return chosen


def layout_of(fmt: str) -> Layout:
    """The layout of a format name (as :class:`Recognised` holds it)."""
    return layouts_for(None, fmt)[0]


def recognise(root: Path | str, task: str | None = None, fmt: str | None = None) -> Recognised:
    """The first layout (of ``task`` / ``fmt`` when given) that finds splits in ``root``;
    :class:`UnrecognisedLayout` saying what was expected and what was found when none does."""
    root = os.fspath(root)
    layouts = layouts_for(task, fmt)
    if not os.path.isdir(root):
        raise UnrecognisedLayout(f"{root}: dataset folder not found")
    for layout in layouts:
        splits = layout.find_splits(root)
        if splits:
            return Recognised(task=layout.task, format=layout.format, splits=splits,
                              class_names=layout.class_names(root, splits),
                              keypoint_names=keypoint_names(root, splits) if layout.task == "pose" else None)
    what = TASK_WORDS[task] if task else "cls, det, seg or pose"
    expected = "; ".join(f"{layout.format}: {layout.expected}" for layout in layouts)
    raise UnrecognisedLayout(f"{root}: no {what} dataset format recognised; expected one of {expected}; "
                             f"found {found(root)}")
