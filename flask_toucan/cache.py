"""Token cache and single-flight.

A token is served from the cache until ``expires_at - margin``; the key is a
hash of everything that went into it (user, attributes, permissions, mode), so
a changed attribute or role is a different key and gets a fresh token.

Single-flight: concurrent requests for the same key in one process wait for
the first one's upstream call instead of making their own. (Across processes
the shared store still serves the result once it is there; a burst that
starts in several workers at the same instant may mint once per worker.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from cachelib import BaseCache

from .exceptions import StoreUnavailable
from .tokens import EmbedToken, utc_from_timestamp

log = logging.getLogger("flask_toucan")


def cache_key(parts: Mapping[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return "tok:" + hashlib.sha256(blob.encode()).hexdigest()


class TokenCache:
    def __init__(self, store: BaseCache, margin: Callable[[float], float]) -> None:
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
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if not leader:
            call.done.wait()
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
            call.done.set()


class _Call:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
