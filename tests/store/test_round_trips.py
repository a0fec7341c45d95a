"""At most one Redis round trip per request: a cached page and a cached refresh.

Counted by the real ``redis-server`` itself (``INFO commandstats`` after a
``CONFIG RESETSTAT``): every command the app sent, by name. A ``GET`` for the
session record plus one per token would show up as several calls. With the
rate limit on, its counter's commands join the same pipeline: round trips are
then counted at the socket (writes of a request to redis-py's connection).

These tests turn the near cache off (``TOUCAN_STORE_NEAR_CACHE=0``): they
check the path every request takes without it, and every near-cache miss
takes with it. With it on, a page it holds does no round trip at all
(tests/store/test_near_cache.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask import render_template_string

from flask_toucan.test_client import ToucanTestClient

from .apps import login, make_store_app

PAGE = (
    '{% from "toucan/components.html" import tc_dashboard, tc_ai_assistant %}'
    '{{ tc_dashboard("a") }}{{ tc_dashboard(chart_id="c") }}{{ tc_dashboard("b") }}{{ tc_ai_assistant() }}'
)
#: The counter's own commands, and a new pooled connection's handshake (the cold page's two
#: concurrent mints may open a second connection once): not the request's round trips.
OURS = {"config", "info", "hello", "client"}

pytestmark = pytest.mark.integration


def app_on(redis_url: str, **config: Any) -> Any:
    config = {"TOUCAN_RATE_LIMIT": None, "TOUCAN_STORE_NEAR_CACHE": 0, **config}
    app, toucan = make_store_app(redis_url, **config)

    @toucan.permissions
    def permissions(user: Any) -> dict[str, dict[str, bool]]:
        return {"dashboard": {"can_view": True}, "ai": {"can_query": True}}

    @app.get("/two-scopes")
    def two_scopes() -> str:
        return render_template_string(PAGE)

    return app


def commands(r: redis.Redis) -> dict[str, int]:
    stats = r.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(v["calls"])
        for name, v in stats.items()
        if name.removeprefix("cmdstat_").split("|")[0] not in OURS
    }


def test_a_cached_page_with_two_scopes_is_one_redis_round_trip(redis_server):
    app = app_on(redis_server.url)
    client = app.test_client()
    login(client)
    first = client.get("/two-scopes").get_data(as_text=True)  # mints and caches both tokens
    assert "toucan-placeholder" not in first
    r = redis.Redis.from_url(redis_server.url)
    r.config_resetstat()
    page = client.get("/two-scopes").get_data(as_text=True)
    assert commands(r) == {"mget": 1}, commands(r)  # session record + both tokens, one MGET
    assert page.count("<tc-dashboard") == 3 and "<tc-ai-assistant" in page


def refresh_cached_twice(url: str, monkeypatch: Any = None, **config: Any) -> tuple[Any, list[Any]]:
    """Log in, refresh once (mints and caches), reset Redis's counters, refresh again (cached).

    Returns the Redis client (its command counts cover the second refresh only)
    and, with ``monkeypatch``, the socket writes that second refresh made.
    """
    from .test_redis_store import count_sends

    app = app_on(url, **config)
    client = app.test_client()
    headers = {"X-Toucan-CSRF": login(client), "Sec-Fetch-Site": "same-origin"}
    first = client.post("/toucan/token", json={"kind": "assistant"}, headers=headers)
    assert first.status_code == 200
    r = redis.Redis.from_url(url)
    r.config_resetstat()
    sends = count_sends(monkeypatch) if monkeypatch is not None else []
    again = client.post("/toucan/token", json={"kind": "assistant"}, headers=headers)
    assert again.status_code == 200 and again.get_json()["token"] == first.get_json()["token"]
    return r, sends


def test_a_cached_refresh_is_one_redis_round_trip(redis_server):
    r, _ = refresh_cached_twice(redis_server.url)
    assert commands(r) == {"mget": 1}, commands(r)


def test_the_one_round_trip_still_ends_at_logout(redis_server):
    """The session record is read in the same MGET: a logged-out cookie gets no cached token."""
    app = app_on(redis_server.url)
    client = app.test_client()
    csrf = login(client)
    headers = {"X-Toucan-CSRF": csrf, "Sec-Fetch-Site": "same-origin"}
    assert client.post("/toucan/token", json={"kind": "dashboard"}, headers=headers).status_code == 200
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert client.post("/toucan/logout", data={"csrf_token": csrf}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", cookie.value)
    resp = replay.post("/toucan/token", json={"kind": "dashboard"}, headers=headers)
    assert resp.status_code == 401
    assert "toucan-placeholder" in replay.get("/two-scopes").get_data(as_text=True)


def test_a_refresh_with_another_sessions_csrf_token_is_refused(redis_server):
    app = app_on(redis_server.url)
    alice, bob = app.test_client(), app.test_client()
    alice_csrf = login(alice)
    login(bob, sub="bob", org="globex")
    headers = {"X-Toucan-CSRF": alice_csrf, "Sec-Fetch-Site": "same-origin"}
    assert alice.post("/toucan/token", json={}, headers=headers).status_code == 200
    assert bob.post("/toucan/token", json={}, headers=headers).status_code == 403


def test_the_test_client_helper_still_works_with_redis(redis_server):
    app = app_on(redis_server.url)
    app.test_client_class = ToucanTestClient
    client = app.test_client()
    client.login({"sub": "carol", "iss": "https://idp.test", "org": "acme"})
    assert "<tc-dashboard" in client.get("/two-scopes").get_data(as_text=True)


def test_a_cold_page_and_a_cold_refresh_read_the_store_once(redis_server):
    """Session record and tokens are read in one MGET before minting, cold or not.

    The endpoint's kinds are learned on its first render (alice); bob's first page is cold.
    Each mint then runs the cross-worker lock's own protocol (``SET NX``, a re-read under
    the lock, the token's ``SET``, the release script), which is not counted here.
    """
    app = app_on(redis_server.url)
    alice, bob = app.test_client(), app.test_client()
    login(alice)
    alice.get("/two-scopes")
    login(bob, sub="bob", org="globex")
    r = redis.Redis.from_url(redis_server.url)
    r.config_resetstat()
    assert "toucan-placeholder" not in bob.get("/two-scopes").get_data(as_text=True)
    assert commands(r)["mget"] == 1, commands(r)
    assert len(r.keys("toucan:tok:*")) == 4  # alice's two tokens and bob's
    carol = app.test_client()
    csrf = login(carol, sub="carol", org="initech")
    r.config_resetstat()
    headers = {"X-Toucan-CSRF": csrf, "Sec-Fetch-Site": "same-origin"}
    assert carol.post("/toucan/token", json={"kind": "assistant"}, headers=headers).status_code == 200
    assert commands(r)["mget"] == 1, commands(r)


def test_tokens_that_are_never_cached_take_no_cross_worker_lock(redis_server):
    """TOUCAN_TOKEN_TTL=1: nothing is stored, so a lock would only queue the workers' signing."""
    app = app_on(redis_server.url, TOUCAN_TOKEN_TTL=1)
    client = app.test_client()
    csrf = login(client)
    r = redis.Redis.from_url(redis_server.url)
    r.config_resetstat()
    headers = {"X-Toucan-CSRF": csrf, "Sec-Fetch-Site": "same-origin"}
    first = client.post("/toucan/token", json={}, headers=headers)
    second = client.post("/toucan/token", json={}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.get_json()["token"] != second.get_json()["token"]
    assert commands(r) == {"mget": 2}, commands(r)  # one read per refresh, no lock, no write


def test_a_rate_limited_cached_refresh_is_still_one_round_trip(redis_server, monkeypatch):
    """With TOUCAN_RATE_LIMIT on, the counter's INCR + EXPIRE ride in the MGET's pipeline."""
    r, sends = refresh_cached_twice(redis_server.url, monkeypatch, TOUCAN_RATE_LIMIT="100/minute")
    assert len(sends) == 1, sends  # one write to the socket: one round trip
    assert commands(r) == {"mget": 1, "incr": 1, "expire": 1}, commands(r)


def test_the_rate_limit_is_shared_by_workers_and_answers_429_with_retry_after(redis_server):
    """Two app instances (two workers) on one Redis count one session's refreshes together."""
    worker_a = app_on(redis_server.url, TOUCAN_RATE_LIMIT="3/minute")
    worker_b = app_on(redis_server.url, TOUCAN_RATE_LIMIT="3/minute")
    client = worker_a.test_client()
    csrf = login(client)
    cookie = client.get_cookie("session")
    other = worker_b.test_client()
    other.set_cookie("session", cookie.value)
    headers = {"X-Toucan-CSRF": csrf, "Sec-Fetch-Site": "same-origin"}
    statuses = [
        c.post("/toucan/token", json={}, headers=headers).status_code for c in (client, other, client)
    ]
    assert statuses == [200, 200, 200]
    refused = other.post("/toucan/token", json={}, headers=headers)
    assert refused.status_code == 429 and refused.get_json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Cache-Control"] == "no-store"


def test_a_refresh_refused_for_its_csrf_token_is_not_counted(redis_server):
    app = app_on(redis_server.url, TOUCAN_RATE_LIMIT="2/minute")
    client = app.test_client()
    csrf = login(client)
    bad = {"X-Toucan-CSRF": "not-the-token", "Sec-Fetch-Site": "same-origin"}
    for _ in range(5):
        assert client.post("/toucan/token", json={}, headers=bad).status_code == 403
    good = {"X-Toucan-CSRF": csrf, "Sec-Fetch-Site": "same-origin"}
    assert [client.post("/toucan/token", json={}, headers=good).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
