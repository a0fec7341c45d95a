"""The server-side login record: what it holds and when it has ended.

A login record (``sid:<id>`` in the store, :class:`~flask_toucan.store.SessionRegistry`)
is what mints every Toucan token of a browser session, so it must be
short-lived too (OWASP ASVS V3): it ends

* ``lifetime`` seconds after the login, whatever happens (``TOUCAN_SESSION_LIFETIME``);
* ``idle`` seconds after the last *activity* (``TOUCAN_SESSION_IDLE_TIMEOUT``): a page
  view that renders the component kit, or a ping the refresh script sends after
  real user interaction. The refresh script's own timer-driven token refreshes
  are not activity, so an idle tab stops getting tokens;
* when the identity provider says so (:mod:`flask_toucan.revalidation`).

The record is a small JSON object, so every store (memory, files, Redis) holds
it and every worker judges it the same way: ``s`` the (issuer, subject) key it
was opened for, ``o`` when it was opened, ``a`` the last activity, ``v`` when
the provider last confirmed it (``None``: no revalidation). Times are epoch
seconds from the registry's clock, which tests replace. Core module: no Flask.
"""

from __future__ import annotations

from typing import Any

#: The record is live.
ACTIVE = "active"
#: Ended by the absolute lifetime.
LIFETIME = "lifetime"
#: Ended by the idle timeout.
IDLE = "idle"
#: No record, or one for another identity (or in an older format): logged out.
ABSENT = "absent"

#: The longest an activity goes unrecorded (seconds): a page view or ping within this
#: long of the last recorded one writes nothing (one store write per minute at most).
MAX_ACTIVITY_STEP = 60.0


class Policy:
    """The timeouts a record is judged by (seconds; ``idle`` 0: no idle timeout)."""

    __slots__ = ("idle", "lifetime")

    def __init__(self, lifetime: int, idle: int = 0) -> None:
        self.lifetime = lifetime
        self.idle = idle

    @property
    def activity_step(self) -> float:
        """How stale the recorded activity may get before a new one is written.

        A tenth of the idle timeout (at most a minute): the idle timeout is
        honoured to within that step, and a busy user costs few store writes.
        """
        return min(MAX_ACTIVITY_STEP, self.idle / 10) if self.idle else MAX_ACTIVITY_STEP

    def ends_at(self, record: dict[str, Any]) -> float:
        """When ``record`` ends if no further activity comes."""
        end = float(record["o"]) + self.lifetime
        if self.idle:
            end = min(end, float(record["a"]) + self.idle)
        return end

    def ttl(self, record: dict[str, Any], now: float) -> int:
        """The store expiry to give ``record`` (a backstop: the check below is what counts)."""
        return max(1, int(self.ends_at(record) - now) + 1)


def new(subject_key: str, now: float, *, revalidate: bool = False) -> dict[str, Any]:
    """A fresh record for ``subject_key`` opened at ``now``."""
    return {"s": subject_key, "o": now, "a": now, "v": now if revalidate else None}


def is_record(value: Any) -> bool:
    """Whether ``value`` is a record in this format (anything else is logged out)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("s"), str)
        and _is_time(value.get("o"))
        and _is_time(value.get("a"))
        and (value.get("v") is None or _is_time(value.get("v")))
    )


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def status(record: Any, subject_key: str, now: float, policy: Policy) -> str:
    """:data:`ACTIVE`, :data:`LIFETIME`, :data:`IDLE` or :data:`ABSENT` for ``record`` at ``now``."""
    if not is_record(record) or record["s"] != subject_key:
        return ABSENT
    if now >= float(record["o"]) + policy.lifetime:
        return LIFETIME
    if policy.idle and now >= float(record["a"]) + policy.idle:
        return IDLE
    return ACTIVE


def needs_activity_write(record: dict[str, Any], now: float, policy: Policy) -> bool:
    """Whether an activity at ``now`` must be written (the recorded one is a step old)."""
    return bool(policy.idle) and now - float(record["a"]) >= policy.activity_step


def revalidation_due(record: dict[str, Any], now: float, every: int) -> bool:
    """Whether the provider must be asked again (``every`` seconds since it last was)."""
    validated = record.get("v")
    return validated is not None and every > 0 and now - float(validated) >= every
