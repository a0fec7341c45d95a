"""gunicorn x4 + a real redis-server + the sandbox with latency: one upstream call per user.

100 concurrent cold renders of one user's page -> exactly 1 token call at the
sandbox; 10 users x 10 -> exactly 10. Without the store's lock each worker
that misses calls Toucan itself (2-4 and 16-30 calls).
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.mark.timeout(180)
def test_concurrent_cold_renders_on_four_workers_make_one_call_per_user(redis_server_factory: object) -> None:
    # redis_server_factory: skips (or fails in CI) when redis-server is missing.
    from bench.cross_worker import burst, services

    with services(workers=4) as (sandbox, server):
        one = burst(sandbox, server, 1000, 1, 100)
        assert one.statuses == {200: 100} and one.pages_with_component == 100
        assert one.upstream_calls == 1
        ten = burst(sandbox, server, 2000, 10, 10)
        assert ten.statuses == {200: 100} and ten.pages_with_component == 100
        assert ten.upstream_calls == 10
