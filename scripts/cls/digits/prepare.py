"""Write scikit-learn's bundled 8x8 digits (1,797 images, no download) as image_folder PNGs.

    python scripts/cls/digits/prepare.py --out data/digits [--val-fraction 0.2] [--seed 0]

Layout: ``OUT/{train,val}/<digit>/<index>.png`` (8x8 grayscale, 0..16 scaled to 0..255; the
readers decode it to 3-channel RGB). The split is stratified and fixed by ``--seed``. Running it
again is a no-op when the folder already holds exactly the expected files; otherwise missing
files are written and stray PNGs (e.g. from another split fraction) removed.
"""
from __future__ import annotations

import argparse
import os

import cv2
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SPLITS = ("train", "val")


def planned_files(out: str, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """``{path: 8x8 uint8 image}`` for every file the split should contain."""
    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    indices = np.arange(len(images))
    train, val = train_test_split(indices, test_size=val_fraction, random_state=seed, stratify=digits.target)
    plan = {}
    for split, chosen in zip(SPLITS, (train, val)):
        for i in chosen:
            plan[os.path.join(out, split, str(digits.target[i]), f"{i:04d}.png")] = images[i]
    return plan


def existing_files(out: str) -> set[str]:
    found = set()
    for split in SPLITS:
        for dirpath, _, filenames in os.walk(os.path.join(out, split)):
            found.update(os.path.join(dirpath, name) for name in filenames if name.endswith(".png"))
    return found


def prepare(out: str, val_fraction: float = 0.2, seed: int = 0) -> int:
    """Bring ``out`` to the planned state; returns how many files were written."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"--val-fraction: expected a number between 0 and 1, got {val_fraction}")
    plan = planned_files(out, val_fraction, seed)
    present = existing_files(out)
    for stray in present - plan.keys():
        os.remove(stray)
    written = 0
    for path, image in plan.items():
        if path not in present:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            partial = path + ".partial.png"  # an interrupted run leaves no truncated final file
            if not cv2.imwrite(partial, image):
                raise OSError(f"{path}: could not write PNG")
            os.replace(partial, path)
            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder, e.g. data/digits")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    written = prepare(args.out, args.val_fraction, args.seed)
    state = "already complete" if written == 0 else f"wrote {written} PNGs"
    print(f"{args.out}: {len(existing_files(args.out))} digits in train/val class folders ({state})")


if __name__ == "__main__":
    main()
