"""The identity provider's word on a login: the refresh-token grant, at most every N seconds.

A login made through the blueprint's OpenID Connect callback keeps the
provider's tokens server-side (``idp:<id>`` in the store, never the cookie,
never a log). Every ``TOUCAN_IDP_REVALIDATE`` seconds at most, inside a page
or a refresh that would hand out a Toucan token, the refresh token is sent to
the provider's token endpoint (Authlib's client, ``grant_type=refresh_token``):

* a new access token (and possibly a new refresh token, kept): the login stands;
* ``invalid_grant`` / ``invalid_token`` (the user was disabled or removed, the
  grant revoked, the provider's session ended), or a new id_token that fails
  validation or names another ``sub``: :class:`Revoked`, the login ends everywhere;
* the provider unreachable, a 5xx, a non-JSON answer, any other OAuth error:
  :class:`~flask_toucan.exceptions.UpstreamError` (503 with ``Retry-After``).
  An outage is not a logout: the user keeps the login, but gets no new token
  until the provider answers (fail closed on tokens, not on the session).

Core module: the Authlib client is handed in; no Flask request is read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError

from .exceptions import UpstreamError

log = logging.getLogger("flask_toucan")

#: The provider's token fields worth keeping (no ``userinfo``: claims live in the cookie).
KEPT = ("refresh_token", "access_token", "id_token", "expires_at")
#: OAuth errors meaning "this grant is gone" (RFC 6749 5.2; RFC 6750 for ``invalid_token``).
REVOKED_ERRORS = frozenset({"invalid_grant", "invalid_token"})
#: Seconds for one call to the token endpoint, and the Retry-After of an outage.
TIMEOUT = 5.0
RETRY_AFTER = 30


class Revoked(Exception):
    """The provider says the login no longer stands. Its text names the reason, never a token."""


def kept_tokens(token: Mapping[str, Any]) -> dict[str, Any] | None:
    """What to keep of a token response (``None``: no refresh token, nothing to revalidate with)."""
    if not isinstance(token.get("refresh_token"), str) or not token["refresh_token"]:
        return None
    return {k: token[k] for k in KEPT if token.get(k) is not None}


def revalidate(client: Any, kept: Mapping[str, Any], subject: str, issuer: str) -> dict[str, Any]:
    """Ask the provider again; the tokens to keep from now on.

    Raises :class:`Revoked` (end the login) or :class:`UpstreamError` (an outage).
    """
    try:
        token = client.fetch_access_token(
            grant_type="refresh_token", refresh_token=kept["refresh_token"], timeout=TIMEOUT
        )
    except OAuthError as exc:
        error = str(exc.error)[:64]
        if error in REVOKED_ERRORS:
            raise Revoked(f"the identity provider refused the refresh token ({error})") from None
        log.warning("flask-toucan: the identity provider's token endpoint answered %s", error)
        raise _outage() from None
    except (requests.RequestException, ValueError) as exc:
        log.warning("flask-toucan: the identity provider's token endpoint failed: %s", type(exc).__name__)
        raise _outage() from None
    if token.get("id_token"):
        _check_id_token(client, token, subject, issuer)
    renewed = {**kept, **{k: token[k] for k in KEPT if token.get(k) is not None}}
    return renewed


def _check_id_token(client: Any, token: Mapping[str, Any], subject: str, issuer: str) -> None:
    """A refreshed id_token must validate and name the same subject (OIDC Core 12.2)."""
    options = {"iss": {"essential": True, "value": issuer}, "sub": {"essential": True}}
    try:
        claims = client.parse_id_token(dict(token), nonce=None, claims_options=options)
    except requests.RequestException as exc:
        log.warning("flask-toucan: the identity provider's keys could not be read: %s", type(exc).__name__)
        raise _outage() from None
    except Exception as exc:  # Authlib / joserfc validation errors: fail closed
        raise Revoked(f"the refreshed id_token was rejected ({type(exc).__name__})") from None
    if claims is None or claims.get("sub") != subject:
        raise Revoked("the refreshed id_token names another subject")


def _outage() -> UpstreamError:
    return UpstreamError("the identity provider is unreachable; try again", retry_after=RETRY_AFTER)
