"""JSON errors in Toucan's envelope: one exception type, one handler, no tracebacks.

Every sandbox API error is ``{"code": "UPPER_SNAKE", "message": "..."}``, the
shape Toucan AI answers with (e.g. HTTP 403 ``NO_ACTIVE_SUBSCRIPTION``), plus
``field`` when a request field is at fault. Only the OAuth token endpoint
(:mod:`.classic`) answers RFC 6749 ``{"error", "error_description"}`` instead.
Messages are fixed strings or name a field; none quotes a token, the API key,
the client secret or the JWE key.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("flask_toucan.sandbox")


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def json_error(
    status: int, error: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    resp = jsonify({"code": error.upper(), "message": message, **extra})
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return json_error(exc.status, exc.error, exc.message, exc.headers, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        name = (exc.name or "error").upper().replace(" ", "_").replace("'", "")
        return json_error(code, name, exc.description or name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.error("sandbox: unexpected %s on a request", type(exc).__name__)
        return json_error(500, "internal_error", "the sandbox failed on this request")
