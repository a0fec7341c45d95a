"""The rules Keycloak's JWT Authorization Grant applies to an assertion, for the sandbox's exchange.

Self-hosted Toucan's exchange runs on Keycloak. Its JWT Authorization Grant
(Keycloak 26) is stricter than RFC 7523 alone, and a host that only passes a
lenient stand-in fails against the real server. The sandbox therefore applies,
in this order:

1. the assertion's ``jti`` is single-use and is spent **before** the signature
   is checked: a second request with the same assertion is refused ("Token
   reuse detected") even if the first one's answer never reached the client
   (a proxy's 504). A client must sign a new assertion, with a new ``jti``,
   for every retry;
2. only asymmetric algorithms (RS*, PS*, ES*, EdDSA); ``HS*`` and ``none`` are
   refused by name;
3. after the signature: ``aud`` is one string (never a list), the realm's
   issuer or its token endpoint; the assertion lives at most
   :data:`MAX_LIFETIME` (300 s) past its ``iat``; ``nbf`` gets no clock skew.

Each refusal is an :class:`~authlib.oauth2.rfc6749.InvalidGrantError` (400
``invalid_grant``). The client authentication answers (``invalid_client``,
``unauthorized_client``) are in :mod:`.classic`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError
from joserfc import jws
from joserfc.errors import JoseError

from .hostkeys import ALGORITHMS, SeenJti

#: Most seconds an assertion may live past its ``iat``.
MAX_LIFETIME = 300
#: How long a spent ``jti`` is remembered past the assertion's life (the verifier's leeway).
JTI_GRACE = 60
TOKEN_SUFFIX = "/protocol/openid-connect/token"  # noqa: S105 - a URL path


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims as sent, not yet trusted (only to spend the ``jti`` first)."""
    try:
        compact = jws.extract_compact(assertion.encode())
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, TypeError):
        raise InvalidGrantError(description="the assertion is not a well-formed JWS") from None
    if not isinstance(claims, dict):
        raise InvalidGrantError(description="the assertion's payload is not a JSON object")
    return dict(compact.headers()), claims


def spend_jti(assertion: str, seen: SeenJti, now: float | None = None) -> None:
    """Rules 1 and 2: record the ``jti`` (refusing a reused one), then check the algorithm."""
    now = time.time() if now is None else now
    header, claims = _unverified(assertion)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise InvalidGrantError(description="the assertion has no jti")
    exp = claims.get("exp")
    # Remembered while it could still be accepted: never past iat + MAX_LIFETIME (rule 3).
    until = now + MAX_LIFETIME
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        until = min(float(exp), until)
    if not seen.first_use(jti, until + JTI_GRACE):
        raise InvalidGrantError(description="Token reuse detected")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise InvalidGrantError(
            description=f"the assertion's alg {alg!r} is refused: asymmetric algorithms only"
        )


def check_claims(claims: dict[str, Any], *, token_endpoint: str, extra: tuple[str, ...] = ()) -> None:
    """Rule 3, on verified claims: ``aud`` one accepted string, lifetime, ``nbf`` without skew.

    ``extra``: other audiences the deployment accepts (the sandbox's configured one,
    standing in for the value Toucan's admin interface shows).
    """
    aud = claims.get("aud")
    issuer = token_endpoint.removesuffix(TOKEN_SUFFIX)
    if not isinstance(aud, str):
        raise InvalidGrantError(description="Invalid token audience: aud must be one string")
    if aud not in (issuer, token_endpoint, *extra):
        raise InvalidGrantError(description="Invalid token audience: the realm issuer or its token endpoint")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float) or exp - iat > MAX_LIFETIME:
        raise InvalidGrantError(
            description=f"Token expiration is too far: an assertion lives at most {MAX_LIFETIME} s past iat"
        )
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > time.time():  # no clock skew on nbf
        raise InvalidGrantError(description="Token is not active yet (nbf)")
