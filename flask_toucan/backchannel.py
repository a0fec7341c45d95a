"""Ending logins from outside the browser: OIDC Back-Channel Logout 1.0 and the operator's call.

* :func:`record_login` (a ``user_logged_in`` receiver) writes each login's
  details and indexes (:mod:`flask_toucan.sessions`), with the provider's
  ``sid`` and id_token when the login came through the blueprint's callback.
* ``POST {prefix}/backchannel-logout`` (``TOUCAN_BACKCHANNEL_LOGOUT``, off by
  default): the provider posts a ``logout_token``; once verified
  (:mod:`flask_toucan.logout_token`) and its ``jti`` recorded (a replay is
  refused), the matching logins' records are deleted, so the next request on
  any worker is anonymous. CSRF-exempt by design: the caller is the provider,
  not a browser, and the signed token is the proof. Any malformed token is a
  400 ``{"error": "invalid_request"}``; every answer is ``Cache-Control: no-store``.
* :func:`end_sessions`: ``toucan.end_sessions(sub=...)`` and ``flask toucan sessions end``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

import requests
from flask import Blueprint, Flask, g, jsonify, request, session
from werkzeug.wrappers import Response

from .exceptions import ConfigurationError, UpstreamError
from .logout_token import ALLOWED_ALGORITHMS, LogoutTokenError, token_header, verify_logout_token
from .sessions import LoginIndex
from .state import SESSION_ID, ToucanState, get_state
from .user import ToucanUser

log = logging.getLogger("flask_toucan")

#: ``g`` key the callback fills before ``login_user``: the provider's ``sid`` and the id_token.
PROVIDER_LOGIN = "_toucan_provider_login"
JTI_PREFIX = "bcl:jti:"
#: A form with one JWT: anything larger is not a logout request.
MAX_BODY = 32 * 1024
#: An unknown ``kid`` refetches the provider's JWKS (a rotation), at most this often per worker.
JWKS_REFETCH_INTERVAL = 60.0
_refetch_lock = threading.Lock()
_last_refetch: dict[int, float] = {}


def index(state: ToucanState | None = None) -> LoginIndex:
    """The app's login index (cheap: two references)."""
    state = state if state is not None else get_state()
    return LoginIndex(state.store, state.sessions)


def record_login(sender: Flask, user: ToucanUser, **_: Any) -> None:
    """``user_logged_in`` receiver: index the new login by subject (and provider session)."""
    login_id = session.get(SESSION_ID)
    if not isinstance(login_id, str):
        return
    provider = g.pop(PROVIDER_LOGIN, None) or {}
    sid = provider.get("sid")
    index().record(
        login_id,
        issuer=user.issuer,
        sub=user.subject,
        sid=sid if isinstance(sid, str) and sid else None,
        id_token=provider.get("id_token"),
    )


def end_sessions(*, sub: str, issuer: str | None = None) -> int:
    """End every live login of ``sub`` (from ``issuer``, or any issuer); how many there were."""
    if not isinstance(sub, str) or not sub:
        raise ValueError("end_sessions needs the subject ('sub') whose logins to end")
    return index().end(sub=sub, issuer=issuer)


def add_routes(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/backchannel-logout", "backchannel_logout", backchannel_logout, methods=["POST"])


def backchannel_logout() -> Response:
    state = get_state()
    client = state.oauth_client
    if client is None:
        raise ConfigurationError("TOUCAN_BACKCHANNEL_LOGOUT needs Toucan(app, oauth=...)")
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise LogoutTokenError("the request is too large for a logout request")
    raw = request.form.get("logout_token")
    if not raw:
        raise LogoutTokenError("the form has no logout_token")
    header = token_header(raw)  # malformed input is refused before any network call
    claims = _verified(client, raw, header)
    ttl = max(1, int(claims.expires_at - time.time()))
    jti_key = JTI_PREFIX + hashlib.sha256(f"{claims.issuer}\0{claims.jti}".encode()).hexdigest()[:40]
    if not state.store.add(jti_key, 1, timeout=ttl):
        raise LogoutTokenError("the logout_token was already used (replayed 'jti')")
    ended = index(state).end(sub=claims.sub, sid=claims.sid, issuer=claims.issuer)
    log.info("flask-toucan: back-channel logout ended %d login(s)", ended)
    response = jsonify({})
    response.headers["Cache-Control"] = "no-store"
    return response


def _verified(client: Any, raw: str, header: dict[str, Any]) -> Any:
    """The verified claims; an unknown ``kid`` refetches the JWKS once (rate-limited)."""
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise LogoutTokenError("the logout_token's algorithm is not allowed")
    try:
        metadata = client.load_server_metadata()
        keys = client.fetch_jwk_set()
    except (requests.RequestException, RuntimeError, ValueError):
        raise UpstreamError("the identity provider's keys could not be loaded; try again") from None
    issuer, audience = str(metadata.get("issuer")), str(client.client_id)
    try:
        return verify_logout_token(raw, keys, issuer=issuer, audience=audience)
    except LogoutTokenError:
        kids = {k.get("kid") for k in keys.get("keys", []) if isinstance(k, dict)}
        kid = header.get("kid")
        if not isinstance(kid, str) or kid in kids or not _may_refetch(client):
            raise
    try:
        keys = client.fetch_jwk_set(force=True)
    except (requests.RequestException, RuntimeError, ValueError):
        raise UpstreamError("the identity provider's keys could not be loaded; try again") from None
    return verify_logout_token(raw, keys, issuer=issuer, audience=audience)


def _may_refetch(client: Any) -> bool:
    now = time.monotonic()
    with _refetch_lock:
        last = _last_refetch.get(id(client))
        if last is not None and now - last < JWKS_REFETCH_INTERVAL:
            return False
        _last_refetch[id(client)] = now
        return True
