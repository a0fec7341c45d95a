"""CSRF tokens for the refresh endpoint and logout.

A token is the session's server-side id signed with itsdangerous (``SECRET_KEY``
plus a salt, with ``SECRET_KEY_FALLBACKS`` honoured for rotation). It is bound
to the session: a new login opens a new id, so old tokens stop working; a token
from another session never matches.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Flask, current_app, g, session
from itsdangerous import BadData, URLSafeTimedSerializer, timed

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
    value = _verified(app, token, max_age)
    return value is not None and hmac.compare_digest(value, sid)


def _verified(app: Flask, token: str, max_age: int) -> str | None:
    """The session id ``token`` signs, if its signature and age check out (memoised per process).

    A page's refresh script sends the same token again and again; checking its
    HMAC once and remembering the answer until the token's own expiry saves
    the refresh endpoint that work. Only tokens that verified are remembered,
    keyed by the whole token, with the expiry their signed timestamp gives.
    """
    memo: dict[str, tuple[str, float]] = app.extensions.setdefault("toucan.csrf_verified", {})
    # itsdangerous's clock (the one its timestamps and max_age use), as tests may set it.
    now: float = getattr(timed, "time").time()  # noqa: B009
    hit = memo.get(token)
    if hit is not None and now < hit[1]:
        return hit[0]
    try:
        value, signed_at = serializer(app).loads(token, max_age=max_age, return_timestamp=True)
    except (BadData, ValueError, TypeError, OverflowError):
        return None
    if not isinstance(value, str):
        return None
    if len(memo) >= MAX_REMEMBERED:
        memo.clear()
    memo[token] = (value, signed_at.timestamp() + max_age)
    return value


def session_token() -> str:
    """The CSRF token of this session (memoised per request; send it in ``TOUCAN_CSRF_HEADER``)."""
    return token_for(session.get(SESSION_ID))


def token_for(sid: Any, app: Flask | None = None, max_age: int | None = None, memo: Any = None) -> str:
    """:func:`session_token` for a session id the caller already read.

    ``app``, ``max_age`` (``TOUCAN_CSRF_MAX_AGE``) and ``memo`` (``flask.g``'s
    object): the current request's unless given.
    """
    if not isinstance(sid, str):
        raise AuthenticationRequired("no session: log in first")
    memo = g if memo is None else memo
    token: str | None = memo.get("_toucan_csrf")
    if token is None:
        if app is None or max_age is None:
            app, max_age = current_app._get_current_object(), get_state().config.csrf_max_age  # type: ignore[attr-defined]
        token = memo.setdefault("_toucan_csrf", _recent_token(app, sid, max_age))
    return token


#: How long a session's CSRF token is handed out again instead of signing a new one.
REUSE_SECONDS = 60.0
#: Sessions remembered per process (cleared when full: the next page signs anew).
MAX_REMEMBERED = 10_000


def _recent_token(app: Flask, sid: str, max_age: int) -> str:
    """This session's token signed in the last minute, else a new one.

    Signing (HMAC, JSON, base64, a timestamp) is the largest part of a page's
    kit work; every page of one session gets a token for the same session id
    anyway, so one signed a few seconds earlier is as good (it expires at most
    :data:`REUSE_SECONDS` sooner; ``TOUCAN_CSRF_MAX_AGE`` is hours). Per
    process and keyed by the session id: nothing crosses sessions.
    """
    recent: dict[str, tuple[str, float]] = app.extensions.setdefault("toucan.csrf_recent", {})
    now = time.monotonic()
    found = recent.get(sid)
    reuse = min(REUSE_SECONDS, max_age / 60)
    if found is not None and now - found[1] < reuse:
        return found[0]
    if len(recent) >= MAX_REMEMBERED:
        recent.clear()
    token = make_token(app, sid)
    recent[sid] = (token, now)
    return token


def require(token: Any, app: Flask | None = None, config: Any = None, cookie: Any = None) -> str:
    """The session id ``token`` belongs to, or :class:`CSRFError` naming the header to send it in.

    ``app``, ``config``, ``cookie`` (the session): the current request's unless the caller has them.
    """
    if app is None or config is None or cookie is None:
        app, config, cookie = current_app._get_current_object(), get_state().config, session  # type: ignore[attr-defined]
    sid = cookie.get(SESSION_ID)
    if not isinstance(sid, str) or not check_token(app, token, sid, config.csrf_max_age):
        raise CSRFError(f"missing or invalid CSRF token (send it in {config.csrf_header})")
    return sid
