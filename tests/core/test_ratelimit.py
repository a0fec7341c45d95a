"""``TOUCAN_RATE_LIMIT``: the syntax ``limits`` documents, fixed windows, the 429's Retry-After."""

from __future__ import annotations

import pytest

from flask_toucan.ratelimit import Limit, LocalCounter, RateLimit, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30/minute", (Limit(30, 60),)),
        ("30 per minute", (Limit(30, 60),)),
        ("10/second", (Limit(10, 1),)),
        ("5 per 10 seconds", (Limit(5, 10),)),
        ("100/2 hours", (Limit(100, 7200),)),
        ("1/DAY", (Limit(1, 86_400),)),
        ("2/month", (Limit(2, 86_400 * 30),)),
        ("2/year", (Limit(2, 86_400 * 360),)),
        ("5/second; 100/hour", (Limit(5, 1), Limit(100, 3600))),
        ("5/second,100/hour|1000/day", (Limit(5, 1), Limit(100, 3600), Limit(1000, 86_400))),
    ],
)
def test_the_limits_syntax(text: str, expected: tuple[Limit, ...]) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "fast", "30", "30/fortnight", "-1/minute", "0/minute", "30/0 minutes", "30/minute;", "a/b"]
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


def test_windows_are_fixed_and_shared_by_every_worker() -> None:
    rate = RateLimit(parse("3/minute"))
    first = rate.windows("toucan-refresh", "{tag}sid", 600.0)
    assert first == rate.windows("toucan-refresh", "{tag}sid", 659.9)  # same window: same key
    assert first != rate.windows("toucan-refresh", "{tag}sid", 660.0)  # the next one
    assert first[0].ends_at == 660.0
    assert first[0].key.startswith("rl:{tag}sid:")  # the user's hash tag leads: one cluster slot
    assert first != rate.windows("toucan-assistant", "{tag}sid", 600.0)
    assert first != rate.windows("toucan-refresh", "{tag}other", 600.0)


def test_retry_after_counts_to_the_end_of_the_exceeded_window() -> None:
    rate = RateLimit(parse("3/minute;10/hour"))
    windows = rate.windows("b", "s", 630.2)
    assert rate.retry_after(windows, [3, 3], 630.2) is None  # at the limit: allowed
    assert rate.retry_after(windows, [4, 4], 630.2) == 30  # the minute ends at 660
    assert rate.retry_after(windows, [4, 11], 630.2) == 3600 - 630  # the hour ends at 3600
    assert rate.retry_after(windows, [4, 4], 659.99) == 1  # never 0


def test_local_counter_counts_per_window_and_stays_bounded() -> None:
    rate = RateLimit(parse("2/minute"))
    counter = LocalCounter(capacity=3)
    windows = rate.windows("b", "alice", 600.0)
    assert [counter.hit(windows, 600.0)[0] for _ in range(3)] == [1, 2, 3]
    later = rate.windows("b", "alice", 660.0)
    assert counter.hit(later, 660.0) == [1]  # a new window starts at 1
    for user in ("bob", "carol", "dave", "erin"):
        counter.hit(rate.windows("b", user, 660.0), 660.0)
    assert len(counter._counts) == 3
