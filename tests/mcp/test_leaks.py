"""20 concurrent ``ask`` calls from one worker: threads and sockets come back to baseline."""

from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from .helpers import ACME, GLOBEX, sql

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def snapshot() -> tuple[int, int]:
    proc = psutil.Process()
    return threading.active_count(), len(proc.net_connections(kind="inet"))


def wait_for(predicate, timeout: float = 20.0) -> bool:
    """Poll a condition (not a fixed sleep): true as soon as it holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_twenty_concurrent_asks_leak_nothing(host, toucan_sandbox):
    app, toucan = host
    kept = []

    def ask(claims):
        with app.test_request_context():
            toucan.login_user(claims)
            with toucan.assistant() as assistant:
                envelope = assistant.ask("What are my total sales?")
            kept.append(assistant)  # still referenced: only close() can free its loop and sockets
            return claims["org"], envelope

    # Warm up: the sandbox's MCP loop thread and the token cache exist before the baseline.
    ask(ACME)
    ask(GLOBEX)
    # Baseline after the warm-up (sockets other tests of this process left to the GC are in it
    # too; 20 leaked sessions would show as 20 more threads and sockets).
    gc.collect()
    baseline_threads, baseline_sockets = snapshot()
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(ask, [ACME if i % 2 else GLOBEX for i in range(20)]))
    totals = {
        org: sql(toucan_sandbox.data_file, "SELECT SUM(amount) FROM sales WHERE organization_id=?", org)[0][0]
        for org in ("acme", "globex")
    }
    for org, envelope in results:
        assert envelope["visualizations"][0]["rows"][0][0] == totals[org]
    assert len({envelope["threadId"] for _, envelope in results}) == 20
    # The pool's workers are gone once the with-block ended; the sessions' loop threads
    # and sockets (client and sandbox side) must follow.
    assert wait_for(lambda: snapshot()[0] <= baseline_threads), (snapshot(), baseline_threads)
    assert wait_for(lambda: snapshot()[1] <= baseline_sockets), (snapshot(), baseline_sockets)
