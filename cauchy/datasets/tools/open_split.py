"""One split opened as its reader serves it to a job, for validation and split making (torch-free)."""
from __future__ import annotations

from typing import Any

from cauchy.datasets.tools.layout import Recognised
from cauchy.datasets.tools.pose_view import CocoKeypointsView
from cauchy.datasets.tools.recognise import layout_of


def open_split(found: Recognised, root: str, params: dict[str, Any]) -> Any:
    """The reader's dataset for one split's parameters (det: bad boxes listed in ``bad_boxes``, not
    raised); COCO keypoints through the tools' own view."""
    if found.task == "pose":
        return CocoKeypointsView(root, **params)
    extra = {"skip_bad_boxes": True} if found.task == "det" else {}
    return layout_of(found.format).reader(root=root, class_names=None, **params, **extra)
