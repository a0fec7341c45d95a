"""The refresh endpoint's per-session rate limit (``TOUCAN_RATE_LIMIT``): fixed windows in the store.

``"30/minute"`` allows 30 requests per session in each minute-long window
(windows start at multiples of the period since the epoch, the same on every
worker and host). Over the limit the request is refused with 429 and a
``Retry-After`` counting the seconds to the window's end. Several limits
(``"5/second;100/hour"``) are all enforced.

Why our own counter and not the ``limits`` library: with Redis the count must
travel in the request's one store round trip, next to the session record and
the cached tokens (an ``INCR`` and an ``EXPIRE`` per limit in the same
pipeline, keyed with the user's hash tag so a Cluster keeps them on one
node). ``limits`` talks to its own storage in its own round trips. The
syntax is the one ``limits`` (and Flask-Limiter) documents:
``N/period`` or ``N per [M] period``, period one of second, minute, hour,
day, month (30 days), year (360 days), plural allowed, separated by ``,``
``;`` or ``|``.

A fixed window, unlike the moving window used before, lets a client that
spends its whole allowance at the end of one window spend it again at the
start of the next: at most twice the limit within one period's length. For
a limit that stops a runaway script or a scraper, that is the accepted
trade (it is what Redis's own INCR rate-limiter pattern does).
"""

from __future__ import annotations

import math
import re
import threading

PERIODS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86_400,
    "month": 86_400 * 30,
    "year": 86_400 * 30 * 12,
}
#: Patterns as strings: ``re`` compiles them on first use and caches them (nothing at import).
_SEPARATORS = r"[,;|]"
_ITEM = r"(?i)^\s*([0-9]+)\s*(?:/|\s*per\s*)\s*([0-9]+)?\s*([a-z]+)\s*$"
#: Counters kept per process for stores that cannot hold them (memory, file, a custom cache).
LOCAL_COUNTERS = 100_000


class Limit:
    """``amount`` requests per ``period`` seconds.

    A plain class: a NamedTuple (or a frozen dataclass) compiles generated code
    when the module loads (~0.1 ms each, bench row 7b); this one compiles none.
    """

    __slots__ = ("amount", "period")

    def __init__(self, amount: int, period: int) -> None:
        self.amount = amount
        self.period = period

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Limit) and (self.amount, self.period) == (other.amount, other.period)

    def __hash__(self) -> int:
        return hash((self.amount, self.period))

    def __repr__(self) -> str:
        return f"Limit(amount={self.amount}, period={self.period})"


class Window:
    """One limit's counter for one session in the current window: store key, lifetime, end."""

    __slots__ = ("ends_at", "key", "limit")

    def __init__(self, key: str, limit: Limit, ends_at: float) -> None:
        self.key = key
        self.limit = limit
        self.ends_at = ends_at

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Window) and (self.key, self.limit, self.ends_at) == (
            other.key,
            other.limit,
            other.ends_at,
        )

    def __hash__(self) -> int:
        return hash((self.key, self.limit, self.ends_at))

    def __repr__(self) -> str:
        return f"Window(key={self.key!r}, limit={self.limit!r}, ends_at={self.ends_at!r})"


def parse(text: str) -> tuple[Limit, ...]:
    """The limits in ``text`` (see the module doc); ``ValueError`` for anything else."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty rate limit")
    limits = []
    for item in re.split(_SEPARATORS, text):
        match = re.match(_ITEM, item)
        if match is None:
            raise ValueError(f"not a rate limit: {item!r}")
        amount, multiples, unit = match.groups()
        unit = unit.lower()
        period = PERIODS.get(unit) or PERIODS.get(unit[:-1] if unit.endswith("s") else "")
        if period is None or int(amount) < 1 or (multiples is not None and int(multiples) < 1):
            raise ValueError(f"not a rate limit: {item!r}")
        limits.append(Limit(int(amount), period * int(multiples or 1)))
    return tuple(limits)


class RateLimit:
    """The parsed ``TOUCAN_RATE_LIMIT``: which counters a request bumps, and the verdict."""

    def __init__(self, limits: tuple[Limit, ...]) -> None:
        self.limits = limits

    def windows(self, bucket: str, sid: str, now: float) -> list[Window]:
        """The current window of each limit for ``bucket`` and session ``sid``.

        The key starts after ``rl:`` with the session id, whose leading hash
        tag names the user: on a Cluster the counter shares the slot of the
        user's login record and tokens.
        """
        out = []
        for limit in self.limits:
            index = int(now // limit.period)
            key = f"rl:{sid}:{bucket}:{limit.period}:{index}"
            out.append(Window(key, limit, float((index + 1) * limit.period)))
        return out

    @staticmethod
    def retry_after(windows: list[Window], counts: list[int], now: float) -> int | None:
        """Seconds until every exceeded window has ended; ``None`` when within all limits."""
        over = [w.ends_at for w, n in zip(windows, counts, strict=True) if n > w.limit.amount]
        if not over:
            return None
        return max(1, math.ceil(max(over) - now))


class LocalCounter:
    """Fixed-window counters in this process, for stores that do not count (bounded, O(1)).

    What the memory store (and the file store, and a custom cache) count in:
    per worker, as the ``limits`` memory storage was. Past
    :data:`LOCAL_COUNTERS` the least recently used counter goes (its session
    starts a fresh count: fails open, never refuses a stranger).
    """

    def __init__(self, capacity: int = LOCAL_COUNTERS) -> None:
        from .memstore import BoundedLRU  # with cachelib: loaded by the memory store at init_app anyway

        self._lock = threading.Lock()
        self._counts = BoundedLRU(capacity)

    def hit(self, windows: list[Window], now: float) -> list[int]:
        counts = []
        with self._lock:
            for window in windows:
                found, value = self._counts.get(window.key, now)
                count = (value if found else 0) + 1
                self._counts.set(window.key, count, window.ends_at)
                counts.append(count)
        return counts
