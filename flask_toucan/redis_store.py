"""Redis as deployments run it: one node (``redis://``, ``rediss://``, ``unix://``),
Sentinel (``redis+sentinel://``) or Cluster (``redis+cluster://``).

Imported only when ``TOUCAN_STORE`` names Redis (``import flask_toucan`` must
not pay for redis-py). The URL forms are the ones the ``limits`` library
(the refresh endpoint's rate limiter) accepts, so one setting points both at
the same deployment:

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

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from .exceptions import ConfigurationError

SENTINEL = "redis+sentinel://"
CLUSTER = "redis+cluster://"


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
    sentinel = Sentinel(hosts, sentinel_kwargs=timeouts, **options)  # type: ignore[no-untyped-call]
    return sentinel.master_for(path[0], password=password, db=db)  # type: ignore[no-untyped-call]


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
        startup_nodes=[ClusterNode(host, port) for host, port in hosts],  # type: ignore[no-untyped-call]
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
