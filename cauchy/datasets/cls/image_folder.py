"""``root/<split>/<class>/**/*.jpg``: the class is the folder name (torchvision's ImageFolder layout)."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from cauchy.datasets.cls.base import ClsDataset, Sample
from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import IMAGE_EXTENSIONS, is_image_file
from cauchy.registry import DATASETS


def images_under(folder: str) -> Iterator[str]:
    """Every image below ``folder``, in a stable order (lazily: the format detector stops at the first)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        yield from (os.path.join(dirpath, name) for name in sorted(filenames) if is_image_file(name))


@DATASETS.register("image_folder")
def image_folder(root: str, split: str, transforms: Callable[[Sample], Sample] | None = None,
                 skip_bad_images: bool = False, class_names: list[str] | None = None) -> ClsDataset:
    """Classes are the sorted folder names unless ``class_names`` fixes their order (and set)."""
    split_dir = os.path.join(root, split)
    if not os.path.isdir(split_dir):
        raise DatasetError(f"{split_dir}: split folder not found (expected {root}/{split}/<class>/<image>)")
    folders = sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir())
    names = list(class_names) if class_names is not None else folders
    index = {name: i for i, name in enumerate(names)}
    unknown = [folder for folder in folders if folder not in index]
    if unknown:
        raise DatasetError(f"{split_dir}: class folders {unknown} are not in class_names {names}")
    samples = [(path, index[folder]) for folder in folders
               for path in images_under(os.path.join(split_dir, folder))]
    if not samples:
        raise DatasetError(f"{split_dir}: no images found (expected <class>/<image> with one of "
                           f"the extensions {', '.join(IMAGE_EXTENSIONS)})")
    return ClsDataset(samples, names, split_dir, transforms, skip_bad_images)
