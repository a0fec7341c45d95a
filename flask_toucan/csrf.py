"""CSRF tokens for the refresh endpoint and logout.

A token is the session's server-side id signed with itsdangerous (``SECRET_KEY``
plus a salt, with ``SECRET_KEY_FALLBACKS`` honoured for rotation). It is bound
to the session: a new login opens a new id, so old tokens stop working; a token
from another session never matches.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Flask
from itsdangerous import BadSignature, URLSafeTimedSerializer

SALT = "flask-toucan.csrf"


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
    if not isinstance(token, str) or not isinstance(sid, str) or not token or len(token) > 512:
        return False
    try:
        value = serializer(app).loads(token, max_age=max_age)
    except BadSignature:
        return False
    return isinstance(value, str) and hmac.compare_digest(value, sid)
