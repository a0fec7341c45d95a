"""The near cache across gunicorn workers: a logout on one worker ends the session on all at once.

gunicorn with 4 ``gthread`` workers serves :mod:`bench.soak_app` with the
Redis store (near cache on, the default). Every worker first serves the
user several times (its copy then holds the login record); then one
request logs out through ``POST /toucan/logout``, and every request after it,
on any worker, with the old cookie, is anonymous — with no wait between.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import requests

from ..waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def whoami_burst(base: str, cookies: dict[str, str], n: int) -> list[tuple[str, int]]:
    """``n`` concurrent ``GET /whoami`` (no keep-alive: they spread over the workers)."""
    answers: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def one() -> None:
        barrier.wait()
        close = {"Connection": "close"}
        text = requests.get(f"{base}/whoami", cookies=cookies, headers=close, timeout=30).text
        who, _, pid = text.rpartition(" ")
        with lock:
            answers.append((who, int(pid)))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == n
    return answers


@pytest.mark.timeout(180)
def test_a_logout_on_one_worker_ends_the_session_on_every_worker_at_once(redis_server_factory: Any) -> None:
    # redis_server_factory: skips (or fails in CI) when redis-server is missing.
    from bench.cross_worker import services
    from bench.soak import User

    with services(workers=4, latency_ms=0) as (_, server):
        user = User.make(1)
        user.login(server.url)
        cookies = user.http.cookies.get_dict()
        workers = server.worker_pids()
        assert len(workers) == 4
        served: Counter[int] = Counter()

        def every_worker_warm() -> bool:
            for who, pid in whoami_burst(server.url, cookies, 8):
                assert who != "anonymous", who
                served[pid] += 1
            return all(served[pid] >= 3 for pid in workers)

        wait_until(every_worker_warm, timeout=90, interval=0, what="every worker serving the user 3 times")
        logout = f"{server.url}/toucan/logout"
        resp = user.http.post(logout, headers={"X-Toucan-CSRF": user.csrf}, timeout=30, allow_redirects=False)
        assert resp.status_code in (302, 303), resp.status_code
        after = whoami_burst(server.url, cookies, 40)
        assert {who for who, _ in after} == {"anonymous"}, Counter(after)
        assert len({pid for _, pid in after}) >= 2  # the answers came from several workers
