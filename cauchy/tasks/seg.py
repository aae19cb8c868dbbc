"""Semantic segmentation: how validation and test infer (``test.mode`` whole or slide, with
``test.crop_size`` and ``test.stride`` [height, width] for slide) and the ignore value of the masks
(``data.params.ignore_index``, 255 unless the reader is told otherwise), all passed to the seg method."""
from cauchy.schema import numbers, string
from cauchy.tasks import Task, register_task

SEG = register_task(Task("seg", {
    "test": {
        "mode": string("whole", choices=("whole", "slide")),
        "crop_size": numbers(None, length=2, positive=True, nullable=True),
        "stride": numbers(None, length=2, positive=True, nullable=True),
    },
}, method_keys=("test.mode", "test.crop_size", "test.stride", "data.params.ignore_index")))
