"""Image classification: nothing beyond the base hypes."""
from cauchy.tasks import Task, register_task

CLS = register_task(Task("cls"))
