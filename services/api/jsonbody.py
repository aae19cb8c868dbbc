"""Request bodies parsed with limits: JSON nested 100,000 deep, ``NaN``/``Infinity`` tokens and numbers
such as ``1e999`` are a 400 naming what is wrong, never a crash of the parser or bare ``Infinity``
served back. Installed as the app's JSON provider, so every ``request.get_json`` goes through it."""
from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider

from cauchy.hypes import HypesError, check_document
from services.api.errors import bad_request


def _no_constant(name: str) -> Any:
    raise bad_request(f"{name} is not a number JSON can carry; send a finite number", None, "invalid_body")


class CheckedJSONProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            doc = json.loads(s, parse_constant=_no_constant, **kwargs)
        except RecursionError:
            raise bad_request("the JSON body is nested too deeply", None, "invalid_body") from None
        try:
            check_document(doc)
        except HypesError as exc:
            raise bad_request(f"the JSON body: {exc}", exc.key or None, "invalid_body") from None
        return doc


def json_integer(value: Any) -> int | None:
    """``value`` as an integer if JSON would call it one: ``52`` and ``52.0`` (JSON has one number type, and
    JSON Schema's ``integer`` includes both), never ``true`` or ``52.5``; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
