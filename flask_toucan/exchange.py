"""RFC 7523 jwt-bearer exchange: signed assertion -> opaque embed token.

The classic profile (self-hosted Toucan, docs-v3 "Embed SDK authentication"):
the host's backend posts its signed assertion to the realm's token endpoint
(``{instance}/api/auth/realms/{tenant}/protocol/openid-connect/token``) with
``scope=embed``, authenticated as the embed client (``toucan-embed-client``)
with the Embed Manager's client secret, and hands only the opaque token it
gets back to the page. The body is built with Authlib's OAuth 2 helpers and
the client authentication (``client_secret_basic`` or ``client_secret_post``)
is Authlib's :class:`~authlib.oauth2.auth.ClientAuth`; the HTTP call goes
through the same :class:`~flask_toucan.http.Transport` (deadline, retries) as
``api`` mode, with one difference: every attempt carries a newly signed
assertion (a new ``jti``), because the server records a ``jti`` before it
checks anything else and a retried duplicate is "token reuse".

A 4xx answer other than 408/429 is permanent (:class:`UpstreamRejected`
carrying the OAuth ``error`` code, not retried); a 5xx is transient. Error
messages name the host and the OAuth error code, never the client secret, the
assertion or the endpoint's free-text ``error_description``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oauth2.rfc7523.jwt_bearer import JWT_BEARER_GRANT_TYPE

from . import hints
from .exceptions import UpstreamError, UpstreamProtocolError, UpstreamRejected
from .http import Transport
from .wire import MAX_TOKEN_LENGTH, MAX_UPSTREAM_LIFETIME, printable_ascii

#: What an OAuth ``error`` value must look like before we log or show it.
OAUTH_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
TRANSIENT_4XX = frozenset({408, 429})


@dataclass(frozen=True, repr=False)
class ExchangeClient:
    """The embed client's credentials (the secret never appears in a repr)."""

    client_id: str
    client_secret: str
    auth_method: str = "client_secret_basic"
    scope: str = "embed"

    def __repr__(self) -> str:
        return f"ExchangeClient(client_id={self.client_id!r}, auth_method={self.auth_method!r})"


def _request(client: ExchangeClient, url: str, assertion: str) -> tuple[dict[str, str], str]:
    """Headers and form body of the token request, client authentication included."""
    body = prepare_token_request(JWT_BEARER_GRANT_TYPE, assertion=assertion, scope=client.scope)
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    auth = ClientAuth(client.client_id, client.client_secret, client.auth_method)
    _, headers, body = auth.prepare("POST", url, headers, body)
    return headers, body


def exchange_assertion(
    transport: Transport, url: str, assertion: str | Callable[[], str], client: ExchangeClient
) -> tuple[str, int]:
    """``(access_token, lifetime_seconds)``, or :class:`UpstreamRejected` / :class:`UpstreamError`.

    ``assertion`` is best a callable that signs a new assertion (new ``jti``) each
    time it is called: it is called once per attempt. A Keycloak-based exchange
    spends a ``jti`` on first sight, so a retry after a lost answer (a proxy's
    504) that resent the same assertion would be refused as reused.
    """
    host = urlsplit(url).netloc
    sign = assertion if callable(assertion) else lambda: assertion

    def fresh() -> dict[str, Any]:
        headers, body = _request(client, url, sign())
        return {"data": body.encode(), "headers": headers}

    resp = transport.post(url, what="token exchange", fresh=fresh)
    try:
        data = json.loads(resp.body)
    except (ValueError, RecursionError):  # RecursionError: a pathologically nested body
        data = None
    if resp.status != 200 or not isinstance(data, dict) or "error" in data:
        raise _refusal(host, resp.status, data)
    return _access_token(host, data), _lifetime(host, data.get("expires_in"))


def _access_token(host: str, data: dict[str, object]) -> str:
    """The answer's ``access_token``: a short printable string, else a protocol error."""
    value = data.get("access_token")
    if not isinstance(value, str) or not value or len(value) > MAX_TOKEN_LENGTH:
        raise UpstreamProtocolError(f"token exchange at {host} sent no usable access_token")
    if not printable_ascii(value):
        raise UpstreamProtocolError(f"token exchange at {host} sent a malformed access_token")
    return value


def _lifetime(host: str, lifetime: object) -> int:
    """``expires_in`` as RFC 6749 has it: a positive integer of seconds, bounded.

    Checked here rather than handed to Authlib's ``OAuth2Token.from_dict``,
    which does arithmetic on it first (``"soon"``, ``1e999`` or ``[300]`` made
    it raise ``ValueError`` / ``OverflowError`` / ``TypeError``: a 500).
    """
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, int)
        or not 0 < lifetime <= MAX_UPSTREAM_LIFETIME
    ):
        raise UpstreamProtocolError(f"token exchange at {host} sent an unusable expires_in")
    return lifetime


def _refusal(host: str, status: int, data: object) -> UpstreamError:
    """Permanent (4xx but 408/429) or transient, with a validated OAuth error code."""
    error = data.get("error") if isinstance(data, dict) else None
    code = error if isinstance(error, str) and OAUTH_ERROR_CODE.match(error) else None
    if 400 <= status < 500 and status not in TRANSIENT_4XX:
        return UpstreamRejected(
            hints.with_hint(
                f"token exchange at {host} refused the request "
                f"(HTTP {status}, {code or 'no OAuth error code'})",
                hints.exchange_refused(status, code),
            ),
            upstream_code=code,
            status=status,
        )
    if status == 200:
        return UpstreamProtocolError(f"token exchange at {host} answered 200 with an error or without JSON")
    return UpstreamError(f"token exchange at {host} answered HTTP {status}", retry_after=5)
