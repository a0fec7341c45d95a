"""Fault injection and call counters for the "upstream" endpoints.

The host's client has retries, back-off, ``Retry-After`` handling, caching and
single flight; those are only tested if the token API can misbehave on
demand. The token API and the jwt-bearer endpoint go through :meth:`Faults.apply`,
which adds latency and, in this order, answers 503 for the next
``fail_next`` calls, 429 for the next ``rate_limit_next`` calls, and 503 for
a seeded share ``fail_rate`` of the rest. Everything can be changed while the
sandbox runs (``SandboxServer.set_faults`` or ``POST /_sandbox/faults``).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

FAULT_FIELDS = ("latency_ms", "fail_rate", "fail_next", "rate_limit_next", "retry_after", "fault_seed")


@dataclass
class Injected:
    """A fault to answer with instead of the real response."""

    status: int
    error: str
    retry_after: int | None = None


@dataclass
class Faults:
    latency_ms: int = 0
    fail_rate: float = 0.0
    fail_next: int = 0
    rate_limit_next: int = 0
    retry_after: int = 1
    fault_seed: int = 0
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)  # noqa: S311
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, **values: Any) -> dict[str, Any]:
        """Change settings (validated); returns the new settings."""
        for name, value in values.items():
            if name not in FAULT_FIELDS:
                raise ValueError(f"{name} is not a fault setting ({', '.join(FAULT_FIELDS)})")
            if name == "fail_rate":
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise ValueError("fail_rate must be a number between 0 and 1")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        with self._lock:
            for name, value in values.items():
                setattr(self, name, value)
            if "fault_seed" in values:
                self._rng = random.Random(self.fault_seed)  # noqa: S311
        return self.settings()

    def settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FAULT_FIELDS}

    def apply(self) -> Injected | None:
        """Sleep the latency, then decide whether this call fails."""
        with self._lock:
            latency = self.latency_ms
            if self.fail_next > 0:
                self.fail_next -= 1
                fault: Injected | None = Injected(503, "service_unavailable", self.retry_after)
            elif self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                fault = Injected(429, "rate_limited", self.retry_after)
            elif self.fail_rate > 0 and self._rng.random() < self.fail_rate:
                fault = Injected(503, "service_unavailable", None)
            else:
                fault = None
        if latency:
            time.sleep(latency / 1000)
        return fault


class Stats:
    """Thread-safe counters (``token_requests``, ``tokens_issued``, ``exchanges``...)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def incr(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counts[name] += by

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]
