"""Signed mode: the host's JWKS (cached, refetched sparingly) and seen ``jti``s.

The sandbox trusts the host's public keys, fetched from its JWKS URL. The set
is cached; a token whose ``kid`` is not in the cache triggers a refetch, but
at most one per cool-down (default 30 s), whatever the number of requests, so
a stream of tokens with a bogus ``kid`` cannot turn the sandbox into a
hammer on the host.

Verification is joserfc's, never :func:`flask_toucan.verify_token`: the
sandbox judges the host with an independent implementation, so one verifier
bug cannot hide on both sides. It is strict the way an identity server is:
tokens over 8 KB are refused before any decoding, only asymmetric algorithms
are accepted, and ``exp``/``nbf``/``iat`` must be JSON numbers (not strings or
booleans); ``exp``, ``iat`` and ``jti`` are required.
"""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import requests
from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet, KeySetSerialization

from ..exceptions import InvalidTokenError

MAX_JWKS_BYTES = 256 * 1024
MAX_ASSERTION_BYTES = 8 * 1024
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
NUMERIC_DATES = ("exp", "nbf", "iat")
LEEWAY = 60


class HostKeys:
    """The host's JWKS, with a refetch cool-down and a fetch counter."""

    def __init__(self, url: str, *, cooldown: float = 30.0, timeout: float = 5.0) -> None:
        self.url = url
        self.cooldown = cooldown
        self.timeout = timeout
        self.fetches = 0
        self._jwks: dict[str, Any] | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.trust_env = False  # local test server: no proxies

    def _fetch(self) -> None:
        self.fetches += 1
        self._fetched_at = time.monotonic()
        try:
            resp = self._session.get(self.url, timeout=self.timeout, allow_redirects=False)
            if resp.status_code != 200 or len(resp.content) > MAX_JWKS_BYTES:
                return
            data = resp.json()
        except (requests.RequestException, ValueError):
            return  # keep the old set; the token is refused if its kid is unknown
        if isinstance(data, dict) and isinstance(data.get("keys"), list):
            self._jwks = {"keys": [k for k in data["keys"] if isinstance(k, dict)]}

    def _kids(self) -> set[str]:
        return {str(k.get("kid")) for k in (self._jwks or {"keys": []})["keys"]}

    def keys_for(self, kid: str | None) -> dict[str, Any]:
        """The JWKS, refetched first if ``kid`` is unknown and the cool-down allows."""
        with self._lock:
            if self._jwks is None and time.monotonic() - self._fetched_at >= self.cooldown:
                self._fetch()
            elif (
                kid is not None
                and kid not in self._kids()
                and time.monotonic() - self._fetched_at >= self.cooldown
            ):
                self._fetch()
            return self._jwks or {"keys": []}

    def verify(self, token: str, *, issuer: str, audience: str | list[str]) -> dict[str, Any]:
        """Verified claims, or :class:`InvalidTokenError` naming the reason."""
        if not isinstance(token, str) or len(token.encode()) > MAX_ASSERTION_BYTES:
            raise InvalidTokenError("token is over 8 KB")
        try:
            kid = jws.extract_compact(token.encode()).headers().get("kid")
        except (JoseError, ValueError):
            raise InvalidTokenError("token is not a well-formed JWS") from None
        keys = self.keys_for(kid if isinstance(kid, str) else None)
        try:
            key_set = KeySet.import_key_set(cast(KeySetSerialization, keys))
            decoded = jwt.decode(token, key_set, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError, TypeError, KeyError):
            raise InvalidTokenError(
                "signature does not verify against the host's JWKS (or bad kid)"
            ) from None
        return check_claims(decoded.claims, issuer=issuer, audience=audience)


def check_claims(claims: dict[str, Any], *, issuer: str, audience: str | list[str]) -> dict[str, Any]:
    """Registered claims: types first (NumericDates are numbers), then values."""
    for name in NUMERIC_DATES:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidTokenError(f"claim {name!r} is not a NumericDate (a JSON number)")
    audiences = [audience] if isinstance(audience, str) else list(audience)
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "values": audiences},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise InvalidTokenError("token has expired") from None
    except JoseError as exc:
        claim = getattr(exc, "claim", None) or "a claim"
        what = {"iss": "issuer", "aud": "audience"}.get(str(claim), str(claim))
        raise InvalidTokenError(f"invalid or missing {what} ({claim})") from None
    return claims


class SeenJti:
    """``jti``s of exchanged assertions, kept until their ``exp`` (replay protection)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, jti: str, exp: float) -> bool:
        """Record ``jti``; ``False`` if it was already seen and has not expired."""
        now = time.time()
        with self._lock:
            for old in [j for j, e in self._seen.items() if e < now]:
                del self._seen[old]
            if jti in self._seen:
                return False
            self._seen[jti] = exp
            return True
