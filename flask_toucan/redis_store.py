"""Redis as deployments run it: one node (``redis://``, ``rediss://``, ``unix://``),
Sentinel (``redis+sentinel://``) or Cluster (``redis+cluster://``).

redis-py is imported only when ``TOUCAN_STORE`` names Redis (``import
flask_toucan`` must not pay for it): this module imports it inside functions.
The URL forms (the ones the ``limits`` library and Flask-Limiter read too):

* ``redis://[:password@]host:port/db``, ``rediss://...`` (TLS; the CA from
  ``TOUCAN_STORE_CA_BUNDLE`` or the URL's ``ssl_ca_certs`` query parameter),
  ``unix:///path/redis.sock``;
* ``redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]``:
  the sentinels are asked for the service's current master (the password is
  the master's);
* ``redis+cluster://[:password@]host:port[,host:port...]``: any reachable
  nodes; the client learns the slot map. Keys of one user share a hash tag
  (see :func:`flask_toucan.store.user_tag`) so they live in one slot.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from .exceptions import ConfigurationError
from .nearcache import NearCache

SENTINEL = "redis+sentinel://"
#: Commands that only read: sent once more after a timeout or a lost connection (a repeat changes nothing).
IDEMPOTENT = frozenset({"GET", "MGET", "EXISTS", "TTL", "PTTL"})
CLUSTER = "redis+cluster://"


def redis_options(connect_timeout: float, timeout: float) -> dict[str, Any]:
    """Options of the store's client (which also counts the rate limit).

    Short socket timeouts, and one immediate retry after a lost connection only:
    redis-py's default is three retries with back-off, which against a dead
    server multiplies every request's wait, and it retries after a timeout too,
    when the command may already have run (an ``INCR`` would count twice).
    """
    try:
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.retry import Retry
    except ImportError:
        raise ConfigurationError(
            "TOUCAN_STORE names Redis but the redis package is missing: pip install 'flask-toucan[redis]'"
        ) from None
    return {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }


def tls_options(spec: str, ca_bundle: str | None) -> dict[str, Any]:
    """``ssl_ca_certs`` for a TLS URL when ``TOUCAN_STORE_CA_BUNDLE`` is set (the URL may say it too)."""
    if ca_bundle and spec.startswith("rediss://"):
        return {"ssl_ca_certs": ca_bundle}
    return {}


def redis_client(spec: str, *, connect_timeout: float, timeout: float, ca_bundle: str | None = None) -> Any:
    """A redis-py client for any of the URL forms in the module doc."""
    options = redis_options(connect_timeout, timeout)
    if spec.startswith(SENTINEL):
        return _sentinel_master(spec, options)
    if spec.startswith(CLUSTER):
        return _cluster(spec, options)
    import redis

    return redis.Redis.from_url(spec, **options, **tls_options(spec, ca_bundle))


def _hosts(netloc: str) -> tuple[str | None, list[tuple[str, int]]]:
    """``[:password@]h1:p1,h2:p2`` -> (password, [(h1, p1), ...])."""
    password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        password = unquote(auth.split(":", 1)[1] if ":" in auth else auth) or None
    hosts = []
    for item in netloc.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError("TOUCAN_STORE: each Redis node must be written host:port")
        hosts.append((host.strip("[]"), int(port)))
    return password, hosts


def _sentinel_master(spec: str, options: dict[str, Any]) -> Any:
    from redis.sentinel import Sentinel

    parts = urlsplit(spec)
    password, hosts = _hosts(parts.netloc)
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ConfigurationError("TOUCAN_STORE: redis+sentinel:// needs the service name as its path")
    db = int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
    timeouts = {k: options[k] for k in ("socket_connect_timeout", "socket_timeout")}
    sentinel = Sentinel(hosts, sentinel_kwargs=timeouts, **options)
    return sentinel.master_for(path[0], password=password, db=db)


def _cluster(spec: str, options: dict[str, Any]) -> Any:
    """A cluster client, connected on first use.

    redis-py reads the slot map when the client is built: built at start-up, a
    cluster that is down then would keep the app from starting; built on first
    use, that is one failed store call (``StoreUnavailable``) like any other.
    """
    return LazyClient(lambda: _cluster_now(spec, options))


class LazyClient:
    """Builds the real client on first attribute access (thread-safe), then delegates to it."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return getattr(client, name)


def _cluster_now(spec: str, options: dict[str, Any]) -> Any:
    from redis.cluster import ClusterNode, RedisCluster

    parts = urlsplit(spec)
    password, hosts = _hosts(parts.netloc)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in hosts],
        password=password,
        **options,
    )


class RedisLocks:
    """Short-lived locks in Redis for the cross-worker single-flight (cache.py).

    redis-py's :class:`redis.lock.Lock`: ``SET name token NX PX ttl`` with a
    random token, released by a compare-and-delete script only while the token
    is still ours; a holder that dies leaves a lock that expires after ``ttl``.
    """

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def acquire(self, name: str, ttl: float) -> Any | None:
        """The lock object if we now hold ``name``, else ``None`` (somebody else does)."""
        lock = self.client.lock(self.prefix + name, timeout=ttl, blocking=False, thread_local=False)
        return lock if lock.acquire(blocking=False) else None

    def release(self, lock: Any) -> None:
        """Release ``lock`` if it is still ours; one that expired meanwhile is left alone."""
        from redis.exceptions import LockError

        try:
            lock.release()
        except LockError:  # expired (and maybe taken by another worker): not ours to delete
            pass


#: How cachelib's RedisCache (this store before 0.x) marked a pickled value: never unpickled here.
LEGACY_PICKLE = b"!"


def encode(value: Any) -> bytes:
    """A store value as JSON (integers stay plain digits, as ``INCR`` writes them)."""
    return json.dumps(value, separators=(",", ":")).encode()


def decode(raw: bytes | None) -> Any:
    """A stored value, or ``None`` (a miss) for anything that is not our JSON.

    A value another writer left in the shared Redis is data, never code: a
    pickle (cachelib's ``!`` prefix, the format before this store) or any
    other unreadable value is a miss, not an ``unpickle`` and not a crash.
    """
    if raw is None or raw[:1] == LEGACY_PICKLE:
        return None
    try:
        return json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError
        return None


class _Held:
    """One thread's connection; collected with the thread's locals, which releases it (a finalizer)."""

    __slots__ = ("__weakref__", "conn", "pid")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.pid = os.getpid()


class RedisStore:
    """The Redis store: cachelib's cache interface over redis-py, values as JSON, one trip per call.

    Why not cachelib's ``RedisCache``: it pickles (a shared Redis that anyone
    else can write to would hand us code to run), and a request's reads and
    its rate-limit count should be one round trip (:meth:`read`).

    With a single server (``redis://``, ``rediss://``, ``unix://``, Sentinel's
    master) each thread keeps one connection of the client's pool for itself
    and writes a call's commands to it at once, then reads the replies:
    redis-py's per-command path (pool checkout with a readiness poll,
    response callbacks, retry wrapper) cost more than the round trip itself
    on a cached page. A connection whose exchange failed is closed before it
    is used again (no reply is ever left unread on it). A failed exchange is
    tried once more, on a fresh connection, only when every command in it is a
    read (:data:`IDEMPOTENT`): a write that timed out may have run, and running
    ``INCRBY`` or ``SET NX`` twice counts twice or reports ``False`` for its own
    write. Before a write, a connection the server closed (a restart) is
    replaced, as redis-py's pool does at checkout. With a Cluster the commands
    go through redis-py's non-transactional pipeline, which routes a slot's keys to its node.

    ``near_cache`` > 0 (one server only): a copy of up to that many login
    records and tokens in this process, kept true by Redis's invalidation
    messages (:mod:`flask_toucan.nearcache`); ``near_prefixes`` name the keys
    it may keep (under ``key_prefix``). A cached page is then no round trip.
    """

    #: The store counts rate-limit windows in its own read (GuardedStore.read checks this).
    counts_in_read = True

    def __init__(
        self,
        client: Any,
        key_prefix: str = "toucan:",
        near_cache: int = 0,
        near_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self._pool = getattr(client, "connection_pool", None) if _single_node(client) else None
        self._local = threading.local()
        #: The near cache, or ``None`` (off, or a Sentinel / Cluster store: see nearcache.py).
        self.near: NearCache | None = None
        if near_cache > 0 and near_prefixes and self._pool is not None and not _sentinel_pool(self._pool):
            prefixes = [key_prefix + p for p in near_prefixes]
            self.near = NearCache(self._listener_connection, prefixes, near_cache)
        from redis.exceptions import ConnectionError as Disconnected
        from redis.exceptions import TimeoutError as TimedOut

        #: After these a read-only exchange is tried once more, on a fresh connection.
        self._retryable = (Disconnected, TimedOut, OSError)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.key_prefix!r})"

    # ------------------------------------------------------------ the round trip
    def execute(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one round trip; their raw replies, in order."""
        if self._pool is None:
            pipe = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return list(pipe.execute())
        reads_only = all(command[0] in IDEMPOTENT for command in commands)
        try:
            return self._exchange(commands, reads_only)
        except self._retryable:
            if not reads_only:
                raise  # it may have run: never twice
            return self._exchange(commands, reads_only)

    def _exchange(self, commands: list[tuple[Any, ...]], reads_only: bool) -> list[Any]:
        conn = self._connection()
        if not reads_only:
            self._ensure_open(conn)
        try:
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            return [conn.read_response() for _ in commands]
        except BaseException:
            conn.disconnect()  # replies may be left unread: the next exchange reconnects
            raise

    def _ensure_open(self, conn: Any) -> None:
        """Reconnect ``conn`` if the server closed it while idle (nothing of ours is unread on it).

        What redis-py's pool checks at checkout (``can_read`` on an idle connection means
        the server hung up or sent something unasked), so a write after a Redis restart is
        sent once, on a live connection, instead of failing on the dead one.
        """
        try:
            stale = conn.can_read(timeout=0)
        except self._retryable:
            stale = True
        if stale:
            conn.disconnect()
            conn.connect()

    def _connection(self) -> Any:
        """This thread's connection (taken from the pool once; a forked child takes its own).

        It goes back to the pool when the thread ends: a server that starts a
        thread per request (Werkzeug's development server) would otherwise
        leave one open connection behind per request.
        """
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():
            assert self._pool is not None
            held = self._local.held = _Held(self._pool.get_connection())
            weakref.finalize(held, self._pool.release, held.conn)
        return held.conn

    def _listener_connection(self) -> Any:
        """A new connection with the pool's settings, outside the pool, speaking RESP2.

        RESP2 because the near cache reads its invalidations as plain pub/sub
        messages (redirect mode); RESP3 would deliver them as push frames
        that redis-py hands to private parser hooks.
        """
        assert self._pool is not None
        return self._pool.connection_class(**{**self._pool.connection_kwargs, "protocol": 2})

    def read(self, keys: list[str], counters: list[tuple[str, int]]) -> tuple[list[Any], list[int]]:
        """``MGET`` of ``keys`` and, in the same round trip, ``INCR`` + ``EXPIRE`` of each counter.

        Without counters, keys the near cache keeps are answered from it when
        it holds them all (no round trip).
        """
        p = self.key_prefix
        near = self.near
        if near is not None and not counters:
            names = [p + k for k in keys]
            if near.covers(names):
                return [decode(v) for v in self._near_read(near, names)], []
        commands: list[tuple[Any, ...]] = [("MGET", *[p + k for k in keys])] if keys else []
        for key, ttl in counters:
            commands += [("INCR", p + key), ("EXPIRE", p + key, ttl)]
        replies = self.execute(commands)
        values = [decode(v) for v in replies[0]] if keys else []
        counts = [int(n) for n in replies[1 if keys else 0 :: 2]]
        return values, counts

    def _near_read(self, near: NearCache, names: list[str]) -> list[Any]:
        """Raw values of ``names`` from the near cache, or from Redis (with their TTLs, to keep them)."""
        raw = near.lookup(names)
        if raw is not None:
            return raw
        ticket = near.begin(names)
        started = near.clock()
        try:
            replies = self.execute([("MGET", *names), *[("PTTL", n) for n in names]])
        except BaseException:
            near.abandon(ticket, names)
            raise
        near.fill(ticket, names, replies[0], replies[1:], started)
        return list(replies[0])

    def _writing(self, *names: str) -> None:
        """Before a write: this process's copies of ``names`` are void at once (Redis tells the others)."""
        if self.near is not None:
            self.near.forget(names)

    # ------------------------------------------------------------ cachelib's interface
    def get(self, key: str) -> Any:
        if self.near is not None:
            return self.read([key], [])[0][0]
        return decode(self.execute([("GET", self.key_prefix + key)])[0])

    def get_many(self, *keys: str) -> list[Any]:
        return self.read(list(keys), [])[0] if keys else []

    def has(self, key: str) -> bool:
        return bool(self.execute([("EXISTS", self.key_prefix + key)])[0])

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        return self._set(key, value, timeout, nx=False)

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        return self._set(key, value, timeout, nx=True)

    def _set(self, key: str, value: Any, timeout: int | None, *, nx: bool) -> bool:
        self._writing(self.key_prefix + key)
        command: tuple[Any, ...] = ("SET", self.key_prefix + key, encode(value))
        if timeout:  # 0 / None: no expiry (cachelib's meaning)
            command += ("EX", int(timeout))
        if nx:
            command += ("NX",)
        return self.execute([command])[0] is not None

    def set_many(self, mapping: dict[str, Any], timeout: int | None = None) -> list[Any]:
        for key, value in mapping.items():
            self.set(key, value, timeout)
        return list(mapping)

    def delete(self, key: str) -> bool:
        self._writing(self.key_prefix + key)
        return bool(self.execute([("DEL", self.key_prefix + key)])[0])

    def delete_many(self, *keys: str) -> list[Any]:
        if keys:
            self._writing(*[self.key_prefix + k for k in keys])
            self.execute([("DEL", *[self.key_prefix + k for k in keys])])
        return list(keys)

    def clear(self) -> bool:
        """Delete every key under the prefix (``SCAN``, never ``KEYS`` or ``FLUSHDB``)."""
        names = list(self.client.scan_iter(match=self.key_prefix + "*"))
        self._writing(*[n.decode() if isinstance(n, bytes) else n for n in names])
        for start in range(0, len(names), 500):
            self.client.delete(*names[start : start + 500])
        return True

    def inc(self, key: str, delta: int = 1) -> int:
        self._writing(self.key_prefix + key)
        return int(self.execute([("INCRBY", self.key_prefix + key, delta)])[0])

    def dec(self, key: str, delta: int = 1) -> int:
        return self.inc(key, -delta)


def _sentinel_pool(pool: Any) -> bool:
    """Sentinel's master pool: a failover may move writes to a server our invalidations do not come from."""
    from redis.sentinel import SentinelConnectionPool

    return isinstance(pool, SentinelConnectionPool)


def _single_node(client: Any) -> bool:
    """A plain client (one server, maybe found by Sentinel), not a Cluster's (which routes by slot)."""
    import redis

    return isinstance(client, redis.Redis)
