"""Detection models; importing this package registers them in ``MODELS`` (and the YOLOv3 loss)."""
from cauchy.models.det import torchvision_detectors, yolov3  # noqa: F401
