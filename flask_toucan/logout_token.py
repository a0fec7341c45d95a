"""OpenID Connect Back-Channel Logout 1.0: verify a ``logout_token`` (section 2.6).

Core module (no Flask): given the raw token, the provider's keys and who we
are, :func:`verify_logout_token` returns the verified claims or raises
:class:`LogoutTokenError` (HTTP 400, ``{"error": "invalid_request"}``, what the
spec's section 2.8 asks for). Every malformed input is a ``LogoutTokenError``,
never another exception: the endpoint must answer 400, never 500.

What is checked, in the spec's order and a little more:

* a JWS in compact form (three parts; a JWE or a JSON serialisation is refused);
* the header: ``alg`` in an allow-list of asymmetric algorithms (never ``none``,
  never HMAC: the key would be our client secret), no ``jku`` / ``x5u`` / ``jwk``
  / ``x5c`` (a key named by the token itself is no key at all), no ``crit``, a
  ``typ`` that is absent, ``JWT`` or ``logout+jwt``;
* the signature against the provider's JWKS (from its metadata's ``jwks_uri``),
  by joserfc;
* ``iss`` the provider's issuer, ``aud`` our client id, ``iat`` within
  ``max_age`` of now (and not in the future beyond ``leeway``), ``exp`` (when
  present) not passed, ``jti`` present;
* ``events`` a JSON object with the member
  ``http://schemas.openid.net/event/backchannel-logout`` (itself an object);
* ``sub`` and/or ``sid``, and no ``nonce`` (so an id_token is never mistaken for one).

The ``jti`` replay check needs a store: the caller records it (see
:mod:`flask_toucan.backchannel`).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .exceptions import ToucanError

#: The ``events`` member that makes a JWT a logout token.
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: Asymmetric algorithms only (the provider signs with its private key, we hold its JWKS).
ALLOWED_ALGORITHMS = (
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512", "EdDSA"),
)
#: Header members that point at a key chosen by the token itself: refused.
FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit")
ACCEPTED_TYPES = (None, "JWT", "logout+jwt", "application/logout+jwt")
#: Larger than any real logout token; bounds the work done on garbage.
MAX_TOKEN_BYTES = 16 * 1024


class LogoutTokenError(ToucanError):
    """The logout token is malformed or does not verify (400 ``invalid_request``)."""

    status_code = 400
    code = "invalid_request"

    def to_dict(self) -> dict[str, Any]:
        # Back-Channel Logout 1.0 section 2.8 and RFC 6749 5.2's error shape.
        return {"error": self.code, "error_description": self.message}


class LogoutClaims:
    """What a verified logout token says: whose login(s) to end, and its ``jti`` / expiry."""

    __slots__ = ("expires_at", "issuer", "jti", "sid", "sub")

    def __init__(self, issuer: str, sub: str | None, sid: str | None, jti: str, expires_at: float) -> None:
        self.issuer = issuer
        self.sub = sub
        self.sid = sid
        self.jti = jti
        #: Until when a replay of this ``jti`` must be refused (epoch seconds).
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return f"LogoutClaims(issuer={self.issuer!r}, sub={self.sub!r}, sid={self.sid!r})"


def token_header(raw: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, checked for the members we refuse."""
    parts = raw.split(".")
    if len(parts) != 3:
        raise LogoutTokenError("the logout_token is not a signed JWT (compact JWS)")
    try:
        padded = parts[0] + "=" * (-len(parts[0]) % 4)
        header = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise LogoutTokenError("the logout_token's header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise LogoutTokenError("the logout_token's header is not a JSON object")
    for name in FORBIDDEN_HEADERS:
        if name in header:
            raise LogoutTokenError(f"the logout_token's header may not carry '{name}'")
    if header.get("typ") not in ACCEPTED_TYPES:
        raise LogoutTokenError("the logout_token's 'typ' is not a logout token's")
    return header


def verify_logout_token(
    raw: Any,
    keys: dict[str, Any],
    *,
    issuer: str,
    audience: str,
    algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS,
    max_age: float = 300.0,
    leeway: float = 60.0,
    now: float | None = None,
) -> LogoutClaims:
    """The verified claims of ``raw`` (see the module's docstring), or :class:`LogoutTokenError`."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_TOKEN_BYTES:
        raise LogoutTokenError("a logout_token (a JWT of at most 16 KiB) is required")
    header = token_header(raw)
    alg = header.get("alg")
    if alg not in algorithms:
        raise LogoutTokenError("the logout_token's algorithm is not allowed")
    try:
        keyset = KeySet.import_key_set(keys)  # type: ignore[arg-type]
        token = jwt.decode(raw, keyset, algorithms=[alg])
    except (JoseError, ValueError, KeyError, TypeError):
        raise LogoutTokenError("the logout_token's signature does not verify") from None
    claims: dict[str, Any] = token.claims
    return check_claims(claims, issuer=issuer, audience=audience, max_age=max_age, leeway=leeway, now=now)


def check_claims(
    claims: dict[str, Any], *, issuer: str, audience: str, max_age: float, leeway: float, now: float | None
) -> LogoutClaims:
    """Section 2.6 steps 3 to 7 on verified claims."""
    when = time.time() if now is None else now
    if claims.get("iss") != issuer:
        raise LogoutTokenError("the logout_token's issuer is not the provider's")
    aud = claims.get("aud")
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise LogoutTokenError("the logout_token's audience is not this client")
    iat: Any = claims.get("iat")
    if not _number(iat) or iat > when + leeway or iat < when - max_age - leeway:
        raise LogoutTokenError("the logout_token's 'iat' is missing or out of bounds")
    exp = claims.get("exp")
    if exp is not None and (not _number(exp) or exp < when - leeway):
        raise LogoutTokenError("the logout_token has expired")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise LogoutTokenError("the logout_token has no 'jti'")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise LogoutTokenError("the logout_token's 'events' lacks the back-channel logout event")
    if "nonce" in claims:
        raise LogoutTokenError("a logout_token may not carry a 'nonce'")
    sub, sid = claims.get("sub"), claims.get("sid")
    if sub is None and sid is None:
        raise LogoutTokenError("the logout_token names neither 'sub' nor 'sid'")
    for name, value in (("sub", sub), ("sid", sid)):
        if value is not None and (not isinstance(value, str) or not value):
            raise LogoutTokenError(f"the logout_token's '{name}' is not a string")
    expires_at = max(float(exp) if exp is not None else 0.0, float(iat) + max_age) + leeway
    return LogoutClaims(issuer, sub, sid, jti, expires_at)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
