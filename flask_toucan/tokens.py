"""The value a minted token is handed around as."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, repr=False)
class EmbedToken:
    """A short-lived token for one user and one permission set.

    ``value`` is what goes into the component's ``auth-token`` attribute. In
    ``api`` mode it is Toucan's encrypted token and opaque to us; ``claims`` then
    holds what we *asked* for (user, attributes, permissions), never anything
    decoded from the token.
    """

    value: str
    expires_at: datetime
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def expires_in(self) -> int:
        """Whole seconds left (0 once expired), from this server's clock."""
        return max(0, math.floor(self.expires_at.timestamp() - time.time()))

    @property
    def expired(self) -> bool:
        return self.expires_at.timestamp() <= time.time()

    def as_json(self) -> dict[str, Any]:
        """The refresh endpoint's body: ``{"token", "expires_at", "expires_in"}``."""
        return {
            "token": self.value,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z"),
            # Fractional seconds (ms): the refresh script schedules from this on a
            # monotonic clock, and a whole-second floor would make it ask up to a
            # second early, while the server cache still serves this very token.
            "expires_in": round(max(0.0, self.expires_at.timestamp() - time.time()), 3),
        }

    def __repr__(self) -> str:  # the value is a bearer credential: never print it
        return f"EmbedToken(expires_at={self.expires_at.isoformat()!r}, value=<redacted>)"


def utc_from_timestamp(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
