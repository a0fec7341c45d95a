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

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cachelib import BaseCache, FileSystemCache, SimpleCache
from limits.errors import StorageError as LimitsStorageError

from .exceptions import ConfigurationError, StoreUnavailable

log = logging.getLogger("flask_toucan")
T = TypeVar("T")

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

#: Defaults of TOUCAN_STORE_CONNECT_TIMEOUT / TOUCAN_STORE_TIMEOUT (seconds) and
#: TOUCAN_STORE_BREAKER_FAILURES / TOUCAN_STORE_BREAKER_COOLDOWN.
DEFAULT_CONNECT_TIMEOUT = 0.5
DEFAULT_TIMEOUT = 0.5
DEFAULT_BREAKER_FAILURES = 3
DEFAULT_BREAKER_COOLDOWN = 2.0


def _store_errors() -> tuple[type[BaseException], ...]:
    """What a store raises when it is down: ``OSError`` (files, sockets), Redis's errors,
    ``limits``' wrapped storage errors.

    Anything else (``TypeError``...) is a bug and is left to surface as one.
    """
    errors: tuple[type[BaseException], ...] = (OSError, LimitsStorageError)
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - the redis extra is not installed
        return errors
    return (*errors, RedisError)


STORE_ERRORS = _store_errors()


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

    def call(self, op: str, fn: Callable[[], T], *, must_succeed: bool = False) -> T:
        """Run one store call through the breaker; ``must_succeed``: a falsy answer is a failure."""
        self.before()
        try:
            result = fn()
        except STORE_ERRORS as exc:
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


class GuardedStore(BaseCache):
    """A cachelib cache whose failures are :class:`StoreUnavailable`, behind a breaker.

    A ``set`` answering ``False`` is a failure too: cachelib's file store logs
    and swallows ``OSError`` (full disk, read-only directory) and reports it
    that way. Its reads also swallow errors and answer ``None`` (a miss): with
    the file store a read failure looks like "no such session" (logged out),
    which fails closed.
    """

    def __init__(self, inner: BaseCache, kind: str, breaker: CircuitBreaker | None = None) -> None:
        super().__init__(default_timeout=0)
        self.inner = inner
        self.kind = kind
        self.breaker = breaker if breaker is not None else CircuitBreaker(kind)

    def __repr__(self) -> str:
        return f"GuardedStore({type(self.inner).__name__}, kind={self.kind!r})"

    def _call(self, op: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self.breaker.call(op, lambda: fn(*args, **kwargs))

    def _write(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        return bool(self.breaker.call(op, lambda: fn(*args, **kwargs), must_succeed=True))

    def get(self, key: str) -> Any:
        return self._call("get", self.inner.get, key)

    def get_many(self, *keys: str) -> list[Any]:
        return list(self._call("get", self.inner.get_many, *keys))

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
        where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
        return f"Redis ({parts.scheme}, {where})"
    if kind == "file":
        return f"file ({urlsplit(spec).path})"
    return kind


def make_store(
    spec: Any,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    timeout: float = DEFAULT_TIMEOUT,
    breaker: CircuitBreaker | None = None,
) -> GuardedStore:
    """The store ``TOUCAN_STORE`` names, guarded (see :class:`GuardedStore`)."""
    kind = store_kind(spec)
    breaker = breaker if breaker is not None else CircuitBreaker(kind)
    if isinstance(spec, GuardedStore):
        return spec
    if isinstance(spec, BaseCache):
        return GuardedStore(spec, kind, breaker)
    if spec in (None, "memory"):
        return GuardedStore(SimpleCache(threshold=10_000, default_timeout=0), kind, breaker)
    if isinstance(spec, str) and spec.startswith(REDIS_SCHEMES):
        from cachelib import RedisCache

        client = redis_client(spec, connect_timeout=connect_timeout, timeout=timeout)
        return GuardedStore(RedisCache(host=client, key_prefix="toucan:", default_timeout=0), kind, breaker)
    if isinstance(spec, str) and spec.startswith("file://"):
        cache = FileSystemCache(urlsplit(spec).path, threshold=10_000, default_timeout=0, mode=0o600)
        return GuardedStore(cache, kind, breaker)
    raise ConfigurationError("TOUCAN_STORE must be 'memory', a redis:// or file:// URL, or a cachelib cache")


def redis_client(spec: str, *, connect_timeout: float, timeout: float) -> Any:
    """A Redis client for the store (see :func:`redis_options`)."""
    import redis

    return redis.Redis.from_url(spec, **redis_options(connect_timeout, timeout))


def redis_options(connect_timeout: float, timeout: float) -> dict[str, Any]:
    """Client options shared by the store and the rate limiter's Redis storage.

    Short socket timeouts, and one immediate retry: redis-py's default is three
    retries with back-off, which against a dead server multiplies every
    request's wait; one retry is enough to replace a pooled connection that a
    Redis restart closed.
    """
    try:
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:
        raise ConfigurationError(
            "TOUCAN_STORE names Redis but the redis package is missing: pip install 'flask-toucan[redis]'"
        ) from None
    return {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 1),
    }


class GuardedLimiter:
    """The refresh endpoint's ``limits`` rate limiter, failing like the store it shares.

    With Redis, the limiter's counters live in the same server as the store and
    share its breaker: a dead Redis is :class:`StoreUnavailable` here too.
    """

    def __init__(self, limiter: Any, breaker: CircuitBreaker) -> None:
        self.limiter = limiter
        self.breaker = breaker

    def hit(self, item: Any, *identifiers: str) -> bool:
        return bool(self.breaker.call("rate limit", lambda: self.limiter.hit(item, *identifiers)))

    def get_window_stats(self, item: Any, *identifiers: str) -> Any:
        return self.breaker.call("rate limit", lambda: self.limiter.get_window_stats(item, *identifiers))


def limits_storage_options(spec: Any, connect_timeout: float, timeout: float) -> dict[str, Any]:
    """Options for ``limits.storage.storage_from_string``: short timeouts, wrapped errors."""
    if isinstance(spec, str) and spec.startswith(REDIS_SCHEMES):
        return {"wrap_exceptions": True, **redis_options(connect_timeout, timeout)}
    return {}


def limits_storage_uri(spec: Any) -> str:
    """The ``limits`` storage matching ``TOUCAN_STORE`` (Redis is shared; else per process).

    ``limits`` spells a Redis unix socket ``redis+unix://``.
    """
    if isinstance(spec, str) and spec.startswith("unix://"):
        return "redis+" + spec
    if isinstance(spec, str) and spec.startswith(REDIS_SCHEMES):
        return spec
    return "memory://"


class SessionRegistry:
    """Server-side record of live login sessions, keyed by a random session id.

    The cookie carries the id; logout deletes the record, so a replayed
    pre-logout cookie is no longer a logged-in session anywhere. Fails closed:
    an id the store does not know is logged out; a store that cannot answer
    raises :class:`StoreUnavailable` (never "logged in").
    """

    prefix = "sid:"

    def __init__(self, store: BaseCache, lifetime: int) -> None:
        self.store = store
        self.lifetime = lifetime

    def open(self, subject_key: str) -> str:
        sid = secrets.token_urlsafe(32)
        self.store.set(self.prefix + sid, subject_key, timeout=self.lifetime)
        return sid

    def is_active(self, sid: Any, subject_key: str) -> bool:
        if not isinstance(sid, str) or not sid:
            return False
        return bool(self.store.get(self.prefix + sid) == subject_key)

    def close(self, sid: Any) -> None:
        """Delete the record; if the store says it could not, make sure it is gone."""
        if isinstance(sid, str) and sid:
            key = self.prefix + sid
            if not self.store.delete(key) and self.store.get(key) is not None:
                kind = getattr(self.store, "kind", "session")
                raise StoreUnavailable(f"the {kind} store could not delete the login record")
