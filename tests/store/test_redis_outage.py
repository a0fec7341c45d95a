"""A real redis-server stopped and restarted under traffic: 200/503 only, then 200 again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from .apps import login, make_store_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST_STORE = {
    "TOUCAN_STORE_CONNECT_TIMEOUT": 0.5,
    "TOUCAN_STORE_TIMEOUT": 0.5,
    "TOUCAN_STORE_BREAKER_COOLDOWN": 0.2,
}


@dataclass
class Traffic:
    """One logged-in client hitting a page with a component and the refresh endpoint."""

    base: str
    session: requests.Session
    csrf: str
    results: list[tuple[str, int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def run(self) -> None:
        while not self.stop.is_set():
            page = self.session.get(f"{self.base}/page", timeout=30)
            self._record("page", page.status_code, _page_state(page.text))
            token = self.session.post(
                f"{self.base}/toucan/token", json={}, headers={"X-Toucan-CSRF": self.csrf}, timeout=30
            )
            self._record("token", token.status_code, token.headers.get("Retry-After", ""))

    def _record(self, kind: str, status: int, detail: str) -> None:
        with self.changed:
            self.results.append((kind, status, detail))
            self.changed.notify_all()

    def wait_for(self, predicate: Callable[[list[tuple[str, int, str]]], bool], timeout: float = 30) -> None:
        """Until ``predicate`` holds; fails at once on a 5xx other than 503 (a 500 is the bug)."""
        with self.changed:
            done = self.changed.wait_for(lambda: predicate(self.results) or self.broken(), timeout)
            assert done and not self.broken(), self.summary()

    def broken(self) -> bool:
        return any(s >= 500 and s != 503 for _, s, _ in self.results)

    def mark(self) -> int:
        with self.changed:
            return len(self.results)

    def summary(self) -> str:
        counts: dict[tuple[str, int, str], int] = {}
        for r in self.results:
            counts[r] = counts.get(r, 0) + 1
        return f"results so far: {counts}"


def _page_state(html: str) -> str:
    if "<tc-dashboard" in html:
        return "component"
    if 'data-toucan-placeholder="unavailable"' in html:
        return "unavailable"
    return "other"


def _since(start: int, kind: str, status: int, detail: str | None = None) -> Callable[[list[Any]], bool]:
    def check(results: list[Any]) -> bool:
        return any(
            k == kind and s == status and (detail is None or d == detail) for k, s, d in results[start:]
        )

    return check


def test_redis_restart_under_traffic_gives_503s_then_200s_never_500(
    redis_server_factory: Any, live_server: Any
) -> None:
    redis = redis_server_factory(persistent=True)  # AOF: logins survive the restart
    app, _ = make_store_app(redis.url, **FAST_STORE)
    server = live_server(app)
    http = requests.Session()
    traffic = Traffic(server.url, http, login(http, "alice", base=server.url))
    worker = threading.Thread(target=traffic.run, daemon=True)
    worker.start()
    try:
        traffic.wait_for(lambda r: sum(1 for k, s, _ in r if k == "token" and s == 200) >= 3)

        redis.stop()
        down = traffic.mark()
        traffic.wait_for(_since(down, "token", 503))
        traffic.wait_for(_since(down, "page", 200, "unavailable"))
        # Keep hitting the dead store for a while (breaker open, probes failing).
        traffic.wait_for(lambda r: len(r) - down >= 40)

        redis.start()
        up = traffic.mark()
        traffic.wait_for(_since(up, "token", 200))
        traffic.wait_for(_since(up, "page", 200, "component"))
    finally:
        traffic.stop.set()
        worker.join(timeout=60)

    statuses = {(k, s) for k, s, _ in traffic.results}
    assert statuses <= {("page", 200), ("token", 200), ("token", 503)}, traffic.summary()
    assert all(d == "5" for k, s, d in traffic.results if s == 503), traffic.summary()
    assert not any(k == "page" and d == "other" for k, _, d in traffic.results), traffic.summary()


def test_a_restart_without_persistence_logs_everyone_out(redis_server: Any) -> None:
    """What docs/deployment.md warns about: the login records live only in Redis."""
    app, _ = make_store_app(redis_server.url, **FAST_STORE)
    client = app.test_client()
    csrf = login(client, "alice")
    assert client.get("/whoami").get_data(as_text=True) == "alice"
    redis_server.restart()

    def whoami() -> Any:
        return client.get("/whoami")

    deadline = time.monotonic() + 20
    resp = whoami()
    while resp.status_code == 503 and time.monotonic() < deadline:  # until the breaker closes
        time.sleep(0.02)  # poll interval
        resp = whoami()
    assert resp.get_data(as_text=True) == "anonymous"
    refresh = client.post("/toucan/token", json={}, headers={"X-Toucan-CSRF": csrf})
    assert refresh.status_code == 401
