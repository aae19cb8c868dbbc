"""Object detection: torchcv's ``anchor`` (method-specific anchor settings) and ``res`` (how raw
detections become results) sections, passed to the det methods as ``anchor=`` and ``res=``."""
from cauchy.schema import FreeDict, integer, number
from cauchy.tasks import Task, register_task

DET = register_task(Task("det", {
    "anchor": FreeDict({}),
    "res": {
        "score_thresh": number(0.05, ge=0, le=1),
        "nms_iou": number(0.5, gt=0, le=1),
        "max_dets": integer(100, ge=1),
    },
}))
