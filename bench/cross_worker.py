"""Cross-worker single-flight: upstream calls for concurrent cold renders on gunicorn.

``python -m bench.cross_worker`` (from the repository root). gunicorn with 4
``gthread`` workers serves :mod:`bench.soak_app` (api mode, the store in a
real ``redis-server``) against the sandbox with injected latency, so that the
misses overlap. Two bursts, each on a cold cache:

* 100 concurrent renders of one user's page -> upstream token calls (ideal 1);
* 10 users x 10 concurrent renders -> upstream token calls (ideal 10).

The count comes from the sandbox's own counter (``token_requests``). Without
the shared lock each worker that misses calls Toucan itself (4 and 16-25
calls were measured before it).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from flask_toucan.sandbox import SandboxServer

from .common import Row, Settings
from .soak import REPO_ROOT, Gunicorn, User

LATENCY_MS = 300  # the sandbox's injected latency: long enough for every worker to miss


@dataclass
class Burst:
    users: int
    renders_per_user: int
    upstream_calls: int
    statuses: dict[int, int]
    pages_with_component: int


@contextmanager
def services(
    workers: int = 4, threads: int = 8, latency_ms: int = LATENCY_MS
) -> Iterator[tuple[Any, Gunicorn]]:
    """A real redis-server, the sandbox with latency, gunicorn serving the soak app."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.redis_server import RedisServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    redis = RedisServer().start()
    sandbox = SandboxServer(latency_ms=latency_ms, token_lifetime=600).start()
    server = None
    try:
        env = {"SOAK_BASE_URL": sandbox.url, "SOAK_API_KEY": sandbox.api_key, "SOAK_STORE": redis.url}
        server = Gunicorn(workers, threads, env, redis.directory / "gunicorn.log")
        server.wait_ready()
        yield sandbox, server
    finally:
        if server is not None:
            server.stop()
        sandbox.stop()
        redis.close()


def burst(sandbox: Any, server: Gunicorn, first_user: int, users: int, renders_per_user: int) -> Burst:
    """Log ``users`` new users in, then render all their pages at once (cold cache)."""
    people = [User.make(first_user + i) for i in range(users)]
    for person in people:
        person.login(server.url)
    cookies = [person.http.cookies.get_dict() for person in people]
    before = sandbox.stats.get("token_requests", 0)
    total = users * renders_per_user
    barrier = threading.Barrier(total)
    statuses: dict[int, int] = {}
    components = 0
    lock = threading.Lock()

    def render(jar: dict[str, str]) -> None:
        nonlocal components
        barrier.wait()
        try:
            resp = requests.get(
                f"{server.url}/page", cookies=jar, timeout=60, headers={"Connection": "close"}
            )
            status, has = resp.status_code, "<tc-dashboard" in resp.text
        except requests.RequestException:
            status, has = 0, False
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
            components += has

    threads = [
        threading.Thread(target=render, args=(jar,)) for jar in cookies for _ in range(renders_per_user)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    calls = sandbox.stats.get("token_requests", 0) - before
    return Burst(users, renders_per_user, calls, statuses, components)


def measure(workers: int = 4, renders: int = 100) -> tuple[Burst, Burst]:
    """The two bursts of the module doc, in one set of servers."""
    with services(workers) as (sandbox, server):
        one = burst(sandbox, server, 1000, 1, renders)
        ten = burst(sandbox, server, 2000, 10, renders // 10)
    return one, ten


def run(settings: Settings) -> list[Row]:
    workers = 4
    renders = 20 if settings.quick else 100
    one, ten = measure(workers, renders)
    rows = []
    for key, b, ideal in (("5a", one, 1), ("5b", ten, 10)):
        rows.append(
            Row(
                key=key,
                title=f"cold renders on {workers} gunicorn workers: {b.users} user(s) x {b.renders_per_user}",
                toucan=f"{b.upstream_calls} upstream calls",
                baseline=f"{ideal} (ideal)",
                ratio=b.upstream_calls / ideal,
                ratio_text=f"{b.upstream_calls}/{ideal}",
                target=f"= {ideal} calls",
                passed=b.upstream_calls == ideal and b.pages_with_component == b.users * b.renders_per_user,
                notes=[
                    f"statuses {b.statuses}, {b.pages_with_component} pages with the component; "
                    f"sandbox latency {LATENCY_MS} ms, real redis-server, gthread workers"
                ],
            )
        )
    return rows


def main() -> int:
    one, ten = measure()
    for b in (one, ten):
        print(f"{b.users} user(s) x {b.renders_per_user}: {b.upstream_calls} upstream calls, {b.statuses}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
