"""The in-process store (``TOUCAN_STORE="memory"``): bounded, O(1) per operation.

Two separate LRU maps, because their entries are worth very different things:

* **tokens** (keys starting ``tok:``): a lost token costs one upstream call;
  past ``TOUCAN_STORE_MAX_TOKENS`` the least recently used goes first.
* **records** (everything else: login records ``sid:...``, assistant thread
  lists): a lost login record logs its user out. They live in a map of their
  own that tokens can never push out; past ``TOUCAN_STORE_MAX_SESSIONS`` the
  least recently used record goes and a warning says so.

Each map is an :class:`~collections.OrderedDict` used as an LRU list
(``move_to_end`` / ``popitem(last=False)`` are O(1)); an entry's expiry is
checked when it is read and expired entries age out like any other. cachelib's
``SimpleCache`` (the previous default) sorted the whole cache on every write
past its threshold, and tokens and logins shared its 10,000 slots.

Values that are not ``str``/``bytes``/numbers are pickled on the way in, so a
caller mutating what it got back never changes the stored entry (what
``SimpleCache`` does too).
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections import OrderedDict
from typing import Any

from cachelib import BaseCache

log = logging.getLogger("flask_toucan")

#: Defaults of TOUCAN_STORE_MAX_TOKENS / TOUCAN_STORE_MAX_SESSIONS.
DEFAULT_MAX_TOKENS = 100_000
DEFAULT_MAX_SESSIONS = 100_000
TOKEN_PREFIX = "tok:"  # noqa: S105 - a key prefix, not a password
#: What :mod:`flask_toucan.sessions` and the back-channel route keep beside the login records
#: (details, indexes, used ``jti``): a map of their own, so they never evict a login record.
INDEX_PREFIXES = ("login:", "logins:", "bcl:")
_PLAIN = (str, bytes, int, float)


class _Pickled(bytes):
    """Marks a value stored pickled (a plain ``bytes`` value is stored as is)."""


class BoundedLRU:
    """One LRU map with per-entry expiry; ``on_evict(key)`` is told about capacity evictions."""

    def __init__(self, capacity: int, on_evict: Any = None) -> None:
        self.capacity = capacity
        self.on_evict = on_evict
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, now: float) -> tuple[bool, Any]:
        entry = self._data.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if expires and expires <= now:
            del self._data[key]
            return False, None
        self._data.move_to_end(key)
        return True, value

    def set(self, key: str, value: Any, expires: float) -> None:
        data = self._data
        if key in data:
            data.move_to_end(key)
        data[key] = (expires, value)
        while len(data) > self.capacity:
            old, _ = data.popitem(last=False)
            self.evictions += 1
            if self.on_evict is not None:
                self.on_evict(old)

    def delete(self, key: str) -> bool:
        return self._data.pop(key, None) is not None

    def clear(self) -> None:
        self._data.clear()


class MemoryStore(BaseCache):
    """A cachelib cache for one process: tokens and login records kept apart (see module doc)."""

    def __init__(
        self,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        clock: Any = time.time,
    ) -> None:
        super().__init__(default_timeout=0)
        self.clock = clock
        self._lock = threading.Lock()
        self.tokens = BoundedLRU(max_tokens)
        self.records = BoundedLRU(max_sessions, on_evict=self._record_lost)
        # Up to three entries per login (details, subject index, provider-session index).
        self.index = BoundedLRU(3 * max_sessions)

    def __repr__(self) -> str:
        return f"MemoryStore(max_tokens={self.tokens.capacity}, max_sessions={self.records.capacity})"

    def _record_lost(self, key: str) -> None:
        # The key's kind only: a login record's key is its session id.
        what = "a login record (that user is logged out)" if key.startswith("sid:") else "a record"
        log.warning(
            "flask-toucan: the memory store is full (TOUCAN_STORE_MAX_SESSIONS=%d): evicted %s",
            self.records.capacity,
            what,
        )

    def _map(self, key: str) -> BoundedLRU:
        if key.startswith(TOKEN_PREFIX):
            return self.tokens
        return self.index if key.startswith(INDEX_PREFIXES) else self.records

    def _expiry(self, timeout: Any) -> float:
        timeout = self._normalize_timeout(timeout)
        return self.clock() + timeout if timeout > 0 else 0.0

    def get(self, key: str) -> Any:
        with self._lock:
            found, value = self._map(key).get(key, self.clock())
        if found and isinstance(value, _Pickled):
            return pickle.loads(value)  # noqa: S301 - bytes this process pickled itself
        return value

    def has(self, key: str) -> bool:
        with self._lock:
            return self._map(key).get(key, self.clock())[0]

    def set(self, key: str, value: Any, timeout: Any = None) -> bool:
        stored, expires = _frozen(value), self._expiry(timeout)
        with self._lock:
            self._map(key).set(key, stored, expires)
        return True

    def add(self, key: str, value: Any, timeout: Any = None) -> bool:
        stored, expires = _frozen(value), self._expiry(timeout)
        with self._lock:
            lru = self._map(key)
            if lru.get(key, self.clock())[0]:
                return False
            lru.set(key, stored, expires)
        return True

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._map(key).delete(key)

    def clear(self) -> bool:
        with self._lock:
            self.tokens.clear()
            self.records.clear()
            self.index.clear()
        return True

    def inc(self, key: str, delta: int = 1) -> int:
        with self._lock:
            lru = self._map(key)
            found, value = lru.get(key, self.clock())
            result = (value if found and isinstance(value, int) else 0) + delta
            lru.set(key, result, 0.0)
        return result

    def dec(self, key: str, delta: int = 1) -> int:
        return self.inc(key, -delta)


def _frozen(value: Any) -> Any:
    return value if isinstance(value, _PLAIN) else _Pickled(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
