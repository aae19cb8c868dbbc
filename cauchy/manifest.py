"""The weights host's ``manifest.json``: the task resolves names in it, the service writes it (torch-free)."""
from __future__ import annotations

import json
import os
import re
from typing import Any

MANIFEST = "manifest.json"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # a weights name; always used with fullmatch


def read_manifest(directory: str | os.PathLike) -> list[dict[str, Any]]:
    """The entries, oldest first; an absent manifest is an empty host."""
    try:
        with open(os.path.join(directory, MANIFEST), encoding="utf-8") as fh:
            return json.load(fh)["weights"]
    except FileNotFoundError:
        return []


def find_entry(directory: str | os.PathLike, name: str) -> dict[str, Any] | None:
    return next((entry for entry in read_manifest(directory) if entry["name"] == name), None)


EXPORTS = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "edge": ".edge.zip"}
"""Export format -> file name suffix on the weights host (``<name><suffix>``, beside ``<name>.pth``)."""


def export_file(name: str, fmt: str) -> str:
    return f"{name}{EXPORTS[fmt]}"


def entry_files(entry: dict[str, Any]) -> list[str]:
    """The files of a manifest entry: its weights and each export recorded in its ``exports``."""
    return [entry["file"], *(record["file"] for record in entry.get("exports", {}).values())]
