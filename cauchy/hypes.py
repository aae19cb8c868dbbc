"""Hypes: the JSON document that describes one job, validated against a declarative schema.

Keeps torchcv's top-level shape so old files load, but unlike torchcv's global config object it
is checked once, up front: an unknown key, a wrong type or an impossible value is a `HypesError`
whose message starts with the key path. Torch-free so the control service can import it.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cauchy.files import atomic_write
from cauchy.registry import TASKS
from cauchy.schema import (
    MAX_DEPTH,
    FreeDict,
    HypesError,
    HypesErrors,
    Problems,
    Schema,
    boolean,
    check_document,
    integer,
    integers,
    merge,
    name_or_names,
    number,
    numbers,
    string,
    strings,
    validate,
)
from cauchy.tasks import Task

__all__ = ["SCHEMA", "HypesError", "HypesErrors", "Problems", "apply_overrides",
           "load_hypes", "parse_override", "resolve_hypes", "save_hypes",
           "schema_for", "task_of", "unset_override"]


def split_section(batch_size: int) -> Schema:
    """Loader settings of one split (train, val or test)."""
    return {
        "batch_size": integer(batch_size, ge=1),
        "shuffle": boolean(False),
        "drop_last": boolean(False),
        "aug_trans": FreeDict({"trans_seq": []}),
        "data_transformer": FreeDict({}),
    }


SCHEMA: Schema = {
    "task": string(),  # one of the registered tasks (``cauchy.tasks``)
    "method": string(),
    "dataset": string(""),
    "data": {
        "format": string(),
        "data_dir": string(),
        # A dataset of the control service's store, "name" or "name@version": the service fills data_dir
        # (and format, when absent) from it and records the exact version here.
        "dataset": string(None, nullable=True),
        "num_classes": integer(None, ge=1, nullable=True),
        "class_names": strings(None, nullable=True),
        "train_split": string("train"),
        "val_split": string("val"),
        "test_split": string("val"),
        "workers": integer(2, ge=0),
        "image_tool": string("cv2", choices=("cv2",)),
        "input_mode": string("RGB", choices=("RGB",)),
        "normalize": {
            "div_value": number(255.0, gt=0),
            "mean": numbers([0.485, 0.456, 0.406], length=3),
            "std": numbers([0.229, 0.224, 0.225], length=3, positive=True),
        },
        "skip_bad_images": boolean(False),
        "params": FreeDict({}),
    },
    "train": {**split_section(32), "shuffle": boolean(True)},
    "val": {**split_section(64), "evaluator": name_or_names(None, nullable=True)},
    "test": {**split_section(64), "evaluator": name_or_names(None, nullable=True)},
    "network": {
        "model_name": string(),
        "params": FreeDict({}),
        "pretrained": string(None, nullable=True),
        "pretrained_sha256": string(None, nullable=True),
        "freeze": strings([]),
        "checkpoints_name": string(None, nullable=True),
    },
    "solver": {
        "max_epoch": integer(None, ge=1, nullable=True),
        "max_iters": integer(None, ge=1, nullable=True),
        "lr": {
            "metric": string("epoch", choices=("epoch", "iters")),
            "base_lr": number(gt=0),
            "lr_policy": string("fixed", choices=("fixed", "step", "multistep", "cosine", "poly",
                                                  "lambda_poly", "plateau")),
            "step": {"step_size": integer(30, ge=1), "gamma": number(0.1, gt=0, le=1)},
            "multistep": {"stepvalue": integers([]), "gamma": number(0.1, gt=0, le=1)},
            "poly": {"power": number(0.9, gt=0)},
            "lambda_poly": {"power": number(0.9, gt=0)},
            "cosine": {"min_lr": number(0.0, ge=0)},
            "plateau": {"factor": number(0.1, gt=0, le=1), "patience": integer(2, ge=0),
                        "min_lr": number(0.0, ge=0)},
            "warm": {"warm_iters": integer(0, ge=0), "start_factor": number(0.1, gt=0, le=1)},
        },
        "optim": {
            "optim_method": string("sgd", choices=("sgd", "adam", "adamw")),
            "sgd": {"momentum": number(0.9, ge=0, le=1), "weight_decay": number(1e-4, ge=0),
                    "nesterov": boolean(False)},
            "adam": {"betas": numbers([0.9, 0.999], length=2), "eps": number(1e-8, gt=0),
                     "weight_decay": number(0.0, ge=0)},
            "adamw": {"betas": numbers([0.9, 0.999], length=2), "eps": number(1e-8, gt=0),
                      "weight_decay": number(0.01, ge=0)},
        },
        "clip_grad_norm": number(None, gt=0, nullable=True),
        "amp": boolean(True),  # mixed precision on CUDA: bf16 where the GPU has it, else fp16 with a grad scaler
        "amp_cpu": boolean(False),  # bf16 autocast on the CPU too (with amp; coarser, faster on bf16-capable CPUs)
        "display_iter": integer(20, ge=1),
        "test_interval": integer(1, ge=1),
        "checkpoint": {
            "every": integer(None, ge=1, nullable=True),
            "keep": integer(3, ge=1),
            "best_metric": string(None, nullable=True),
            "best_mode": string("max", choices=("max", "min")),
        },
    },
    "loss": {"loss_type": string("none"), "params": FreeDict({})},
    "details": {
        "seed": integer(0, ge=0),
        "deterministic": boolean(False),
        "device": string("auto", choices=("auto", "cpu", "cuda")),
        "channels_last": boolean(False),
        "sync_bn": boolean(False),  # with several CUDA ranks: batch norm over the global batch (docs/distributed.md)
    },
    "logging": {
        "log_level": string("info", choices=("debug", "info", "warning", "error")),
        "progress_bar": boolean(True),
        "val_images": integer(4, ge=0),  # validation images drawn to the job's Visdom at each evaluation
    },
}

def _check_consistency(h: dict[str, Any]) -> None:
    solver = h["solver"]
    if (solver["max_epoch"] is None) == (solver["max_iters"] is None):
        raise HypesError("solver.max_epoch", "give exactly one of solver.max_epoch and solver.max_iters")
    names = h["data"]["class_names"]
    if names is not None and h["data"]["num_classes"] not in (None, len(names)):
        raise HypesError("data.num_classes", f"is {h['data']['num_classes']} but data.class_names "
                                             f"lists {len(names)} names")


def task_of(name: Any) -> Task:
    """The registered task called ``name``; anything else is an error on the ``task`` key."""
    if not isinstance(name, str) or name not in TASKS:
        raise HypesError("task", f"expected one of {', '.join(TASKS.names())}, got {json.dumps(name)}")
    return TASKS.get(name)


def schema_for(task: str) -> Schema:
    """The base schema with the task's own sections and keys laid over it."""
    return merge(SCHEMA, task_of(task).schema)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` (or torchcv's ``a:b:c=value``) -> (["a", "b", "c"], parsed value)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise HypesError("", f"override {item!r} is not of the form key.path=value")
    path = key.strip().replace(":", ".").split(".")
    if len(path) > MAX_DEPTH:
        raise HypesError(".".join(path[:3]) + "...", f"override key is nested deeper than {MAX_DEPTH} levels")
    if any(not part for part in path):
        raise HypesError(key, "override key has an empty part")
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        value = raw
    check_document(value, key.strip())
    return path, value


def apply_overrides(doc: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Each ``key.path=value`` set; ``key.path=null`` removes the key (it takes its default, or leaves a
    component's parameters): how ``--unset key.path`` is spelled here."""
    doc = copy.deepcopy(doc)
    for item in overrides:
        path, value = parse_override(item)
        node = doc
        for i, part in enumerate(path[:-1]):
            if value is None and not isinstance(node.get(part), dict):
                break  # removing a key under a section the document does not have: nothing to do
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise HypesError(".".join(path[: i + 1]), f"is {json.dumps(child)}, cannot set {'.'.join(path)}")
            node = child
        else:
            if value is None:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
    return doc


def unset_override(key: str) -> str:
    """``--unset key.path`` as the override that removes it."""
    return f"{key}=null"


def resolve_hypes(doc: Mapping[str, Any], overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Overrides applied, defaults filled, everything validated: the hypes a job really runs with."""
    if not isinstance(doc, Mapping):
        raise HypesError("", f"a hypes document must be a JSON object, got {type(doc).__name__}")
    check_document(doc)
    raw = apply_overrides(dict(doc), overrides)
    if "task" not in raw:
        raise HypesError("task", "required key is missing")
    problems = Problems()
    resolved = validate(schema_for(raw["task"]), raw, "", problems)
    if not problems.errors:
        _check_consistency(resolved)
    try:
        problems.raise_any()
    except HypesError as exc:
        exc.partial = resolved  # what validated, defaults where it did not: --check goes on with the components
        raise
    return resolved


def load_hypes(path: str) -> dict[str, Any]:
    """The JSON object in ``path``; a syntax error names the file, line and column."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise HypesError("", f"hypes file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise HypesError("", f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise HypesError("", f"{path}: a hypes file must hold a JSON object")
    return doc


def save_hypes(hypes: Mapping[str, Any], path: str) -> None:
    """Written whole or not at all: a job's hypes.json is also its input when it resumes."""
    text = json.dumps(hypes, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
