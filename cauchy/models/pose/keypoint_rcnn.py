"""torchvision's Keypoint R-CNN behind the detectors' interface (``TorchvisionDetector``): one
detection class (the person; label 0 in Cauchy, 1 in torchvision after its background) and one
keypoint head output per keypoint the data names (``num_classes`` here is the number of keypoints).

Built without weights (no hub downloads; pretrained weights come through ``cauchy.weights``), with
the models' own normalisation off and their resize left to ``min_size`` / ``max_size``
(network.params), as for the detectors. ``keypointrcnn_mobilenet_v3_large_fpn`` is the small CPU
model: the keypoint head on the MobileNetV3-Large FPN that Mask R-CNN's small model uses.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torchvision.models.detection as tvd

from cauchy.models.det.torchvision_detectors import IDENTITY_NORM, TorchvisionDetector, mobilenet_v3_large_fpn
from cauchy.registry import MODELS

PERSON_CLASSES = 2  # torchvision's background and the person


def keypointrcnn_mobilenet_v3_large_fpn(**kwargs: Any) -> tvd.KeypointRCNN:
    return tvd.KeypointRCNN(**{**mobilenet_v3_large_fpn(), **kwargs})


ARCHITECTURES: dict[str, Callable[..., tvd.KeypointRCNN]] = {
    "keypointrcnn_resnet50_fpn": partial(tvd.keypointrcnn_resnet50_fpn, weights=None, weights_backbone=None),
    "keypointrcnn_mobilenet_v3_large_fpn": keypointrcnn_mobilenet_v3_large_fpn,
}


def keypoint_rcnn(arch: str, num_classes: int, **params: Any) -> TorchvisionDetector:
    """``num_classes``: the number of keypoints (the pose readers' classes are the keypoint names)."""
    net = ARCHITECTURES[arch](num_classes=PERSON_CLASSES, num_keypoints=num_classes, **{**IDENTITY_NORM, **params})
    return TorchvisionDetector(net, background=1)


for _arch in ARCHITECTURES:
    MODELS.register(_arch)(partial(keypoint_rcnn, _arch))
