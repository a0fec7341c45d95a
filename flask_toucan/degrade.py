"""What a request gets while the shared store is down: a 503, never a 500.

:class:`StoreUnavailable` reaches this handler from the blueprint's views (the
refresh endpoint, login, callback, logout) and, with ``TOUCAN_ERROR_HANDLERS``,
from the host app's own views (a view that reads ``toucan.current_user``).
API callers (the refresh endpoint, or a client that asks for JSON) get the
usual JSON error body; browsers get a short HTML page
(``toucan/unavailable.html``, overridable like the placeholder). Both carry
``Retry-After`` and ``Cache-Control: no-store``, and neither says more than
the store's kind: no URL, no host, no traceback.
"""

from __future__ import annotations

import logging

from flask import render_template, request
from werkzeug.wrappers import Response

from .exceptions import StoreUnavailable
from .views import handle_error

log = logging.getLogger("flask_toucan")

#: Endpoints that always answer JSON.
JSON_ENDPOINTS = frozenset({"toucan.token", "toucan.jwks"})


def wants_json() -> bool:
    if request.endpoint in JSON_ENDPOINTS or request.is_json:
        return True
    accept = request.accept_mimetypes
    return accept.best_match(["text/html", "application/json"]) == "application/json" and (
        accept["application/json"] > accept["text/html"]
    )


def handle_store_unavailable(exc: StoreUnavailable) -> Response:
    if wants_json():
        return handle_error(exc)
    log.warning("flask-toucan: %s: %s", type(exc).__name__, exc.message)
    body = render_template("toucan/unavailable.html", retry_after=exc.retry_after)
    response = Response(body, status=exc.status_code, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response
