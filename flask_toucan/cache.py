"""Token cache and single-flight.

A token is served from the cache until ``expires_at - margin``; the key is a
hash of everything that went into it (user, attributes, permissions, mode), so
a changed attribute or role is a different key and gets a fresh token.

Single-flight, in two layers:

* :class:`SingleFlight`: concurrent requests for the same key in one process
  wait for the first one's call instead of making their own;
* :class:`SharedFlight`: when the store is shared (Redis), that one call per
  process then takes a short-lived lock in the store; the lock holder calls
  Toucan, every other worker (and host) polls the store for the value with a
  short back-off. A holder that dies leaves a lock that expires after its
  TTL, and the next poller takes over. So N workers x M concurrent renders of
  one user make one upstream call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .exceptions import StoreUnavailable
from .tokens import EmbedToken, utc_from_timestamp

if TYPE_CHECKING:
    from cachelib import BaseCache

log = logging.getLogger("flask_toucan")
T = TypeVar("T")


#: ``json.dumps(..., sort_keys=True, separators=(",", ":"), default=str)`` without building an
#: encoder per call (the same text: the keys of tokens cached before stay valid).
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def cache_key(parts: Mapping[str, Any], tag: str = "") -> str:
    """``tok:`` + the user's hash tag (one cluster slot per user) + a hash of ``parts``."""
    blob = _KEY_ENCODER.encode(parts)
    return "tok:" + tag + hashlib.sha256(blob.encode()).hexdigest()


class TokenCache:
    def __init__(self, store: BaseCache | Any, margin: Callable[[float], float]) -> None:
        self.store = store
        self.margin = margin

    def get(self, key: str) -> EmbedToken | None:
        return self.from_entry(self.store.get(key))

    @staticmethod
    def from_entry(entry: Any) -> EmbedToken | None:
        """The token in a raw store entry, or ``None`` (missing, foreign or due for refresh).

        Public so a caller that read the entry itself, in one ``get_many`` with
        other keys (the page loader: session record + tokens in one round
        trip), decodes it exactly as :meth:`get` does.
        """
        if not isinstance(entry, dict):
            return None
        serve_until = entry["serve_until"]
        if time.time() >= serve_until:
            return None
        return EmbedToken(entry["value"], utc_from_timestamp(entry["exp"]), entry["claims"])

    def set(self, key: str, token: EmbedToken, lifetime: float) -> None:
        exp = token.expires_at.timestamp()
        serve_until = exp - self.margin(lifetime)
        ttl = int(serve_until - time.time())
        if ttl <= 0:
            return
        entry = {"value": token.value, "exp": exp, "serve_until": serve_until, "claims": dict(token.claims)}
        try:
            self.store.set(key, entry, timeout=ttl)
        except StoreUnavailable as exc:
            # The token is minted and good: serve it; the next request mints again.
            log.warning("flask-toucan: token not cached: %s", exc.message)


class SingleFlight:
    """One call per key at a time in this process; the others share its outcome."""

    MAX_TRACKED = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}
        self._completed: dict[str, int] = {}

    def completed(self, key: str) -> int:
        """How many flights for ``key`` have ended in this process (a change counter)."""
        return self._completed.get(key, 0)

    def do(self, key: str, fn: Callable[[], Any]) -> Any:
        with self._lock:
            call = self._calls.get(key)
            if call is None:
                call = self._calls[key] = _Call()
                done = None
            else:
                done = call.waited_on()
        if done is not None:  # a follower: wait for the leader's call to end
            done.acquire()  # held by the leader until its call ends
            done.release()  # for the next waiter
            if call.error is not None:
                raise call.error
            return call.result
        try:
            call.result = fn()
            return call.result
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
                if len(self._completed) >= self.MAX_TRACKED:
                    self._completed.clear()  # worst case: one extra cache read or mint
                self._completed[key] = self._completed.get(key, 0) + 1
                waited = call.done
            if waited is not None:
                waited.release()


class _Call:
    """One flight. ``done`` is a lock the leader holds until the call ends, made (held) by the
    first follower, under :class:`SingleFlight`'s lock: a leader nobody waits for (every mint
    but a stampede's) makes no lock at all."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done: threading.Lock | None = None
        self.result: Any = None
        self.error: BaseException | None = None

    def waited_on(self) -> threading.Lock:
        """The lock to wait on (called with the flights' lock held)."""
        if self.done is None:
            self.done = threading.Lock()
            self.done.acquire()
        return self.done


class SharedFlight:
    """Single-flight across processes and hosts through the store's locks (see module doc).

    ``lock_ttl``: how long a lock lives if its holder never releases it (a
    dead worker); ``wait``: how long a waiter polls before it gives up waiting
    and calls Toucan itself (never forever: a waiter is a user's request).
    """

    FIRST_POLL = 0.005
    MAX_POLL = 0.1

    def __init__(self, store: Any, lock_ttl: float, wait: float) -> None:
        self.store = store
        self.lock_ttl = lock_ttl
        self.wait = wait

    def run(self, key: str, read: Callable[[], T | None], work: Callable[[], T]) -> T:
        """``read()`` the value, or be the one process that runs ``work()`` for it."""
        give_up = time.monotonic() + self.wait
        delay = self.FIRST_POLL
        while True:
            lock = self.store.acquire_lock(key, self.lock_ttl)
            if lock is not None:
                try:
                    # The holder before us may have filled the cache just now.
                    again = read()
                    return again if again is not None else work()
                finally:
                    self.store.release_lock(lock)
            time.sleep(delay)  # back-off between polls of the shared store
            delay = min(delay * 2, self.MAX_POLL)
            got = read()
            if got is not None:
                return got
            if time.monotonic() >= give_up:
                log.warning("flask-toucan: waited %gs for another worker's token; fetching one", self.wait)
                return work()
