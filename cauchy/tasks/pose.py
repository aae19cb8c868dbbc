"""Pose estimation: torchcv's ``target`` section (heatmap settings), passed to its methods as ``target=``."""
from cauchy.schema import FreeDict
from cauchy.tasks import Task, register_task

POSE = register_task(Task("pose", {"target": FreeDict({})}))
