"""File reading for all readers: image decoding (one place that knows cv2's flags, threads and failure
modes), annotation JSON, and the errors that name the file."""
from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import cv2
import numpy as np

from cauchy.datasets.errors import DatasetError

T = TypeVar("T")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

# cv2's thread pool does not survive fork: a DataLoader worker forked after the parent used the
# pool deadlocks in its first cv2 call that touches it (seen with cv2.resize before the loader).
# Each worker is one of several processes anyway, so cv2 runs single-threaded everywhere.
cv2.setNumThreads(1)


def read_image(path: str) -> np.ndarray:
    """Decode ``path`` to an HxWx3 uint8 RGB array (grey and RGBA files too); errors name the file."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read image file ({exc.strerror or exc})") from None
    return decode_image(data, path)


def decode_image(data: np.ndarray | bytes, name: str) -> np.ndarray:
    """Encoded image bytes (a file's, or a request's) to HxWx3 uint8 RGB; a DatasetError names ``name``."""
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR_RGB) if buffer.size else None
    if image is None:
        raise DatasetError(f"{name}: not a decodable image ({buffer.size} bytes)")
    return image


MALLOC_KEEP_BYTES = 32 << 20  # freed memory a decoding process keeps for its next images (glibc's largest mmap threshold)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory() -> None:
    """Call first in a process that decodes image after image (the dataset inspection's workers): glibc
    otherwise hands an image's freed pages back to the kernel, depending on the heap the process forked
    with, and faults them in again for the next one (10 times the page faults, up to a third more CPU
    measured in the inspection's workers). A no-op where the C library has no ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the symbols already loaded: no search for the C library
    except AttributeError:
        return
    for parameter in (_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD):
        mallopt(parameter, MALLOC_KEEP_BYTES)


def require_file(path: str, what: str) -> str:
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: {what} not found")
    return path


class MissingFiles(DatasetError):
    """Files a listing names that are not there: the message names the first and counts them all,
    ``problems()`` names each one (the dataset inspection reports them all, not only the first)."""

    def __init__(self, paths: Sequence[str], what: str, source: str) -> None:
        self.paths, self.what, self.source = list(paths), what, source
        more = f"; {len(self.paths)} files missing in all" if len(self.paths) > 1 else ""
        super().__init__(f"{self.paths[0]}: {what} not found (listed in {source}{more})")

    def problems(self) -> list[tuple[str, str]]:
        """``(path, message)`` for each missing file."""
        return [(path, f"{path}: {self.what} not found (listed in {self.source})") for path in self.paths]


def require_files(paths: Sequence[str], what: str, source: str) -> None:
    """Raise :class:`MissingFiles` naming every one of ``paths`` (listed in ``source``) that is not a file."""
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise MissingFiles(missing, what, source)


def load_json(path: str) -> Any:
    """An annotation or list file's JSON; a broken one is a DatasetError naming the file and line."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _problem(path: str) -> str | None:
    try:
        read_image(path)
    except DatasetError as exc:
        return str(exc)
    return None


def check_images(paths: Sequence[str], source: str, skip_bad_images: bool) -> list[tuple[str, str]]:
    """The readers' construction-time check of the images a listing names.

    Without ``skip_bad_images``: only existence is checked (cheap, so a typo in a list fails
    before training), raising :class:`MissingFiles` naming every missing file; undecodable files fail
    later, when loaded. With it: every image is decoded once (in threads; cv2 releases the GIL)
    and ``(path, reason)`` is returned for each bad one, for the caller to leave out and count.
    """
    if not skip_bad_images:
        require_files(paths, "image file", source)
        return []
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        problems = list(pool.map(_problem, paths))
    return [(path, why) for path, why in zip(paths, problems) if why]


def drop_bad_images(items: Sequence[T], path_of: Callable[[T], str], source: str,
                    skip_bad_images: bool) -> tuple[list[T], list[tuple[str, str]]]:
    """``items`` whose image passes :func:`check_images`, and ``(path, reason)`` for the others."""
    bad_images = check_images([path_of(item) for item in items], source, skip_bad_images)
    bad = {path for path, _ in bad_images}
    return [item for item in items if path_of(item) not in bad], bad_images
