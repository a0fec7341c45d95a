"""Where per-user state that several workers must share is kept.

``TOUCAN_STORE`` is ``"memory"`` (default, one process), ``"redis://..."``
(several workers or hosts), ``"file:///path"`` (several workers on one host),
or any ``cachelib.BaseCache``. It holds cached tokens and the server-side
session registry (what makes a logout stick even if an old cookie is replayed).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from cachelib import BaseCache, FileSystemCache, SimpleCache

from .exceptions import ConfigurationError


def make_store(spec: Any) -> BaseCache:
    if isinstance(spec, BaseCache):
        return spec
    if spec in (None, "memory"):
        return SimpleCache(threshold=10_000, default_timeout=0)
    if isinstance(spec, str) and spec.startswith(("redis://", "rediss://", "unix://")):
        try:
            import redis
        except ImportError:
            raise ConfigurationError(
                "TOUCAN_STORE names Redis but the redis package is missing: pip install 'flask-toucan[redis]'"
            ) from None
        from cachelib import RedisCache

        return RedisCache(host=redis.Redis.from_url(spec), key_prefix="toucan:", default_timeout=0)
    if isinstance(spec, str) and spec.startswith("file://"):
        return FileSystemCache(urlsplit(spec).path, threshold=10_000, default_timeout=0, mode=0o600)
    raise ConfigurationError("TOUCAN_STORE must be 'memory', a redis:// or file:// URL, or a cachelib cache")


def limits_storage_uri(spec: Any) -> str:
    """The ``limits`` storage matching ``TOUCAN_STORE`` (Redis is shared; else per process)."""
    if isinstance(spec, str) and spec.startswith(("redis://", "rediss://", "unix://")):
        return spec
    return "memory://"


class SessionRegistry:
    """Server-side record of live login sessions, keyed by a random session id.

    The cookie carries the id; logout deletes the record, so a replayed
    pre-logout cookie is no longer a logged-in session anywhere. Fails closed:
    an id the store does not know is logged out.
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
        if isinstance(sid, str) and sid:
            self.store.delete(self.prefix + sid)
