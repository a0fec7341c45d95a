"""Issue 20 items 1 and 5: the login record's idle and absolute timeouts, activity, fixation.

Time is the registry's clock (``state.sessions.clock``), moved by the test:
nothing sleeps. The store keeps its own (real) expiry as a backstop; what
ends a login here is the record's check, the same on every worker.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import render_template_string

from flask_toucan import logins
from flask_toucan.state import SESSION_ID
from flask_toucan.test_client import ToucanTestClient

from ..waiting import FakeClock
from .helpers import make_app, signed_config

PAGE = '{% from "toucan/components.html" import tc_dashboard %}{{ tc_dashboard("sales") }}'
ALICE = {"sub": "alice", "iss": "https://idp.example", "org": "acme"}


def _app(**config: Any) -> tuple[Any, Any, FakeClock]:
    app, toucan = make_app(**signed_config(**config))
    app.test_client_class = ToucanTestClient
    app.add_url_rule("/page", "page", lambda: render_template_string(PAGE))
    clock = FakeClock()
    app.extensions["toucan"].sessions.clock = clock.time
    return app, toucan, clock


def _refresh(client: Any) -> Any:
    return client.post(
        "/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": client.csrf_token}
    )


def _ping(client: Any) -> Any:
    return client.post("/toucan/activity", headers={"X-Toucan-CSRF": client.csrf_token})


def test_defaults_are_12_hours_and_30_minutes_not_flasks_31_days() -> None:
    app, _toucan, _clock = _app()
    config = app.extensions["toucan"].config
    assert config.session_lifetime == 43200
    assert config.session_idle_timeout == 1800
    assert app.config["PERMANENT_SESSION_LIFETIME"].days == 31  # Flask's: no longer ours
    assert app.extensions["toucan"].sessions.policy.lifetime == 43200


def test_idle_login_ends_and_timed_refreshes_do_not_keep_it_alive() -> None:
    app, _toucan, clock = _app()
    with app.test_client(user=ALICE) as client:
        assert _refresh(client).status_code == 200
        for _ in range(5):  # the refresh script's timer: every 5 minutes, no user in sight
            clock.advance(300)
            assert _refresh(client).status_code == 200
        clock.advance(300)  # 1800 s since the login, the last activity
        resp = _refresh(client)
        assert resp.status_code == 401
        assert resp.json["error"] == "session_expired"
        assert resp.json["reason"] == "idle"
        assert resp.headers["Cache-Control"] == "no-store"
        # The page gets the log-in placeholder, not a component.
        html = client.get("/page").get_data(as_text=True)
        assert 'data-toucan-placeholder="logged_out"' in html
        assert "<tc-dashboard" not in html
        assert _ping(client).status_code == 401  # a ping cannot revive an ended login


def test_activity_ping_and_page_views_keep_the_login_alive() -> None:
    app, _toucan, clock = _app()
    with app.test_client(user=ALICE) as client:
        clock.advance(1500)
        resp = _ping(client)  # the user clicked: the idle clock restarts
        assert resp.status_code == 200 and resp.json == {"active": True}
        clock.advance(1500)  # 3000 s after login, 1500 s after the ping
        assert _refresh(client).status_code == 200
        html = client.get("/page").get_data(as_text=True)  # a page view is activity too
        assert "<tc-dashboard" in html
        clock.advance(1700)  # 1700 s after the page view
        assert _refresh(client).status_code == 200
        clock.advance(100)
        assert _refresh(client).json["reason"] == "idle"


def test_absolute_lifetime_ends_an_active_login() -> None:
    app, _toucan, clock = _app(TOUCAN_SESSION_LIFETIME=3600)
    with app.test_client(user=ALICE) as client:
        for _ in range(5):  # busy all along: a ping every 12 minutes
            clock.advance(700)
            assert _ping(client).status_code == 200
            assert _refresh(client).status_code == 200
        clock.advance(100)  # 3600 s since the login
        resp = _refresh(client)
        assert resp.status_code == 401 and resp.json["reason"] == "lifetime"
        assert "<tc-dashboard" not in client.get("/page").get_data(as_text=True)


def test_the_record_lives_in_the_store_so_every_worker_sees_the_same() -> None:
    """Two apps (two workers) sharing one store: activity on one keeps the other alive."""
    from cachelib import SimpleCache

    shared = SimpleCache(default_timeout=0)
    app_a, _t, clock = _app(TOUCAN_STORE=shared)
    app_b, _t2, _c2 = _app(TOUCAN_STORE=shared)
    app_b.extensions["toucan"].sessions.clock = clock.time
    with app_a.test_client(user=ALICE) as a:
        with a.session_transaction() as sess:
            cookie = dict(sess)
        b = app_b.test_client()
        with b.session_transaction() as sess:
            sess.update(cookie)
        b.csrf_token = a.csrf_token
        clock.advance(1700)
        assert _ping(b).status_code == 200  # activity seen by worker B
        clock.advance(1700)
        assert _refresh(a).status_code == 200  # worker A reads the record B wrote
        clock.advance(1801)
        assert _refresh(b).json["reason"] == "idle"
        assert _refresh(a).json["reason"] == "idle"


def test_activity_writes_are_throttled() -> None:
    app, _toucan, clock = _app()
    state = app.extensions["toucan"]
    with app.test_client(user=ALICE) as client:
        with client.session_transaction() as sess:
            key = state.sessions.prefix + sess[SESSION_ID]
        first = state.store.get(key)
        clock.advance(10)  # under the step (a tenth of the idle timeout, at most 60 s)
        assert _ping(client).status_code == 200
        assert state.store.get(key) == first
        clock.advance(60)
        assert _ping(client).status_code == 200
        assert state.store.get(key)["a"] == pytest.approx(clock.time())


def test_page_carries_the_activity_ping_and_its_throttle() -> None:
    app, _toucan, _clock = _app(TOUCAN_SESSION_IDLE_TIMEOUT=600)
    with app.test_client(user=ALICE) as client:
        html = client.get("/page").get_data(as_text=True)
    assert 'data-toucan-activity-url="/toucan/activity"' in html
    assert 'data-toucan-activity-every="60"' in html
    app, _toucan, _clock = _app(TOUCAN_SESSION_IDLE_TIMEOUT=0)  # no idle timeout: no pings
    with app.test_client(user=ALICE) as client:
        html = client.get("/page").get_data(as_text=True)
    assert "<tc-dashboard" in html and "data-toucan-activity" not in html


def test_ping_is_guarded_like_the_refresh() -> None:
    app, _toucan, _clock = _app()
    with app.test_client(user=ALICE) as client:
        assert client.post("/toucan/activity").status_code == 403  # no CSRF token
        cross = client.post(
            "/toucan/activity",
            headers={"X-Toucan-CSRF": client.csrf_token, "Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        bad = client.post(
            "/toucan/activity",
            data="{nope",
            content_type="application/json",
            headers={"X-Toucan-CSRF": client.csrf_token},
        )
        assert bad.status_code == 400 and bad.json["error"] == "bad_request"
    anonymous = app.test_client()
    resp = anonymous.post("/toucan/activity", headers={"X-Toucan-CSRF": "x"})
    assert resp.status_code == 401 and resp.json["error"] == "not_authenticated"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "TOUCAN_SESSION_IDLE_TIMEOUT"),
        (1.5, "TOUCAN_SESSION_IDLE_TIMEOUT"),
        ("x", "TOUCAN_SESSION_IDLE_TIMEOUT"),
    ],
)
def test_bad_idle_timeout_is_refused_at_init(value: Any, message: str) -> None:
    from flask_toucan.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match=message):
        make_app(**signed_config(TOUCAN_SESSION_IDLE_TIMEOUT=value))


def test_record_judgement_is_pure() -> None:
    policy = logins.Policy(lifetime=100, idle=30)
    record = logins.new('["i","s"]', 1000.0)
    assert logins.status(record, '["i","s"]', 1029.9, policy) == logins.ACTIVE
    assert logins.status(record, '["i","s"]', 1030.0, policy) == logins.IDLE
    assert logins.status({**record, "a": 1090.0}, '["i","s"]', 1100.0, policy) == logins.LIFETIME
    assert logins.status(record, '["i","other"]', 1000.0, policy) == logins.ABSENT
    assert logins.status('["i","s"]', '["i","s"]', 1000.0, policy) == logins.ABSENT  # the old format
    assert logins.status({**record, "o": True}, '["i","s"]', 1000.0, policy) == logins.ABSENT
    assert policy.ttl(record, 1000.0) == 31
    assert logins.Policy(lifetime=100).ttl(record, 1000.0) == 101  # no idle timeout


# ------------------------------------------------------------ item 5: fixation
def test_login_gets_a_new_session_id_and_the_old_one_is_dead() -> None:
    app, toucan, _clock = _app()
    state = app.extensions["toucan"]
    client = app.test_client()
    client.login(ALICE)
    with client.session_transaction() as sess:
        before = sess[SESSION_ID]
    old_csrf = client.csrf_token
    assert state.store.get(state.sessions.prefix + before) is not None
    client.get("/page")
    # A second login in the same browser session (or a planted pre-login id): a fresh id.
    with client.session_transaction() as sess:
        data = dict(sess)
    with app.test_request_context():
        from flask import session

        from flask_toucan import identity

        session.update(data)
        identity.login_user({**ALICE, "sub": "bob"})
        after = session[SESSION_ID]
        fresh = dict(session)
    assert after != before
    assert state.store.get(state.sessions.prefix + before) is None  # the pre-login record is gone
    assert state.store.get(state.sessions.prefix + after)["s"] != "alice"
    # Replaying the pre-login cookie: logged out, and its CSRF token is no good for the new one.
    with client.session_transaction() as sess:
        sess.clear()
        sess.update(data)
    client.csrf_token = old_csrf
    assert _refresh(client).status_code == 401
    with client.session_transaction() as sess:
        sess.clear()
        sess.update(fresh)
    assert _refresh(client).status_code == 403  # the old CSRF token is bound to the old id
    assert toucan is not None


def test_a_planted_session_id_is_not_reused_at_login() -> None:
    """An id set before login (a fixation attempt, the claims-loader's id) never survives it."""
    from flask import session

    from flask_toucan import identity

    app, _toucan, _clock = _app()
    state = app.extensions["toucan"]
    with app.test_request_context():
        session[SESSION_ID] = "planted-by-an-attacker"
        state.store.set(state.sessions.prefix + "planted-by-an-attacker", logins.new('["x","y"]', 0.0))
        identity.login_user(ALICE)
        assert "planted" not in session[SESSION_ID]
    assert state.store.get(state.sessions.prefix + "planted-by-an-attacker") is None
