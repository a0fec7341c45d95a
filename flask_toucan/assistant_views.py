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

from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

from . import identity, issuing, views
from .assistant import AssistantSession, ThreadRegistry
from .exceptions import AuthenticationRequired, BadRequest, ConfigurationError
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


def _body() -> tuple[str, str | None]:
    """``{"question": str, "thread_id": str | null}``, small and strict."""
    body = views.small_json_body(MAX_ASK_BODY)
    if not isinstance(body, dict) or "question" not in body or set(body) - {"question", "thread_id"}:
        raise BadRequest("the body must be a JSON object with 'question' and optionally 'thread_id'")
    question, thread_id = body["question"], body.get("thread_id")
    if not isinstance(question, str) or not question.strip():
        raise BadRequest("'question' must be a non-empty string")
    if thread_id is not None and (not isinstance(thread_id, str) or not thread_id or len(thread_id) > 200):
        raise BadRequest("'thread_id' must be a string")
    return question, thread_id


def ask() -> Response:
    user = views.checked_post("toucan-assistant", "too many questions; slow down")
    question, thread_id = _body()
    with session_for(user) as assistant:
        envelope = assistant.ask(question, thread_id)
    response = jsonify(envelope)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Cookie"
    return response
