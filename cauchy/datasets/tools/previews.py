"""Preview pictures for the dataset page: an image with its annotations drawn (class name, boxes,
mask colours, keypoints and sticks), at most :data:`SIDE` pixels on its longer side."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from cauchy.datasets.seg.palette import voc_palette

SIDE = 320
MAX_ZOOM = 8  # small images are enlarged up to this much, so their annotations can be seen
PALETTE = voc_palette()


def _colour(index: int) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in PALETTE[1 + index % 254])
    return b, g, r


def _label(canvas: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    y = max(y, h + 2)
    cv2.rectangle(canvas, (x, y - h - 3), (x + w + 2, y), colour, -1)
    cv2.putText(canvas, text, (x + 1, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)


def draw_preview(task: str, sample: dict[str, Any], class_names: Sequence[str],
                 skeleton: Sequence[Sequence[int]] = ()) -> np.ndarray:
    """The sample's image (BGR, for cv2.imwrite) scaled to fit :data:`SIDE`, annotations drawn."""
    image = sample["image"]
    scale = min(MAX_ZOOM, SIDE / max(image.shape[:2]))
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = cv2.cvtColor(cv2.resize(image, size, interpolation=shrink), cv2.COLOR_RGB2BGR)
    if task == "cls":
        _label(canvas, class_names[sample["label"]], 0, 0, (60, 60, 60))
    elif task == "seg":
        mask = cv2.resize(sample["mask"], size, interpolation=cv2.INTER_NEAREST)
        colours = PALETTE[mask.astype(np.intp)][:, :, ::-1]
        labelled = (mask > 0) & (mask < len(class_names))
        canvas[labelled] = (0.5 * canvas[labelled] + 0.5 * colours[labelled]).astype(np.uint8)
    else:
        labels = sample["labels"] if task == "det" else [0] * len(sample["boxes"])
        for box, label in zip(np.asarray(sample["boxes"]).reshape(-1, 4) * scale, labels):
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), _colour(int(label)), 1)
            if task == "det":
                _label(canvas, class_names[int(label)], x1, y1, _colour(int(label)))
    if task == "pose":
        for person in sample["keypoints"]:
            points = person[:, :2] * scale
            for a, b in skeleton:
                if person[a - 1, 2] > 0 and person[b - 1, 2] > 0:
                    cv2.line(canvas, tuple(points[a - 1].astype(int)), tuple(points[b - 1].astype(int)),
                             (255, 200, 0), 1, cv2.LINE_AA)
            for (x, y), v in zip(points, person[:, 2]):
                if v > 0:
                    cv2.circle(canvas, (int(x), int(y)), 2, (0, 255, 0) if v == 2 else (0, 165, 255), -1)
    return canvas
