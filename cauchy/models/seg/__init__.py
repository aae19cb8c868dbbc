"""Semantic segmentation models; importing this package registers them in ``MODELS``."""
from cauchy.models.seg import denseaspp, losses, pspnet, tiny_unet, torchvision_segmenters  # noqa: F401
