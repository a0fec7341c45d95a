"""CSRF tokens for the refresh endpoint and logout.

A token is the session's server-side id signed with itsdangerous (``SECRET_KEY``
plus a salt, with ``SECRET_KEY_FALLBACKS`` honoured for rotation). It is bound
to the session: a new login opens a new id, so old tokens stop working; a token
from another session never matches.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Flask, current_app, g, session
from itsdangerous import BadData, URLSafeTimedSerializer

from .exceptions import AuthenticationRequired, CSRFError
from .state import SESSION_ID, get_state

SALT = "flask-toucan.csrf"
#: A real token is ~90 characters; anything much longer is refused unread.
MAX_TOKEN_LENGTH = 512


def serializer(app: Flask) -> URLSafeTimedSerializer:
    """One serializer per app, built on first use (keys: fallbacks first, newest last)."""
    cached = app.extensions.get("toucan.csrf")
    if cached is None:
        keys = [*(app.config.get("SECRET_KEY_FALLBACKS") or []), app.secret_key]
        cached = app.extensions["toucan.csrf"] = URLSafeTimedSerializer([k for k in keys if k], salt=SALT)
    return cached


def make_token(app: Flask, sid: str) -> str:
    return str(serializer(app).dumps(sid))


def check_token(app: Flask, token: Any, sid: Any, max_age: int) -> bool:
    """Whether ``token`` is this session's; ``False`` (never an exception) for any other value.

    The header is attacker text: huge, binary or non-ASCII values are refused
    before itsdangerous sees them, and every itsdangerous error (bad base64,
    bad signature, bad timestamp, expired) is a plain "no".
    """
    if not isinstance(token, str) or not isinstance(sid, str) or not token:
        return False
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
        return False
    try:
        value = serializer(app).loads(token, max_age=max_age)
    except (BadData, ValueError, TypeError, OverflowError):
        return False
    return isinstance(value, str) and hmac.compare_digest(value, sid)


def session_token() -> str:
    """The CSRF token of this session (memoised per request; send it in ``TOUCAN_CSRF_HEADER``)."""
    sid = session.get(SESSION_ID)
    if not isinstance(sid, str):
        raise AuthenticationRequired("no session: log in first")
    if "_toucan_csrf" not in g:
        g._toucan_csrf = make_token(current_app, sid)
    token: str = g._toucan_csrf
    return token


def require(token: Any) -> str:
    """The session id ``token`` belongs to, or :class:`CSRFError` naming the header to send it in."""
    config = get_state().config
    sid = session.get(SESSION_ID)
    if not isinstance(sid, str) or not check_token(current_app, token, sid, config.csrf_max_age):
        raise CSRFError(f"missing or invalid CSRF token (send it in {config.csrf_header})")
    return sid
