"""One error shape for the REST API: ``{"error": {"code", "message", "field"}}`` with its HTTP status."""
from __future__ import annotations

import math

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter


class JobIdConverter(IntegerConverter):
    """``<int:...>`` in routes: at most 18 digits, so a number past the database's range (2**63-1) matches no
    route (a 404 for every method, never a 500 or a 405 from a rule of another method)."""

    regex = r"\d{1,18}"


class ApiError(Exception):
    """An error reply; ``retry_after`` (seconds) when waiting would help (a rate limit)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.retry_after = retry_after


def bad_request(message: str, field: str | None = None, code: str = "invalid") -> ApiError:
    return ApiError(400, code, message, field)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def error_body(code: str, message: str, field: str | None = None) -> dict:
    return {"error": {"code": code, "message": message, "field": field}}


def register_error_handlers(app: Flask) -> None:
    """JSON errors everywhere (the legacy blueprint adds its own reply shape on top)."""

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> ResponseReturnValue:
        return jsonify(error_body(exc.code, exc.message, exc.field)), exc.status, error_headers(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        code = (exc.name or "error").lower().replace(" ", "_")
        return jsonify(error_body(code, exc.description or exc.name)), exc.code, error_headers(exc)


def error_headers(exc: ApiError | HTTPException) -> dict[str, str]:
    """What a client needs beside the body: ``Allow`` on a 405, ``Retry-After`` on a 429 that waiting fixes."""
    if isinstance(exc, HTTPException):
        return {key: value for key, value in exc.get_headers() if key.lower() not in ("content-type", "content-length")}
    return {"Retry-After": str(math.ceil(exc.retry_after))} if isinstance(exc, ApiError) and exc.retry_after else {}
