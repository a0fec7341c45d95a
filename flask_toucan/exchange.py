"""RFC 7523 jwt-bearer exchange: signed assertion -> opaque embed token.

Self-hosted deployments that ask for it accept our signed JWT at their token
endpoint and answer with an opaque token. The request body is built and the
answer read with Authlib's OAuth 2 helpers; the HTTP call goes through the
same :class:`~flask_toucan.http.Transport` (deadline, retries) as ``api`` mode.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from authlib.common.urls import url_decode
from authlib.oauth2.rfc6749 import OAuth2Token
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oauth2.rfc7523.jwt_bearer import JWT_BEARER_GRANT_TYPE

from .exceptions import UpstreamError
from .http import Transport
from .wire import MAX_TOKEN_LENGTH, MAX_UPSTREAM_LIFETIME


def exchange_assertion(transport: Transport, url: str, assertion: str) -> tuple[str, int]:
    """Return ``(access_token, lifetime_seconds)`` or raise :class:`UpstreamError`."""
    host = urlsplit(url).netloc
    body = prepare_token_request(JWT_BEARER_GRANT_TYPE, assertion=assertion)
    resp = transport.post(
        url,
        what="token exchange",
        data=dict(url_decode(body)),
        headers={"Accept": "application/json"},
    )
    try:
        data = json.loads(resp.body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamError(f"token exchange at {host} answered HTTP {resp.status} without JSON")
    if resp.status != 200 or "error" in data:
        # The error code is safe to show (RFC 6749 5.2 vocabulary); the description may not be.
        error = data.get("error")
        code = error if isinstance(error, str) else "unknown"
        raise UpstreamError(f"token exchange at {host} refused the assertion ({code[:40]})")
    token = OAuth2Token.from_dict(data)
    value = token.get("access_token")
    lifetime = token.get("expires_in")
    if not isinstance(value, str) or not value or len(value) > MAX_TOKEN_LENGTH:
        raise UpstreamError(f"token exchange at {host} sent no usable access_token")
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, int)
        or not 0 < lifetime <= MAX_UPSTREAM_LIFETIME
    ):
        raise UpstreamError(f"token exchange at {host} sent an unusable expires_in")
    return value, lifetime
