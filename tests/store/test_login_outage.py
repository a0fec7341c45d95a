"""The OpenID Connect callback and logout while the store is down: a 503 page, never a 500."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from cachelib import RedisCache

from ..core.oidc_fixtures import Host, consent

pytestmark = pytest.mark.integration


def test_callback_during_an_outage_is_an_html_503_and_login_works_after(
    make_host: Any, idp_user: Any
) -> None:
    server = fakeredis.FakeServer()
    store = RedisCache(host=fakeredis.FakeRedis(server=server), key_prefix="toucan:", default_timeout=0)
    host: Host = make_host(TOUCAN_STORE=store, TOUCAN_STORE_BREAKER_COOLDOWN=0.05)
    consent(host, idp_user)

    callback = host.authorize(host.start_login().headers["Location"])
    server.connected = False
    done = host.finish(callback)
    assert done.status_code == 503, done.text[:500]
    assert done.headers["Content-Type"].startswith("text/html")
    assert done.headers["Retry-After"] == "5"
    assert "Temporarily unavailable" in done.text and "Traceback" not in done.text
    assert host.me() is None  # not logged in, and /me (no store read without a login) works

    server.connected = True
    assert host.login().status_code == 302
    assert host.me()["subject"] == idp_user.user_name
