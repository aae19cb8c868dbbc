"""Image decoding for all readers: one place that knows cv2's flags, threads and failure modes."""
from __future__ import annotations

import os

import cv2
import numpy as np
import torch.utils.data

from cauchy.datasets.errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

_threads_limited_in_pid: int | None = None


def _limit_cv2_threads_in_worker() -> None:
    """Each DataLoader worker is already one of many processes; cv2's own pool would oversubscribe."""
    global _threads_limited_in_pid
    pid = os.getpid()
    if _threads_limited_in_pid != pid and torch.utils.data.get_worker_info() is not None:
        cv2.setNumThreads(1)
        _threads_limited_in_pid = pid


def read_image(path: str) -> np.ndarray:
    """Decode ``path`` to an HxWx3 uint8 RGB array (grey and RGBA files too); errors name the file."""
    _limit_cv2_threads_in_worker()
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read image file ({exc.strerror or exc})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR_RGB) if data.size else None
    if image is None:
        raise DatasetError(f"{path}: not a decodable image ({data.size} bytes)")
    return image


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)
