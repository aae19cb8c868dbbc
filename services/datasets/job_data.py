"""What a job that names a stored dataset (``data.dataset``) reads of it, decided here once for every way a
job arrives (``POST /api/v1/jobs`` from the page, the CLI or a script, and the legacy ``/cauchy/train``):
the split names and the reader's layout parameters its inspection found (``report.json``), unless the
hypes give them. Torch-free."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from services.datasets.store import DatasetError, Found

SPLIT_KEYS = ("train_split", "val_split", "test_split")


def split_choice(names: Sequence[str]) -> dict[str, str]:
    """The splits a job trains, validates and tests on, of a dataset's split names (an image and mask
    folder set's are ``training`` and ``validation``): training the one named ``train...`` (else the
    first), validation ``val...`` (else another one, else the training split), testing ``test...`` (else
    validation's). Empty for no names."""
    if not names:
        return {}

    def named(prefix: str, among: Sequence[str]) -> str | None:
        return next((name for name in among if re.match(prefix, name, re.IGNORECASE)), None)

    train = named("train", names) or names[0]
    others = [name for name in names if name != train]
    val = named("val", others) or next(iter(others), train)
    return {"train_split": train, "val_split": val, "test_split": named("test", others) or val}


def dataset_overrides(found: Found, report: Any, data: Mapping[str, Any], job_format: str | None) -> list[str]:
    """The ``--set`` overrides that give a job the dataset's split names (``data.train_split``,
    ``val_split``, ``test_split``) and, when the job reads it with the format it was recognised as
    (``job_format``), the reader's layout parameters of its training split (``data.params``, e.g. a COCO
    set's ``image_dir``). What ``data`` (the submitted hypes' section) gives wins; a split it names that
    the dataset lacks is a 400 naming the key and the splits there are."""
    splits = report.get("splits") if isinstance(report, Mapping) else None
    if not isinstance(splits, Mapping) or not splits:
        return []  # no report to read (none is written for a version that is not ready)
    names = list(splits)
    chosen = {**split_choice(names), **{key: data[key] for key in SPLIT_KEYS if data.get(key) is not None}}
    for key in SPLIT_KEYS:
        if chosen[key] not in splits:
            raise DatasetError(400, "unknown_split", f"dataset {found.ref} has no split {chosen[key]!r}; its splits: "
                                                     f"{', '.join(names)}", f"hypes.data.{key}")
    overrides = [f"data.{key}={json.dumps(chosen[key])}" for key in SPLIT_KEYS if data.get(key) is None]
    if job_format == found.version.format:
        given = data.get("params") if isinstance(data.get("params"), Mapping) else {}
        layout = splits[chosen["train_split"]]
        overrides += [f"data.params.{key}={json.dumps(value)}" for key, value in
                      (layout.items() if isinstance(layout, Mapping) else ()) if key != "split" and key not in given]
    return overrides
