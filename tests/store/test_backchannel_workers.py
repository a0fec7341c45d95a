"""Back-channel logout across gunicorn workers: the next page on any worker is anonymous.

gunicorn with 4 ``gthread`` workers, a real redis-server (near cache on, the
default). Every worker first serves the user (its near cache then holds the
login record); one worker takes the provider's ``logout_token``; every request
after it, on any worker, with the old cookie, is anonymous, with no wait.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

import pytest
import requests

from ..core.test_backchannel import ISSUER, KEY, logout_token
from ..waiting import wait_until
from .test_near_cache_workers import whoami_burst

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.mark.timeout(180)
def test_a_back_channel_logout_ends_the_login_on_every_worker_at_once(
    redis_server: Any, tmp_path: Any
) -> None:
    from bench.soak import Gunicorn

    from .bcl_app import CLIENT_ID

    env = {
        "BCL_STORE": redis_server.url,
        "BCL_ISSUER": ISSUER,
        "BCL_JWKS": json.dumps({"keys": [KEY.as_dict(private=False)]}),
    }
    server = Gunicorn(4, 8, env, tmp_path / "gunicorn.log", app="tests.store.bcl_app:application")
    try:
        server.wait_ready()
        http = requests.Session()
        login = {"sub": "alice", "iss": ISSUER, "sid": "idp-session-1"}
        assert http.post(f"{server.url}/login", json=login, timeout=30).status_code == 200
        cookies = http.cookies.get_dict()
        workers = server.worker_pids()
        served: Counter[int] = Counter()

        def every_worker_warm() -> bool:
            for who, pid in whoami_burst(server.url, cookies, 8):
                assert who == "alice", who
                served[pid] += 1
            return all(served[pid] >= 2 for pid in workers)

        wait_until(every_worker_warm, timeout=90, interval=0, what="every worker serving the user")
        token = logout_token(aud=CLIENT_ID)
        resp = requests.post(
            f"{server.url}/toucan/backchannel-logout", data={"logout_token": token}, timeout=30
        )
        assert resp.status_code == 200, resp.text
        after = whoami_burst(server.url, cookies, 40)
        assert {who for who, _ in after} == {"anonymous"}, Counter(after)
        assert len({pid for _, pid in after}) >= 2
    finally:
        server.stop()
        print((tmp_path / "gunicorn.log").read_text()[-2000:], file=sys.stderr)
