"""Fault injection and call counters for the "upstream" endpoints.

The host's client has retries, back-off, ``Retry-After`` handling, caching and
single flight; those are only tested if the token API can misbehave on
demand. The token API and the jwt-bearer endpoint go through :meth:`Faults.apply`,
which adds latency and, in this order, answers 503 for the next
``fail_next`` calls, 429 for the next ``rate_limit_next`` calls, and 503 for
a seeded share ``fail_rate`` of the rest. ``reject`` (``{"status": 403,
"code": "NO_ACTIVE_SUBSCRIPTION"}``) answers every call with that permanent
refusal until it is set back to ``None``: Toucan's ``{code, message}`` envelope
on the token API, RFC 6749 ``{"error": code.lower()}`` on the OAuth endpoint.
``lose_next`` is the fault of a proxy in front: the next ``lose_next`` calls are
served in full (a token minted, an assertion's ``jti`` spent) and the answer is
then replaced by a plain 504, as a gateway that timed out on the way back.
Everything can be changed while the sandbox runs (``SandboxServer.set_faults``
or ``POST /_sandbox/faults``).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

FAULT_FIELDS = (
    "latency_ms",
    "fail_rate",
    "fail_next",
    "rate_limit_next",
    "retry_after",
    "fault_seed",
    "reject",
    "lose_next",
)
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_OAUTH_NAMES = {503: "temporarily_unavailable", 429: "temporarily_unavailable"}


def check_reject(value: Any) -> dict[str, Any] | None:
    """``None`` or ``{"status": 400..599, "code": "UPPER_SNAKE"}``; else ``ValueError``."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"status", "code"}:
        raise ValueError('reject must be null or {"status": <400..599>, "code": "UPPER_SNAKE"}')
    status, code = value["status"], value["code"]
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError("reject.status must be an HTTP error status (400..599)")
    if not isinstance(code, str) or not _CODE.match(code):
        raise ValueError("reject.code must be UPPER_SNAKE_CASE (e.g. NO_ACTIVE_SUBSCRIPTION)")
    return {"status": status, "code": code}


@dataclass
class Injected:
    """A fault to answer with instead of the real response."""

    status: int
    error: str  # UPPER_SNAKE (Toucan's envelope)
    retry_after: int | None = None

    @property
    def oauth_error(self) -> str:
        """The RFC 6749 ``error`` the OAuth token endpoint answers with."""
        return _OAUTH_NAMES.get(self.status, self.error.lower())


@dataclass
class Faults:
    latency_ms: int = 0
    fail_rate: float = 0.0
    fail_next: int = 0
    rate_limit_next: int = 0
    retry_after: int = 1
    fault_seed: int = 0
    reject: dict[str, Any] | None = None
    lose_next: int = 0
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)  # noqa: S311
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, **values: Any) -> dict[str, Any]:
        """Change settings (validated); returns the new settings."""
        for name, value in values.items():
            if name not in FAULT_FIELDS:
                raise ValueError(f"{name} is not a fault setting ({', '.join(FAULT_FIELDS)})")
            if name == "reject":
                check_reject(value)
            elif name == "fail_rate":
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

    def lose(self) -> bool:
        """Whether the answer to this call (already served) is lost on the way back."""
        with self._lock:
            if self.lose_next <= 0:
                return False
            self.lose_next -= 1
            return True

    def apply(self) -> Injected | None:
        """Sleep the latency, then decide whether this call fails."""
        with self._lock:
            latency = self.latency_ms
            if self.reject is not None:
                fault: Injected | None = Injected(self.reject["status"], self.reject["code"])
            elif self.fail_next > 0:
                self.fail_next -= 1
                fault = Injected(503, "SERVICE_UNAVAILABLE", self.retry_after)
            elif self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                fault = Injected(429, "RATE_LIMITED", self.retry_after)
            elif self.fail_rate > 0 and self._rng.random() < self.fail_rate:
                fault = Injected(503, "SERVICE_UNAVAILABLE", None)
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
