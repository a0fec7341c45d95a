"""``POST {prefix}/assistant/ask``: the assistant's answer for a host chat, opt-in.

For hosts that want Toucan's data answer in their own chat UI without wiring
an LLM: the browser posts ``{"question", "thread_id"?}``, the server asks
Toucan's MCP tool as the logged-in user and returns the ``toucan-mcp-v1``
envelope. Enabled by ``TOUCAN_ASSISTANT_ROUTE = True``.

Guarded like the refresh endpoint: same-origin only (``Sec-Fetch-Site`` /
``Origin``), the session's CSRF token in ``TOUCAN_CSRF_HEADER``, the same rate
limit (its own counter). A ``thread_id`` is only passed on if Toucan gave it to
this user before (see :class:`flask_toucan.assistant.ThreadRegistry`). Errors
are the extension's JSON errors: 401 logged out, 403 CSRF or no
``ai.can_query``, 400 bad body, 429, 502 Toucan refused, 503 Toucan down or slow.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

from . import csrf, identity, issuing
from .assistant import AssistantSession, ThreadRegistry
from .exceptions import AuthenticationRequired, BadRequest, ConfigurationError, CSRFError, RateLimited
from .mappers import permissions_for_kind
from .state import get_state, subject_key
from .tokens import EmbedToken
from .user import ToucanUser

MAX_ASK_BODY = 4096


def session_for(user: ToucanUser | None = None) -> AssistantSession:
    """An MCP session with Toucan's assistant for ``user`` (default: current): ``toucan.assistant()``.

    Checks ``ai.can_query`` first, so a user without it gets
    :class:`PermissionDenied` and no token is minted. The session mints its
    token lazily (and again near expiry) in an app context of its own.
    """
    user = user if user is not None else identity.current_user()
    if user is None:
        raise AuthenticationRequired("log in to use the assistant")
    state = get_state()
    permissions_for_kind(state.mappers.map_permissions(user), "assistant")
    config = state.config
    if config.server_url is None:
        raise ConfigurationError("the assistant needs TOUCAN_SERVER_URL (or TOUCAN_BASE_URL)")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    owner = user

    def mint() -> EmbedToken:
        with app.app_context():
            return issuing.issue_for("assistant", owner).token

    return AssistantSession(
        f"{config.server_url}/mcp",
        mint,
        threads=ThreadRegistry(state.store, subject_key(user), config.session_lifetime),
        deadline=config.deadline,
        connect_timeout=config.connect_timeout,
        refresh_margin=config.refresh_margin,
        proxy=config.http_proxy,
        ca_bundle=config.ca_bundle,
        trust_env=config.trust_env,
    )


def add_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/assistant/ask", "assistant_ask", ask, methods=["POST"])


def _check_request() -> Any:
    """Same-origin, logged in, valid CSRF token, under the rate limit: the user."""
    state = get_state()
    config = state.config
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise CSRFError("cross-site assistant requests are refused")
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise CSRFError("cross-origin assistant requests are refused")
    user = identity.current_user()
    if user is None:
        raise AuthenticationRequired("the session has ended; log in again")
    sid = csrf.require(request.headers.get(config.csrf_header))
    if state.limiter is not None and not state.limiter.hit(state.rate, "toucan-assistant", sid):
        reset, _ = state.limiter.get_window_stats(state.rate, "toucan-assistant", sid)
        raise RateLimited("too many questions; slow down", retry_after=max(1, int(reset - time.time()) + 1))
    return user


def _body() -> tuple[str, str | None]:
    """``{"question": str, "thread_id": str | null}``, small and strict."""
    length = request.content_length
    raw = request.stream.read(MAX_ASK_BODY + 1)
    if (length is not None and length > MAX_ASK_BODY) or len(raw) > MAX_ASK_BODY:
        raise BadRequest(f"the body is larger than {MAX_ASK_BODY} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest('the body must be JSON: {"question": ..., "thread_id": ...}') from None
    if not isinstance(body, dict) or "question" not in body or set(body) - {"question", "thread_id"}:
        raise BadRequest("the body must be a JSON object with 'question' and optionally 'thread_id'")
    question, thread_id = body["question"], body.get("thread_id")
    if not isinstance(question, str) or not question.strip():
        raise BadRequest("'question' must be a non-empty string")
    if thread_id is not None and (not isinstance(thread_id, str) or not thread_id or len(thread_id) > 200):
        raise BadRequest("'thread_id' must be a string")
    return question, thread_id


def ask() -> Response:
    user = _check_request()
    question, thread_id = _body()
    with session_for(user) as assistant:
        envelope = assistant.ask(question, thread_id)
    response = jsonify(envelope)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Cookie"
    return response
