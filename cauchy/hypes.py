"""Hypes: the JSON document that describes one job, validated against a declarative schema.

Keeps torchcv's top-level shape so old files load, but unlike torchcv's global config object it
is checked once, up front: an unknown key, a wrong type or an impossible value is a `HypesError`
whose message starts with the key path. Torch-free so the control service can import it.
"""
from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cauchy.files import atomic_write

REQUIRED = object()
MAX_DEPTH = 32  # objects and lists nested deeper than this are refused (copying them would overflow the stack)


class HypesError(ValueError):
    """A hypes document is invalid; ``key`` is the dotted path of the offending entry."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


@dataclass(frozen=True)
class Field:
    """One leaf of the schema: accepted types, default and the condition a value must meet."""

    types: tuple[type, ...]
    expect: str
    default: Any = REQUIRED
    check: Callable[[Any], bool] | None = None
    nullable: bool = False

    def validate(self, key: str, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        ok = isinstance(value, self.types) and not (isinstance(value, bool) and bool not in self.types)
        if ok and int in self.types and float not in self.types and isinstance(value, float):
            ok = False
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok or (self.check is not None and not self.check(value)):
            raise HypesError(key, f"expected {self.expect}, got {json.dumps(value)}")
        return float(value) if self.types == (int, float) and not isinstance(value, bool) else value


@dataclass(frozen=True)
class FreeDict:
    """A dict passed as keyword arguments to a component, which validates its own keys."""

    default: Mapping[str, Any] | None = None


Schema = dict  # nested {key: Field | FreeDict | Schema}


def number(default: Any = REQUIRED, *, gt: float | None = None, ge: float | None = None,
           le: float | None = None, nullable: bool = False) -> Field:
    conds = [f"> {gt:g}" if gt is not None else "", f">= {ge:g}" if ge is not None else "",
             f"<= {le:g}" if le is not None else ""]
    bound = " and ".join(c for c in conds if c)

    def check(v: float) -> bool:
        return (gt is None or v > gt) and (ge is None or v >= ge) and (le is None or v <= le)

    return Field((int, float), "a number" + (f" {bound}" if bound else ""), default, check, nullable)


def integer(default: Any = REQUIRED, *, ge: int | None = None, nullable: bool = False) -> Field:
    expect = "an integer" + (f" >= {ge}" if ge is not None else "")
    return Field((int,), expect, default, (lambda v: v >= ge) if ge is not None else None, nullable)


def string(default: Any = REQUIRED, *, choices: Iterable[str] | None = None, nullable: bool = False) -> Field:
    if choices is None:
        return Field((str,), "a string", default, None, nullable)
    options = tuple(choices)
    return Field((str,), "one of " + ", ".join(options), default, lambda v: v in options, nullable)


def boolean(default: Any = REQUIRED) -> Field:
    return Field((bool,), "true or false", default)


def numbers(default: Any = REQUIRED, *, length: int | None = None, positive: bool = False,
            nullable: bool = False) -> Field:
    what = f"a list of {length} numbers" if length else "a list of numbers"
    what += " > 0" if positive else ""

    def check(v: list) -> bool:
        return (all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                and (length is None or len(v) == length) and (not positive or all(x > 0 for x in v)))

    return Field((list,), what, default, check, nullable)


def integers(default: Any = REQUIRED) -> Field:
    def check(v: list) -> bool:
        return all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)

    return Field((list,), "a list of integers >= 0", default, check)


def strings(default: Any = REQUIRED, *, nullable: bool = False) -> Field:
    return Field((list,), "a list of strings", default, lambda v: all(isinstance(x, str) for x in v), nullable)


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
    "task": string(choices=("cls", "det", "seg", "pose")),
    "method": string(),
    "dataset": string(""),
    "data": {
        "format": string(),
        "data_dir": string(),
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
    "val": {**split_section(64), "evaluator": string(None, nullable=True)},
    "test": {**split_section(64), "evaluator": string(None, nullable=True)},
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
        "amp": boolean(True),
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
    },
    "logging": {
        "log_level": string("info", choices=("debug", "info", "warning", "error")),
        "progress_bar": boolean(True),
    },
}

# Sections only some tasks have (torchcv: ``anchor`` and ``res`` for det, ``target`` for pose).
TASK_SECTIONS: dict[str, Schema] = {
    "det": {
        "anchor": FreeDict({}),
        "res": {
            "score_thresh": number(0.05, ge=0, le=1),
            "nms_iou": number(0.5, gt=0, le=1),
            "max_dets": integer(100, ge=1),
        },
    },
    "pose": {"target": FreeDict({})},
}


def check_document(doc: Any, where: str = "") -> None:
    """Refuse what JSON cannot carry back or a stack cannot copy: a number that is not finite
    (``Infinity``, ``1e999``) anywhere, or nesting deeper than ``MAX_DEPTH``. Iterative, so a document
    nested 100,000 deep is refused rather than crashing the check."""
    stack: list[tuple[Any, str, int]] = [(doc, where, 0)]
    while stack:
        node, key, depth = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            raise HypesError(key, f"expected a finite number, got {node}")
        if isinstance(node, (dict, list)):
            if depth >= MAX_DEPTH:
                raise HypesError(key, f"nested deeper than {MAX_DEPTH} levels")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend((value, f"{key}.{name}" if key else str(name), depth + 1) for name, value in items)


def _validate(schema: Schema, doc: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise HypesError(prefix, f"expected an object, got {json.dumps(doc)}")
    unknown = sorted(set(doc) - set(schema))
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise HypesError(key, "unknown key; valid keys here: " + ", ".join(sorted(schema)))
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(spec, dict):
            out[name] = _validate(spec, doc.get(name, {}), key)
        elif isinstance(spec, FreeDict):
            value = doc.get(name, copy.deepcopy(dict(spec.default or {})))
            if not isinstance(value, dict):
                raise HypesError(key, f"expected an object, got {json.dumps(value)}")
            out[name] = value
        elif name in doc:
            out[name] = spec.validate(key, doc[name])
        elif spec.default is REQUIRED:
            raise HypesError(key, "required key is missing")
        else:
            out[name] = copy.deepcopy(spec.default)
    return out


def _check_consistency(h: dict[str, Any]) -> None:
    solver = h["solver"]
    if (solver["max_epoch"] is None) == (solver["max_iters"] is None):
        raise HypesError("solver.max_epoch", "give exactly one of solver.max_epoch and solver.max_iters")
    names = h["data"]["class_names"]
    if names is not None and h["data"]["num_classes"] not in (None, len(names)):
        raise HypesError("data.num_classes", f"is {h['data']['num_classes']} but data.class_names "
                                             f"lists {len(names)} names")


def schema_for(task: str) -> Schema:
    return {**SCHEMA, **TASK_SECTIONS.get(task, {})}


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
    doc = copy.deepcopy(doc)
    for item in overrides:
        path, value = parse_override(item)
        node = doc
        for i, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise HypesError(".".join(path[: i + 1]), f"is {json.dumps(child)}, cannot set {'.'.join(path)}")
            node = child
        node[path[-1]] = value
    return doc


def resolve_hypes(doc: Mapping[str, Any], overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Overrides applied, defaults filled, everything validated: the hypes a job really runs with."""
    if not isinstance(doc, Mapping):
        raise HypesError("", f"a hypes document must be a JSON object, got {type(doc).__name__}")
    check_document(doc)
    raw = apply_overrides(dict(doc), overrides)
    if "task" not in raw:
        raise HypesError("task", "required key is missing")
    task = SCHEMA["task"].validate("task", raw["task"])
    resolved = _validate(schema_for(task), raw, "")
    _check_consistency(resolved)
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
