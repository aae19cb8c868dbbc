"""Tiny image files for the dataset tests."""
from __future__ import annotations

import os
from collections.abc import Callable

import cv2
import numpy as np
import pytest


@pytest.fixture
def write_image() -> Callable[..., str]:
    """``write_image(path, rgb=(r, g, b), size=(h, w))`` writes a solid-colour image file."""

    def write(path: str, rgb: tuple[int, int, int] = (200, 30, 10), size: tuple[int, int] = (12, 16)) -> str:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        image = np.empty(size + (3,), dtype=np.uint8)
        image[...] = rgb[::-1]  # cv2 writes BGR
        assert cv2.imwrite(path, image)
        return path

    return write


@pytest.fixture
def write_corrupt() -> Callable[[str], str]:
    """A file named like a PNG whose bytes are not an image."""

    def write(path: str) -> str:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
        return path

    return write
