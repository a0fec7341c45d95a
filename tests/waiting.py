"""Wait on a condition, or move a clock: no test sleeps on the wall clock to let something happen.

A fixed ``time.sleep(1.1)`` is a bet that the machine is fast enough; on a
loaded 2-core CI box it loses now and then. Two tools instead:

* :func:`wait_until` polls a predicate until it holds (or fails the test with
  a message after a generous timeout): for things that happen by themselves
  (a browser refresh, a server thread);
* :class:`FakeClock` stands in for a module's ``time``: ``time()`` and
  ``monotonic()`` are frozen and move only when the test calls
  :meth:`FakeClock.advance`, for expiry and cool-down logic (the code under
  test reads ``time.time()`` / ``time.monotonic()`` through its module's
  ``time`` name, so ``monkeypatch.setattr(module, "time", clock)`` injects it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, *, interval: float = 0.05, what: str | None = None
) -> T:
    """Poll ``predicate`` until it returns something truthy; return it. Fails the test after ``timeout``.

    The timeout is a ceiling for a broken run, not a timing margin: a passing
    run returns as soon as the condition holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate!r}")
        time.sleep(interval)  # the poll interval, not a bet on how long something takes


class FakeClock:
    """A frozen clock for the modules a test installs it in; ``advance()`` moves it."""

    def __init__(self) -> None:
        self._wall = time.time()
        self._mono = time.monotonic()

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._mono += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)  # sleep, perf_counter, gmtime...: the real ones

    def install(self, monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> FakeClock:
        """Make each module's ``time`` this clock (undone at the end of the test)."""
        for module in modules:
            assert module.time is time, f"{module.__name__} does not use 'import time'"
            monkeypatch.setattr(module, "time", self)
        return self
