"""Signed mode: the host's JWKS (cached, refetched sparingly) and seen ``jti``s.

The sandbox trusts the host's public keys, fetched from its JWKS URL. The set
is cached; a token whose ``kid`` is not in the cache triggers a refetch, but
at most one per cool-down (default 30 s), whatever the number of requests, so
a stream of tokens with a bogus ``kid`` cannot turn the sandbox into a
hammer on the host. Verification itself is :func:`flask_toucan.verify.verify_token`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import jwt
import requests

from ..exceptions import InvalidTokenError
from ..verify import verify_token

MAX_JWKS_BYTES = 256 * 1024


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

    def verify(self, token: str, *, issuer: str, audience: str) -> dict[str, Any]:
        """Verified claims, or :class:`InvalidTokenError`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("token is not a well-formed JWS") from None
        kid = header.get("kid")
        return verify_token(
            token, self.keys_for(kid if isinstance(kid, str) else None), issuer=issuer, audience=audience
        )


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
