"""Calling a registered component with parameters from the hypes, so that a wrong parameter is an
error on its hypes key (``train.aug_trans.random_hflip.ratio: not a parameter of transform
random_hflip; its parameters: p, flip_pairs``), never a Python signature. Torch-free."""
from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from cauchy.schema import HypesError, Problems

_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")
_NAMED = re.compile(r"(\w+): (.*)", re.S)  # a component's ValueError about one parameter: "size: expected ..."
_MISSING = re.compile(r"missing \d+ required (?:keyword-only |positional )?arguments?: (.+)")


def _signature(factory: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):
        return None


def accepted(factory: Callable[..., Any]) -> tuple[list[str], bool]:
    """The keyword parameters ``factory`` names, and whether it takes any other (``**kwargs``)."""
    sig = _signature(factory)
    if sig is None:
        return [], True
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [n for n, p in sig.parameters.items() if p.kind in kinds]
    return names, any(p.kind == inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def check_parameters(factory: Callable[..., Any], what: str, params_key: str, params: Mapping[str, Any],
                     given: Mapping[str, Any]) -> None:
    """Every entry of ``params`` (the hypes section at ``params_key``) is a parameter of ``factory``
    (``what``: "transform random_hflip"), and every required one is given; ``given`` are the
    arguments the builder passes itself. All problems are raised together."""
    problems = Problems()
    names, open_ended = accepted(factory)
    settable = [n for n in names if n not in given]
    if not open_ended:
        for name in sorted(set(params) - set(settable)):
            reason = "set by Cauchy itself" if name in given else "not a parameter"
            problems.add(HypesError(f"{params_key}.{name}", f"{reason} of {what}; its parameters: "
                                                            f"{', '.join(settable) or '(none)'}"))
    sig = _signature(factory)
    for name, p in (sig.parameters.items() if sig else ()):
        if p.default is inspect.Parameter.empty and name in settable and name not in params:
            problems.add(HypesError(f"{params_key}.{name}", f"required by {what}"))
    problems.raise_any()


def call_component(factory: Callable[..., Any], what: str, params_key: str, params: Mapping[str, Any],
                   given: Mapping[str, Any]) -> Any:
    """``factory(**given, **params)`` after :func:`check_parameters`. A component that takes ``**kwargs``
    (a torchvision model) and refuses one, or rejects a value (``ValueError``), is reported on its key."""
    check_parameters(factory, what, params_key, params, given)
    try:
        return factory(**given, **params)
    except HypesError:
        raise
    except TypeError as exc:
        unexpected, missing = _UNEXPECTED.search(str(exc)), _MISSING.search(str(exc))
        if unexpected:
            raise HypesError(f"{params_key}.{unexpected.group(1)}", f"not a parameter of {what}") from None
        if missing:
            raise HypesError(params_key, f"{what} needs {missing.group(1)}") from None
        raise
    except ValueError as exc:
        named = _NAMED.match(str(exc))
        if named and named.group(1) in params:
            raise HypesError(f"{params_key}.{named.group(1)}", f"{named.group(2)} ({what})") from None
        raise HypesError(params_key, f"{what}: {exc}") from None
