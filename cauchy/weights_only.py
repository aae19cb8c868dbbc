"""Every ``.pth`` Cauchy reads is unpickled weights-only: tensors and plain values (dict, list, tuple, str,
int, float, bool, None), never code. A checkpoint written by anyone who can write a job's files must not
run as the user who loads it (the task, the service's publish step)."""
from __future__ import annotations

import os
from typing import Any

import torch

BOILERPLATE = ("Weights only load failed", "Check the documentation", "Please file an issue")


class UnsafeFileError(ValueError):
    """A file that is not tensors and plain values (a pickle with code in it, or not a torch file at all)."""


def why(exc: Exception) -> str:
    """The line of torch's refusal that says what was found (the rest is the same advice every time)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.startswith(BOILERPLATE)]
    return lines[-1].split(" Please use")[0] if lines else type(exc).__name__  # not advice to allow it


def load_weights_only(path: str | os.PathLike[str], what: str = "file") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; anything else is refused, naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the unpickler's refusal, a truncated zip, a foreign format: say which file
        raise UnsafeFileError(f"{what} {path} does not load as weights only (tensors and plain values): "
                              f"{why(exc)}") from None
