"""The pieces the hypes schema is written in (torch-free): typed leaves, free dicts passed to a
component, and validation that names the key path of whatever is wrong. Tasks declare their own
hypes sections with these (``cauchy.tasks``)."""
from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REQUIRED = object()
MAX_DEPTH = 32  # objects and lists nested deeper than this are refused (copying them would overflow the stack)


class HypesError(ValueError):
    """A hypes document is invalid; ``key`` is the dotted path of the offending entry."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.errors: list[HypesError] = [self]
        self.partial: dict[str, Any] | None = None  # resolve_hypes: the document as far as it validated
        super().__init__(f"{key}: {message}" if key else message)


class HypesErrors(HypesError):
    """Several problems of one document, reported together (one line each); ``key`` is the first's."""

    def __init__(self, errors: list[HypesError]) -> None:
        ValueError.__init__(self, "\n".join(str(e) for e in errors))
        self.key = errors[0].key
        self.partial = None
        self.errors = [leaf for error in errors for leaf in error.errors]


class Problems:
    """Collects the errors of a check that goes on after the first (``--check`` reports them all)."""

    def __init__(self) -> None:
        self.errors: list[HypesError] = []

    def add(self, error: HypesError) -> None:
        self.errors.extend(error.errors)

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise HypesErrors(self.errors)


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


def name_or_names(default: Any = REQUIRED, *, nullable: bool = False) -> Field:
    """A component name, or a non-empty list of them (e.g. several evaluators)."""
    def check(v: str | list) -> bool:
        return isinstance(v, str) or (bool(v) and all(isinstance(x, str) for x in v))

    return Field((str, list), "a name or a non-empty list of names", default, check, nullable)


def validate(schema: Schema, doc: Any, prefix: str, problems: Problems | None = None) -> dict[str, Any]:
    """``doc`` checked against ``schema``, defaults filled. With ``problems``, every error is collected
    there and checking goes on (a bad entry keeps its default); without, the first is raised."""
    if problems is None:
        problems = Problems()
        out = validate(schema, doc, prefix, problems)
        problems.raise_any()
        return out
    if not isinstance(doc, dict):
        problems.add(HypesError(prefix, f"expected an object, got {json.dumps(doc)}"))
        doc = {}
    for name in sorted(set(doc) - set(schema)):
        key = f"{prefix}.{name}" if prefix else name
        problems.add(HypesError(key, "unknown key; valid keys here: " + ", ".join(sorted(schema))))
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(spec, dict):
            out[name] = validate(spec, doc.get(name, {}), key, problems)
        elif isinstance(spec, FreeDict):
            value = doc.get(name, copy.deepcopy(dict(spec.default or {})))
            if not isinstance(value, dict):
                problems.add(HypesError(key, f"expected an object, got {json.dumps(value)}"))
                value = copy.deepcopy(dict(spec.default or {}))
            out[name] = value
        elif name in doc:
            try:
                out[name] = spec.validate(key, doc[name])
            except HypesError as exc:
                problems.add(exc)
                out[name] = None if spec.default is REQUIRED else copy.deepcopy(spec.default)
        elif spec.default is REQUIRED:
            problems.add(HypesError(key, "required key is missing"))
            out[name] = None
        else:
            out[name] = copy.deepcopy(spec.default)
    return out




def merge(base: Schema, extra: Schema) -> Schema:
    """``extra`` laid over ``base``: nested sections merged key by key, leaves replaced."""
    out = dict(base)
    for key, spec in extra.items():
        out[key] = merge(out[key], spec) if isinstance(spec, dict) and isinstance(out.get(key), dict) else spec
    return out


def defaults(schema: Schema) -> dict[str, Any]:
    """The values a section takes when the hypes leave it out (required leaves are omitted)."""
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        if isinstance(spec, dict):
            out[name] = defaults(spec)
        elif isinstance(spec, FreeDict):
            out[name] = copy.deepcopy(dict(spec.default or {}))
        elif spec.default is not REQUIRED:
            out[name] = copy.deepcopy(spec.default)
    return out


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
