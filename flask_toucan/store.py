"""Where per-user state that several workers must share is kept.

``TOUCAN_STORE`` is ``"memory"`` (default, one process), ``"redis://..."``
(several workers or hosts), ``"file:///path"`` (several workers on one host),
or any ``cachelib.BaseCache``. It holds cached tokens and the server-side
session registry (what makes a logout stick even if an old cookie is replayed).

Every store is wrapped in a :class:`GuardedStore`: a store failure (Redis down
or slow, a full disk or an unwritable directory for the file store) becomes
:class:`StoreUnavailable` (503 with ``Retry-After``, the ``unavailable``
placeholder on pages), never a raw ``redis.ConnectionError`` and a 500. A
:class:`CircuitBreaker` keeps a dead Redis from costing every request its socket
timeout: after a few consecutive failures calls fail fast for a cool-down, then
one probe call decides whether the store is back.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import sys
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

from . import logins
from .exceptions import ConfigurationError, StoreUnavailable
from .ratelimit import LocalCounter, Window

log = logging.getLogger("flask_toucan")
T = TypeVar("T")

REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")

#: Defaults of TOUCAN_STORE_CONNECT_TIMEOUT / TOUCAN_STORE_TIMEOUT (seconds) and
#: TOUCAN_STORE_BREAKER_FAILURES / TOUCAN_STORE_BREAKER_COOLDOWN.
DEFAULT_CONNECT_TIMEOUT = 0.5
DEFAULT_TIMEOUT = 0.5
DEFAULT_BREAKER_FAILURES = 3
DEFAULT_BREAKER_COOLDOWN = 2.0


def store_errors() -> tuple[type[BaseException], ...]:
    """What a store raises when it is down: ``OSError`` (files, sockets), Redis's errors.

    Anything else (``TypeError``...) is a bug and is left to surface as one.
    Looked up in ``sys.modules`` (only when a store call failed): redis-py is
    imported only when configured, and a library that was never imported
    raised nothing.
    """
    errors: tuple[type[BaseException], ...] = (OSError,)
    redis_exceptions = sys.modules.get("redis.exceptions")
    if redis_exceptions is not None:
        # A cluster without a reachable node raises RedisClusterException (not a RedisError).
        errors = (*errors, redis_exceptions.RedisError, redis_exceptions.RedisClusterException)
    return errors


class CircuitBreaker:
    """Closed -> open after ``failures`` consecutive failures -> half-open after ``cooldown``.

    While open, :meth:`before` raises :class:`StoreUnavailable` at once (no
    socket, no timeout). Once the cool-down has passed, one caller at a time is
    let through as a probe: its success closes the breaker, its failure opens
    it for another cool-down. Recovery needs no operator. One breaker per
    process (per worker): each worker finds out on its own, at the cost of at
    most ``failures`` slow calls.
    """

    def __init__(
        self,
        kind: str,
        failures: int = DEFAULT_BREAKER_FAILURES,
        cooldown: float = DEFAULT_BREAKER_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.failures = failures
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._opened_at is not None

    def before(self) -> None:
        """Let the call through, or fail fast while the store is known to be down."""
        with self._lock:
            if self._opened_at is None:
                return
            if not self._probing and self.clock() - self._opened_at >= self.cooldown:
                self._probing = True  # this caller is the half-open probe
                return
        raise StoreUnavailable(f"the {self.kind} store is unavailable (circuit open; retrying shortly)")

    def success(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                log.warning("flask-toucan: the %s store is back; circuit closed", self.kind)
            self._count = 0
            self._opened_at = None
            self._probing = False

    def call(self, op: str, fn: Callable[..., T], *args: Any, must_succeed: bool = False, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` through the breaker; ``must_succeed``: a falsy answer is a failure.

        No closure per call: this is every request's path to the store.
        """
        if self._opened_at is not None:
            self.before()
        try:
            result = fn(*args, **kwargs)
        except store_errors() as exc:
            self.failure()
            # The type only: a Redis error's text names the host, a URL may hold a password.
            log.warning("flask-toucan: %s store %s failed: %s", self.kind, op, type(exc).__name__)
            raise StoreUnavailable(
                f"the {self.kind} store is unavailable ({type(exc).__name__} on {op})"
            ) from None
        except BaseException:
            self.abandon()  # not a store outage (a bug, an interrupt): no verdict
            raise
        if must_succeed and not result:
            self.failure()
            log.warning("flask-toucan: %s store %s failed (the store reported it)", self.kind, op)
            raise StoreUnavailable(f"the {self.kind} store is unavailable (could not {op})")
        if self._count or self._opened_at is not None or self._probing:
            self.success()
        return result

    def abandon(self) -> None:
        """A call ended without telling whether the store works: free the probe slot."""
        with self._lock:
            self._probing = False

    def failure(self) -> None:
        with self._lock:
            self._count += 1
            if self._probing or self._count >= self.failures:
                if self._opened_at is None:
                    log.warning(
                        "flask-toucan: the %s store failed %d times; circuit open for %gs",
                        self.kind,
                        self._count,
                        self.cooldown,
                    )
                self._opened_at = self.clock()
                self._probing = False


class GuardedStore:
    """A cachelib cache whose failures are :class:`StoreUnavailable`, behind a breaker.

    It has the cachelib cache interface (``get``, ``set``, ``get_many``...)
    without subclassing ``cachelib.BaseCache``: cachelib is imported when the
    store is made, not by ``import flask_toucan``.

    A ``set`` answering ``False`` is a failure too: cachelib's file store logs
    and swallows ``OSError`` (full disk, read-only directory) and reports it
    that way. Its reads also swallow errors and answer ``None`` (a miss): with
    the file store a read failure looks like "no such session" (logged out),
    which fails closed.
    """

    def __init__(
        self, inner: Any, kind: str, breaker: CircuitBreaker | None = None, locks: Any = None
    ) -> None:
        self.inner = inner
        self.kind = kind
        self.breaker = breaker if breaker is not None else CircuitBreaker(kind)
        #: Cross-worker locks (:class:`~flask_toucan.redis_store.RedisLocks`) when the
        #: store is shared and can hold them; ``None``: in-process single-flight only.
        self.locks = locks
        self._counter: LocalCounter | None = None

    @property
    def shared(self) -> bool:
        """Whether other processes see this store's locks (then a miss is single-flight across them)."""
        return self.locks is not None

    def acquire_lock(self, name: str, ttl: float) -> Any | None:
        """Take the short-lived lock ``name`` (None: somebody else holds it)."""
        assert self.locks is not None
        return self._call("lock", self.locks.acquire, name, ttl)

    def release_lock(self, lock: Any) -> None:
        """Release a lock we took; if the store fails now, the lock's own expiry frees it."""
        assert self.locks is not None
        try:
            self._call("unlock", self.locks.release, lock)
        except StoreUnavailable as exc:
            log.warning("flask-toucan: lock not released (it expires by itself): %s", exc.message)

    def __repr__(self) -> str:
        return f"GuardedStore({type(self.inner).__name__}, kind={self.kind!r})"

    def _call(self, op: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self.breaker.call(op, fn, *args, **kwargs)

    def _write(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        return bool(self.breaker.call(op, fn, *args, must_succeed=True, **kwargs))

    def get(self, key: str) -> Any:
        return self.breaker.call("get", self.inner.get, key)

    def get_many(self, *keys: str) -> list[Any]:
        return list(self.breaker.call("get", self.inner.get_many, *keys))

    def read(self, keys: list[str], windows: list[Window], now: float) -> tuple[list[Any], list[int]]:
        """``get_many(*keys)`` and one hit on each rate-limit window, in one store round trip.

        Redis counts in the same pipeline as the reads (the counters are shared
        by every worker); any other store reads, then counts in this process
        (:class:`~flask_toucan.ratelimit.LocalCounter`), as the memory store
        always has.
        """
        if not windows:
            return self.get_many(*keys), []
        if getattr(self.inner, "counts_in_read", False):  # RedisStore (not imported: redis is optional)
            counters = [(w.key, max(1, math.ceil(w.ends_at - now))) for w in windows]
            values, counts = self.breaker.call("get", self.inner.read, keys, counters)
            return values, counts
        values = self.get_many(*keys) if keys else []
        return values, self.counter.hit(windows, now)

    @property
    def counter(self) -> LocalCounter:
        """The in-process rate-limit counters of a store that does not count (made on first use)."""
        if self._counter is None:
            self._counter = LocalCounter()
        return self._counter

    def has(self, key: str) -> bool:
        return bool(self._call("get", self.inner.has, key))

    def set(self, key: str, value: Any, timeout: Any = None) -> bool:
        return self._write("set", self.inner.set, key, value, timeout=timeout)

    def set_many(self, mapping: dict[str, Any], timeout: Any = None) -> list[Any]:
        return list(self._call("set", self.inner.set_many, mapping, timeout=timeout))

    def add(self, key: str, value: Any, timeout: Any = None) -> bool:
        # False means "already there", not a failure.
        return bool(self._call("add", self.inner.add, key, value, timeout=timeout))

    def delete(self, key: str) -> bool:
        # False may mean "was not there" (Redis) or "could not delete" (files):
        # callers that must know check with a read (SessionRegistry.close).
        return bool(self._call("delete", self.inner.delete, key))

    def delete_many(self, *keys: str) -> list[Any]:
        return list(self._call("delete", self.inner.delete_many, *keys))

    def clear(self) -> bool:
        return bool(self._call("clear", self.inner.clear))

    def inc(self, key: str, delta: int = 1) -> Any:
        return self._call("inc", self.inner.inc, key, delta)

    def dec(self, key: str, delta: int = 1) -> Any:
        return self._call("dec", self.inner.dec, key, delta)


def store_kind(spec: Any) -> str:
    """A name for the store that is safe to show (never the URL: it may hold a password)."""
    if spec in (None, "memory"):
        return "memory"
    if isinstance(spec, str) and spec.startswith(REDIS_SCHEMES):
        return "Redis"
    if isinstance(spec, str) and spec.startswith("file://"):
        return "file"
    return type(spec).__name__


def describe_store(spec: Any) -> str:
    """For ``flask toucan check``: the kind and where, without credentials."""
    kind = store_kind(spec)
    if kind == "Redis":
        parts = urlsplit(spec)
        if parts.scheme == "unix":
            where = parts.path
        else:
            # Several hosts for Sentinel / Cluster; never the user:password part.
            where = parts.netloc.rsplit("@", 1)[-1]
            if "," not in where and ":" not in where:
                where = f"{where}:6379"
        return f"Redis ({parts.scheme}, {where})"
    if kind == "file":
        return f"file ({urlsplit(spec).path})"
    return kind


def describe_near_cache(spec: Any, entries: int) -> str | None:
    """For ``flask toucan check``: the Redis store's near cache, or ``None`` for other stores."""
    if store_kind(spec) != "Redis":
        return None
    if not entries:
        return "off (TOUCAN_STORE_NEAR_CACHE = 0)"
    if spec.startswith(("redis+sentinel://", "redis+cluster://")):
        return "off (Sentinel and Cluster read Redis on every request)"
    return f"up to {entries} entries per worker, kept true by Redis's invalidations"


def make_store(
    spec: Any,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    timeout: float = DEFAULT_TIMEOUT,
    breaker: CircuitBreaker | None = None,
    ca_bundle: str | None = None,
    max_tokens: int | None = None,
    max_sessions: int | None = None,
    near_cache: int = 0,
) -> GuardedStore:
    """The store ``TOUCAN_STORE`` names, guarded (see :class:`GuardedStore`)."""
    from cachelib import BaseCache

    from .filestore import FileStore
    from .memstore import TOKEN_PREFIX, MemoryStore  # a cachelib cache: loads with cachelib, at init_app

    kind = store_kind(spec)
    breaker = breaker if breaker is not None else CircuitBreaker(kind)
    if isinstance(spec, GuardedStore):
        return spec
    if isinstance(spec, BaseCache):
        return GuardedStore(spec, kind, breaker)
    if spec in (None, "memory"):
        capacities = {"max_tokens": max_tokens, "max_sessions": max_sessions}
        return GuardedStore(MemoryStore(**{k: v for k, v in capacities.items() if v}), kind, breaker)
    if isinstance(spec, str) and spec.startswith(REDIS_SCHEMES):
        from .redis_store import RedisLocks, RedisStore

        client = redis_client(spec, connect_timeout=connect_timeout, timeout=timeout, ca_bundle=ca_bundle)
        # The near cache keeps what a cached page reads: login records and tokens.
        inner = RedisStore(
            client, near_cache=near_cache, near_prefixes=(SessionRegistry.prefix, TOKEN_PREFIX)
        )
        return GuardedStore(inner, kind, breaker, locks=RedisLocks(client, "toucan:lock:"))
    if isinstance(spec, str) and spec.startswith("file://"):
        cache = FileStore(urlsplit(spec).path, threshold=10_000, default_timeout=0, mode=0o600)
        return GuardedStore(cache, kind, breaker)
    raise ConfigurationError(
        "TOUCAN_STORE must be 'memory', a redis://, rediss://, unix://, redis+sentinel://, "
        "redis+cluster:// or file:// URL, or a cachelib cache"
    )


def redis_client(spec: str, *, connect_timeout: float, timeout: float, ca_bundle: str | None = None) -> Any:
    """A Redis client for the store (see :mod:`flask_toucan.redis_store`)."""
    from .redis_store import redis_client as make_client

    return make_client(spec, connect_timeout=connect_timeout, timeout=timeout, ca_bundle=ca_bundle)


@lru_cache(maxsize=4096)
def user_tag(subject_key: str) -> str:
    """A Redis Cluster hash tag (``{...}``) naming one user, shared by all of that user's keys.

    Login record, tokens, locks and the refresh rate limit of one user then
    live in one slot (one node): a pipeline or ``MGET`` over them is one
    round trip even on a cluster. A salted hash: the key names no user.
    Memoised (a pure function of the key, bounded): every request of a user
    derives it for its token keys.
    """
    digest = hashlib.sha256(b"flask-toucan.user-tag\0" + subject_key.encode()).hexdigest()
    return "{" + digest[:16] + "}"


class SessionRegistry:
    """Server-side record of live login sessions, keyed by a random session id.

    The cookie carries the id; logout deletes the record, so a replayed
    pre-logout cookie is no longer a logged-in session anywhere. Fails closed:
    an id the store does not know is logged out; a store that cannot answer
    raises :class:`StoreUnavailable` (never "logged in"). The record and when it
    ends (absolute lifetime, idle timeout) are :mod:`flask_toucan.logins`; the
    provider's tokens, when kept for revalidation, live under their own key
    (``idp:<id>``) so an activity write never races a refresh-token rotation.
    """

    prefix = "sid:"
    provider_prefix = "idp:"
    lock_prefix = "rv:"

    def __init__(
        self, store: Any, lifetime: int, idle: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.lifetime = lifetime
        self.policy = logins.Policy(lifetime, idle)
        #: Epoch seconds; tests replace it to move time without sleeping.
        self.clock = clock

    def open(self, subject_key: str, provider: dict[str, Any] | None = None) -> str:
        """A new record (and a new id: never the pre-login one); ``provider``: tokens to keep."""
        # The id starts with the user's hash tag: the record (and the rate limit
        # keyed by the id) share a cluster slot with the user's tokens.
        sid = user_tag(subject_key) + secrets.token_urlsafe(32)
        record = logins.new(subject_key, self.clock(), revalidate=provider is not None)
        if provider is not None:
            self.store.set(self.provider_prefix + sid, provider, timeout=self.lifetime)
        self.store.set(self.prefix + sid, record, timeout=self.policy.ttl(record, record["o"]))
        return sid

    def status(self, record: Any, subject_key: str) -> str:
        """What :func:`flask_toucan.logins.status` says of ``record`` now."""
        return logins.status(record, subject_key, self.clock(), self.policy)

    def is_active(self, sid: Any, subject_key: str) -> bool:
        if not isinstance(sid, str) or not sid:
            return False
        return self.status(self.store.get(self.prefix + sid), subject_key) == logins.ACTIVE

    def write(self, sid: str, record: dict[str, Any]) -> None:
        """Store an updated ``record`` (activity, revalidation) with its new expiry."""
        self.store.set(self.prefix + sid, record, timeout=self.policy.ttl(record, self.clock()))

    def provider_tokens(self, sid: str) -> Any:
        """The provider's tokens kept at login (``None``: none, or gone)."""
        return self.store.get(self.provider_prefix + sid)

    def keep_provider_tokens(self, sid: str, tokens: dict[str, Any]) -> None:
        self.store.set(self.provider_prefix + sid, tokens, timeout=self.lifetime)

    def close(self, sid: Any) -> None:
        """Delete the record; if the store says it could not, make sure it is gone."""
        if isinstance(sid, str) and sid:
            key = self.prefix + sid
            self.store.delete(self.provider_prefix + sid)
            if not self.store.delete(key) and self.store.get(key) is not None:
                kind = getattr(self.store, "kind", "session")
                raise StoreUnavailable(f"the {kind} store could not delete the login record")
