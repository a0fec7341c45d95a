"""Minting: mapped user -> :class:`EmbedToken`, in either mode, behind one interface.

Framework-neutral (no Flask import): the extension feeds it a user, attributes
and permissions; the sandbox, the CLI and the benchmarks can drive it directly.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import signing, wire
from .cache import SharedFlight, SingleFlight, TokenCache, cache_key
from .config import ToucanConfig
from .exceptions import AttributeMappingError
from .http import Transport
from .mappers import AttributeValue, ClassicContext, Permissions
from .store import user_tag
from .tokens import EmbedToken, utc_from_timestamp
from .user import ToucanUser

if TYPE_CHECKING:  # the exchange (Authlib's OAuth 2 + joserfc) is imported when configured
    from .exchange import ExchangeClient
    from .keys import SigningKey  # loaded with signed mode (settings.py)


@dataclass(frozen=True)
class MintRequest:
    user: ToucanUser
    attributes: Mapping[str, AttributeValue]
    permissions: Permissions
    #: The classic profile's roles / privileges / groups / secrets (``signed`` mode).
    classic: ClassicContext | None = None


class Minter(Protocol):
    def mint(self, request: MintRequest) -> tuple[EmbedToken, float]:
        """Return the token and its lifetime in seconds (for the cache margin)."""
        ...


class ApiMinter:
    """``api`` mode: Toucan's token API with the secret API key."""

    def __init__(self, config: ToucanConfig, transport: Transport) -> None:
        assert config.token_url and config.api_key
        self._url = config.token_url
        self._api_key = config.api_key
        self._host = urlsplit(config.token_url).netloc
        self._role = config.user_role
        self._max_ttl = config.max_ttl
        self._transport = transport

    def __repr__(self) -> str:
        return f"ApiMinter(url={self._url!r})"

    def mint(self, request: MintRequest) -> tuple[EmbedToken, float]:
        body = wire.build_request(
            request.user.distinct_id, self._role, request.attributes, request.permissions
        )
        started = time.time()
        resp = self._transport.post(
            self._url,
            what="Toucan token API",
            json=body,
            headers={"x-api-key": self._api_key, "Content-Type": "application/json"},
        )
        value, lifetime = wire.parse_response(resp.status, resp.body, self._host)
        # Toucan decides the lifetime; our maximum only caps how long we serve it.
        # ``expiresIn`` counts whole seconds from an issue time Toucan may have
        # truncated to the second, so the token can end up to one second before
        # ``started + lifetime``: claim that second less (a refresh scheduled
        # from ``expires_in`` must never land after the real expiry).
        served: float = min(lifetime, self._max_ttl)
        served -= min(1.0, served / 4)
        return EmbedToken(value, utc_from_timestamp(started + served), body), served


class SignedMinter:
    """``signed`` mode: sign the assertion here; exchange it (classic profile) when configured.

    With an exchange URL the assertion only ever travels to the exchange
    endpoint: the token handed to pages is the exchanged opaque one. Without
    (signed-direct, kept for the sandbox and tests) the assertion itself is the
    token, so it may carry no ``secrets``.
    """

    def __init__(self, config: ToucanConfig, transport: Transport) -> None:
        assert config.keys and config.issuer and config.audience
        self._config = config
        self._keys = config.keys
        self._transport = transport
        self._client: ExchangeClient | None = None
        if config.exchange_url is not None:
            assert config.exchange_client_secret is not None
            from .exchange import ExchangeClient

            self._client = ExchangeClient(
                config.exchange_client_id,
                config.exchange_client_secret,
                config.exchange_auth_method,
                config.exchange_scope,
            )

    def __repr__(self) -> str:
        return f"SignedMinter(kid={self._keys.current.kid!r}, exchange={self._config.exchange_url!r})"

    def claims_for(self, request: MintRequest, now: float | None = None) -> dict[str, object]:
        """The assertion's claims for ``request`` (see :func:`signing.build_claims`)."""
        c = self._config
        assert c.issuer and c.audience
        context = request.classic if request.classic is not None else ClassicContext()
        if self._client is None and context.secrets:
            raise AttributeMappingError(
                "embed_context.secrets need TOUCAN_EXCHANGE_URL: without the exchange the signed "
                "token goes to the page; no token was issued"
            )
        return signing.build_claims(
            subject=c.assertion_subject,
            username=request.user.distinct_id,
            attributes=request.attributes,
            context=context,
            issuer=c.issuer,
            audience=c.audience,
            ttl=c.token_ttl,
            workspace_id=c.workspace_id,
            now=now,
        )

    def mint(self, request: MintRequest) -> tuple[EmbedToken, float]:
        now = time.time()
        claims = self.claims_for(request, now)
        kept = signing.without_secrets(claims)
        if self._client is None or self._config.exchange_url is None:
            assertion = signing.sign(claims, self._keys.current)
            ttl = self._config.token_ttl
            return EmbedToken(assertion, utc_from_timestamp(now + ttl), kept), ttl
        from .exchange import exchange_assertion

        first: list[dict[str, object]] = [claims]

        def sign() -> str:
            # One assertion per attempt: the exchange spends a jti on first sight, so a
            # retry after a lost answer needs a new jti (and a new iat / exp) to be heard.
            built = first.pop() if first else self.claims_for(request)
            return signing.sign(built, self._keys.current)

        value, lifetime = exchange_assertion(self._transport, self._config.exchange_url, sign, self._client)
        served = min(lifetime, self._config.max_ttl)
        return EmbedToken(value, utc_from_timestamp(now + served), kept), served


class TokenService:
    """Cache + single-flight around a :class:`Minter`.

    Returns ``(token, cached)``.
    """

    def __init__(
        self, minter: Minter, cache: TokenCache, namespace: str, shared: SharedFlight | None = None
    ) -> None:
        self.minter = minter
        self.cache = cache
        self.namespace = namespace
        self.flights = SingleFlight()
        #: Cross-worker single-flight when the store is shared (Redis); else None.
        self.shared = shared
        #: Cache keys by request fingerprint (bounded: cleared when full, a miss recomputes).
        self._keys: dict[Hashable, str] = {}

    def key_for(self, request: MintRequest) -> str:
        """The cache key of ``request`` (the JSON and hash once per :func:`_request_fingerprint`)."""
        fingerprint = _request_fingerprint(request)
        if fingerprint is not None:
            hit = self._keys.get(fingerprint)
            if hit is not None:
                return hit
        key = self._key_of(request)
        if fingerprint is not None:
            if len(self._keys) >= _MAX_KEYS:
                self._keys.clear()
            self._keys[fingerprint] = key
        return key

    def _key_of(self, request: MintRequest) -> str:
        return cache_key(
            {
                "namespace": self.namespace,
                "user": request.user.distinct_id,
                "attributes": dict(request.attributes),
                "permissions": request.permissions,
                # roles/privileges/groups change the token; secrets only as a salted tag
                "classic": _classic_key(request.classic),
            },
            # the same tag as the user's login record (extension's subject key)
            _tag_of(request.user.id),
        )

    def issue(
        self, request: MintRequest, *, missed: int | None = None, key: str | None = None
    ) -> tuple[EmbedToken, bool]:
        """``missed``: the caller read the cache itself and missed, after
        :meth:`SingleFlight.completed` gave this count (the page loader reads
        session and tokens in one ``MGET``): no second read unless a flight
        for the key ended since. ``key``: :meth:`key_for` of ``request``, if
        the caller computed it already.
        """
        key = key if key is not None else self.key_for(request)
        if missed is not None:
            seen = missed
        else:
            seen = self.flights.completed(key)
            hit = self.cache.get(key)
            if hit is not None:
                return hit, True

        def work() -> tuple[EmbedToken, bool]:
            # A flight for this key that ended between our cache read and now
            # has filled the cache: read it again (only then: a store read may
            # be a network round trip).
            if self.flights.completed(key) != seen:
                again = self.cache.get(key)
                if again is not None:
                    return again, True
            if self.shared is not None:
                return self.shared.run(key, lambda: self._cached(key), lambda: self._mint(key, request))
            return self._mint(key, request)

        result: tuple[EmbedToken, bool] = self.flights.do(key, work)
        return result

    def _cached(self, key: str) -> tuple[EmbedToken, bool] | None:
        hit = self.cache.get(key)
        return None if hit is None else (hit, True)

    def _mint(self, key: str, request: MintRequest) -> tuple[EmbedToken, bool]:
        token, lifetime = self.minter.mint(request)
        self.cache.set(key, token, lifetime)
        return token, False


_MAX_KEYS = 4096


def _request_fingerprint(request: MintRequest) -> Hashable | None:
    """Everything :meth:`TokenService.key_for` hashes, as an exact hashable key; else ``None``.

    Exact means equal fingerprints always give the same JSON: only text (and lists
    of text) attribute values, boolean flags, and classic names checked to be text,
    because ``1 == 1.0 == True`` are different JSON. Secrets are never memoised
    (the key holds only their salted tag; they stay out of this memo entirely).
    Anything else is keyed the slow way, every time. (Plain loops: this runs on
    every mint, and a generator per check costs more than the check.)
    """
    if type(request.attributes) is not dict or type(request.permissions) is not dict:
        return None  # another shape (a hand-built request): keyed the slow way
    attributes: list[Hashable] = []
    for name, value in request.attributes.items():
        kind = type(value)
        if kind is str:
            attributes.append((name, value))
        elif kind is list and _all_text(value):
            attributes.append((name, (list, *value)))
        else:
            return None
    permissions: list[Hashable] = []
    for resource, flags in request.permissions.items():
        if type(flags) is not dict:
            return None
        for on in flags.values():
            if type(on) is not bool:
                return None
        permissions.append((resource, tuple(flags.items())))
    classic = _classic_fingerprint(request.classic)
    if classic is None:
        return None
    user = request.user
    return (user.id, user.distinct_id, tuple(attributes), tuple(permissions), classic)


def _all_text(items: list[Any]) -> bool:
    for item in items:
        if type(item) is not str:
            return False
    return True


def _classic_fingerprint(context: ClassicContext | None) -> Hashable | None:
    """The classic context as an exact hashable key (``()`` for none); ``None``: not memoisable."""
    if context is None:
        return ()
    if context.secrets:
        return None
    roles, groups, privileges = context.roles, context.groups, context.privileges
    if type(roles) is not list or type(groups) is not list or type(privileges) is not dict:
        return None
    if not (_all_text(roles) and _all_text(groups)):
        return None
    apps: list[Hashable] = []
    for app, names in privileges.items():
        if type(app) is not str or type(names) is not list or not _all_text(names):
            return None
        apps.append((app, tuple(names)))
    return (tuple(roles), tuple(apps), tuple(groups))


@lru_cache(maxsize=4096)
def _tag_of(user_id: tuple[str, str]) -> str:
    """The user's hash tag from their (issuer, subject) (memoised: a pure function, bounded)."""
    return user_tag(json.dumps(list(user_id)))


def make_service(config: ToucanConfig, transport: Transport, cache: TokenCache) -> TokenService:
    minter: Minter = ApiMinter(config, transport) if config.mode == "api" else SignedMinter(config, transport)
    return TokenService(minter, cache, namespace_for(config), shared_flight(config, cache.store))


def shared_flight(config: ToucanConfig, store: object) -> SharedFlight | None:
    """Cross-worker single-flight for a shared store (Redis); ``None`` for a per-process one.

    The lock lives as long as one upstream call may take (``TOUCAN_STORE_LOCK_TTL``,
    default ``TOUCAN_HTTP_DEADLINE``); a waiter polls for at most one more of those,
    by which time a dead holder's lock has expired and a waiter has taken over.

    Not when the tokens are never cached (signed mode, no exchange, a
    ``TOUCAN_TOKEN_TTL`` within its own refresh margin): waiting for a value no
    worker will store would only queue every worker's signing behind one lock.
    """
    if not getattr(store, "shared", False) or _never_cached(config):
        return None
    ttl = config.store_lock_ttl if config.store_lock_ttl is not None else config.deadline
    return SharedFlight(store, ttl, ttl + config.deadline)


def _never_cached(config: ToucanConfig) -> bool:
    """Signed-direct tokens whose lifetime is gone within the cache's margin (TokenCache.set skips them)."""
    if config.mode != "signed" or config.exchange_url is not None:
        return False  # the upstream decides the lifetime
    return int(config.token_ttl - config.margin_for(config.token_ttl)) <= 0


def namespace_for(config: ToucanConfig) -> str:
    """What else a cached token depends on, so apps sharing one store never swap tokens.

    Two apps (or a redeploy with a new key, audience or Toucan instance) on the
    same Redis get different cache keys; no secret goes into it.
    """
    keys = config.keys
    parts = (
        config.mode,
        config.token_url,
        _fingerprint(config.api_key.encode()) if config.api_key else None,  # the Toucan account
        config.user_role,
        config.issuer,
        config.audience,
        config.workspace_id,
        config.exchange_url,
        config.exchange_client_id if config.exchange_url else None,
        config.exchange_scope if config.exchange_url else None,
        config.assertion_subject if config.mode == "signed" else None,
        config.token_ttl,
        keys.current.kid if keys else None,
        _fingerprint(_key_bytes(keys.current)) if keys else None,
    )
    return "|".join(str(part) for part in parts)


def _classic_key(context: ClassicContext | None) -> object:
    if context is None:
        return None
    if not context.secrets:  # the default: the tag of "{}", computed once
        return [context.roles, context.privileges, context.groups, _no_secrets_tag()]
    secrets = json.dumps(context.secrets, sort_keys=True, default=str).encode()
    return [context.roles, context.privileges, context.groups, _fingerprint(secrets)]


@lru_cache(maxsize=1)
def _no_secrets_tag() -> str:
    """What :func:`_classic_key` tags an empty secrets object with (the same as before the shortcut)."""
    return _fingerprint(json.dumps({}, sort_keys=True, default=str).encode())


def _fingerprint(secret: bytes) -> str:
    """A one-way tag of a credential (salted SHA-256): distinguishes keys, reveals nothing."""
    return hashlib.sha256(b"flask-toucan.cache-namespace\0" + secret).hexdigest()[:16]


def _key_bytes(key: SigningKey) -> bytes:
    if isinstance(key.public, bytes):
        return key.public  # HMAC: the secret itself, only ever hashed
    return key.public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
