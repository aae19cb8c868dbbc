"""Unlabelled images from a file or a directory, for the predict phase."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import is_image_file, read_image


class ImageFiles(Dataset):
    def __init__(self, path: str, transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        if os.path.isdir(path):
            self.paths = sorted(os.path.join(root, name) for root, _, names in os.walk(path)
                                for name in names if is_image_file(name))
        elif os.path.isfile(path):
            self.paths = [path]
        else:
            raise DatasetError(f"{path}: no such file or directory")
        if not self.paths:
            raise DatasetError(f"{path}: no image files found")
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = image_sample(read_image(self.paths[index]), self.paths[index])
        return self.transforms(sample) if self.transforms is not None else sample


def image_sample(image: Any, path: str) -> dict[str, Any]:
    """An unlabelled image as the test transforms read it (files here, request bodies in the model server)."""
    return {"image": image, "path": path, "orig_size": image.shape[:2]}
