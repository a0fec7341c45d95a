"""A worker's copy of the login records and tokens it read from Redis, kept true by Redis itself.

Why: a cached page reads a login record and a token or two, one ``MGET``.
On a small host that round trip costs about as much as rendering the page
(bench row 11). A copy in the worker answers in a microsecond, but a copy that
can go stale is a logout that does not stick: so the copy is only trusted while
Redis keeps it honest.

How: Redis's client-side caching protocol, broadcast mode. One dedicated
connection per worker process runs ``CLIENT TRACKING ON REDIRECT <its own id>
BCAST PREFIX <login records> PREFIX <tokens>`` and ``SUBSCRIBE
__redis__:invalidate``: from then on Redis sends it the name of every key
under those prefixes that any client changes, deletes, or lets expire (and a
null for ``FLUSHDB``/``FLUSHALL``). The connection is never read by a thread
of its own: every lookup first drains whatever is waiting on it (a
non-blocking poll, about a microsecond) and only then answers from the copy.
Redis writes an invalidation out in the same event-loop turn as its reply to
the writer, so once a logout on any worker has been answered, the next lookup
on this worker has the invalidation in hand (over a network, give or take
the two packets' delivery: a page that races a logout may go either way, as
it would without a copy).

Fails closed, always towards "ask Redis":

* no live invalidation connection (not yet made, dropped, refused): no copy
  is used and the copy is emptied;
* no proof that it was alive in the last :data:`HEARTBEAT` seconds: the
  proof is a ``PONG`` to a ``PING`` sent within that time (a ``PONG`` read
  late vouches only for the moment its ``PING`` left; pings go out from half
  that age, so a busy worker never waits for one). A connection cut silently
  by a firewall or a NAT is so distrusted within a second, and dropped when a
  ``PONG`` is :data:`PONG_TIMEOUT` late;
* a value read while an invalidation of its key was in flight is not kept
  (each fetch registers a ticket per key; an invalidation removes it);
* each copy expires when the key does in Redis (its ``PTTL``, read in the
  same round trip), whatever Redis's lazy expiry does;
* a forked child starts with an empty copy and its own connection.

Only a single server is supported (``redis://``, ``rediss://``,
``unix://``). With Sentinel a failover can leave the connection on a demoted
master that no longer sees the writes, and with Cluster each node tracks its
own slots: the store then reads Redis on every request, as before.

Redis 6 or later (``CLIENT TRACKING``); a server or proxy that refuses the
command turns the copy off for the life of the process, with one warning.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("flask_toucan")

#: Seconds without a word on the invalidation connection before it is pinged
#: (and the copy is not trusted until it answers).
HEARTBEAT = 1.0
#: Seconds a PING may wait for its PONG before the connection is taken for dead and dropped.
PONG_TIMEOUT = 3.0
#: The channel Redis sends invalidations to (RESP2 clients, redirect mode).
CHANNEL = "__redis__:invalidate"
#: Keys without an expiry are kept this long at most (Redis would tell of any change anyway).
NO_TTL_CAP = 300.0


class _Ticket:
    """One fetch's claim on the keys it reads; an invalidation of a key withdraws it."""

    __slots__ = ("generation",)

    def __init__(self, generation: int) -> None:
        self.generation = generation


class NearCache:
    """The per-process copy (see module doc). Thread-safe; fork-aware.

    ``connect`` opens a new, unpooled connection to the store's server (the
    store's pool settings: TLS, password, database, timeouts). ``prefixes``
    are full Redis key prefixes; only keys under them are kept.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        prefixes: Sequence[str],
        capacity: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self.prefixes = tuple(prefixes)
        self.capacity = capacity
        self.clock = clock
        self.refused = False  # the server will not track: off for good
        self._reset()

    def _reset(self) -> None:
        """Empty state for this process (at start and in a forked child: the parent's socket is not ours)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._connecting = threading.Lock()
        self._conn: Any = None
        self._entries: dict[str, tuple[bytes, float]] = {}
        self._tickets: dict[str, _Ticket] = {}
        self._generation = 0
        self._heard = 0.0  # when the connection was last proven alive (a PING's send time)
        self._ping_sent: float | None = None
        self._retry_at = 0.0

    def _mine(self) -> None:
        """In a forked child, start over: the locks may be held by threads that did not come along."""
        if self._pid != os.getpid():
            self._reset()

    def __repr__(self) -> str:
        state = "refused" if self.refused else ("live" if self._conn is not None else "idle")
        return f"NearCache({state}, {len(self._entries)}/{self.capacity} entries)"

    def covers(self, keys: Sequence[str]) -> bool:
        """Whether every one of ``keys`` is of a kind this copy keeps."""
        return bool(keys) and all(k.startswith(self.prefixes) for k in keys)

    # ------------------------------------------------------------ reads
    def lookup(self, keys: Sequence[str]) -> list[bytes] | None:
        """The raw values of ``keys`` if the copy holds all of them and may be trusted, else ``None``."""
        self._mine()
        with self._lock:
            if not self._trusted():
                return None
            now = self.clock()
            found = []
            for key in keys:
                entry = self._entries.get(key)
                if entry is None or entry[1] <= now:
                    return None
                found.append(entry[0])
            return found

    def begin(self, keys: Sequence[str]) -> _Ticket | None:
        """Before a fetch of ``keys``: a ticket that :meth:`fill` honours unless a key changed meanwhile."""
        self._mine()
        with self._lock:
            if self._conn is None:
                return None
            ticket = _Ticket(self._generation)
            for key in keys:
                self._tickets[key] = ticket
            return ticket

    def fill(
        self,
        ticket: _Ticket | None,
        keys: Sequence[str],
        raw: Sequence[Any],
        ttls_ms: Sequence[int],
        started: float,
    ) -> None:
        """Keep what a fetch that began at ``started`` (this clock) read, where its ticket still holds.

        ``ttls_ms``: each key's ``PTTL`` (-2 missing: nothing kept; -1 no expiry).
        """
        self._mine()
        if ticket is None:
            self._maybe_connect()
            return
        with self._lock:
            if ticket.generation != self._generation:
                return
            for key, value, ttl in zip(keys, raw, ttls_ms, strict=True):
                if self._tickets.get(key) is not ticket:
                    continue
                del self._tickets[key]
                if value is None or ttl == -2 or ttl == 0:
                    continue
                expires = started + (NO_TTL_CAP if ttl < 0 else min(ttl / 1000, NO_TTL_CAP))
                self._entries.pop(key, None)  # re-inserted last: the oldest entry is the first
                self._entries[key] = (value, expires)
            while len(self._entries) > self.capacity:
                del self._entries[next(iter(self._entries))]

    def abandon(self, ticket: _Ticket | None, keys: Sequence[str]) -> None:
        """A fetch failed: withdraw its claims (nothing to keep; the claims must not pile up)."""
        self._mine()
        if ticket is None:
            return
        with self._lock:
            for key in keys:
                if self._tickets.get(key) is ticket:
                    del self._tickets[key]

    def forget(self, keys: Sequence[str]) -> None:
        """This process writes ``keys``: drop its copies and claims now (Redis will tell too)."""
        self._mine()
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
                self._tickets.pop(key, None)

    # ------------------------------------------------------------ the invalidation connection
    def _trusted(self) -> bool:
        """Drain invalidations; whether the copy may answer now. Called with the lock held."""
        conn = self._conn
        if conn is None:
            return False
        try:
            while conn.can_read(timeout=0):
                self._on_message(conn.read_response())
            now = self.clock()
            if self._ping_sent is None:
                if now - self._heard > HEARTBEAT / 2:
                    conn.send_command("PING")
                    self._ping_sent = now
            elif now - self._ping_sent > PONG_TIMEOUT:
                self._drop("no answer to PING")
                return False
            return now - self._heard <= HEARTBEAT
        except Exception as exc:
            self._drop(f"{type(exc).__name__} on the invalidation connection")
        return False

    def _on_message(self, message: Any) -> None:
        # bytes, or str when the URL asks for decode_responses
        kind = message[0] if isinstance(message, list) and message else None
        if kind in (b"pong", "pong"):
            if self._ping_sent is not None:
                self._heard = self._ping_sent  # alive when the PING left, no later
                self._ping_sent = None
            return
        if kind not in (b"message", "message") or len(message) != 3:
            return  # the subscribe confirmation
        names = message[2]
        if names is None:  # FLUSHDB / FLUSHALL
            self._entries.clear()
            self._tickets.clear()
            return
        for name in names:
            key = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            self._entries.pop(key, None)
            self._tickets.pop(key, None)

    def _drop(self, why: str) -> None:
        """Lose the connection and everything it vouched for. Called with the lock held."""
        log.warning("flask-toucan: Redis near cache off until reconnected (%s)", why)
        conn, self._conn = self._conn, None
        self._entries.clear()
        self._tickets.clear()
        self._generation += 1
        self._retry_at = self.clock() + HEARTBEAT
        if conn is not None:
            try:
                conn.disconnect()
            except Exception:  # noqa: S110 - already broken; nothing more to learn
                pass

    def _maybe_connect(self) -> None:
        """Open the invalidation connection, by one thread at a time, not too often.

        Called after a fetch went through (Redis is up); never under ``_lock``:
        the three setup round trips must not hold up lookups.
        """
        if self.refused or self._conn is not None or self.clock() < self._retry_at:
            return
        if not self._connecting.acquire(blocking=False):
            return
        try:
            started = self.clock()
            self._retry_at = started + HEARTBEAT
            conn = self._open()
            if conn is None:
                return
            with self._lock:
                self._conn = conn
                self._generation += 1
                self._heard = started  # it answered the set-up sent after this
                self._ping_sent = None
        finally:
            self._connecting.release()

    def _open(self) -> Any:
        """A connection subscribed to its own invalidations, or ``None`` (logged)."""
        from redis.exceptions import ResponseError

        conn = self._connect()
        try:
            conn.connect()
            conn.send_command("CLIENT", "ID")
            own_id = conn.read_response()
            prefixes: list[str] = []
            for prefix in self.prefixes:
                prefixes += ["PREFIX", prefix]
            conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", *prefixes)
            conn.read_response()
            conn.send_command("SUBSCRIBE", CHANNEL)
            conn.read_response()
            return conn
        except ResponseError as exc:
            self.refused = True
            log.warning("flask-toucan: Redis refused client tracking; near cache off (%s)", exc.args[0][:80])
        except Exception as exc:
            log.warning("flask-toucan: Redis near cache not connected (%s)", type(exc).__name__)
        conn.disconnect()
        return None
