"""A dead store degrades (503, placeholder), never a 500; the breaker fails fast and recovers."""

from __future__ import annotations

import errno
import time
from typing import Any

import fakeredis
import pytest
import redis
from cachelib import FileSystemCache, RedisCache, SimpleCache

from flask_toucan.exceptions import StoreUnavailable
from flask_toucan.ratelimit import Limit, RateLimit
from flask_toucan.redis_store import RedisStore
from flask_toucan.store import CircuitBreaker, GuardedStore, describe_near_cache, describe_store, make_store

from .apps import login, make_store_app

PASSWORD = "s3cret-redis-password"
DEAD_REDIS = f"redis://:{PASSWORD}@127.0.0.1:1/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyCache(SimpleCache):
    """A cachelib cache whose calls raise while ``down`` and count while doing so."""

    def __init__(self) -> None:
        super().__init__(default_timeout=0)
        self.down = False
        self.calls = 0
        self.error_text = "Error 111 connecting to 10.0.0.7:6379. Connection refused."

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise redis.ConnectionError(self.error_text)

    def get(self, key: str) -> Any:
        self._check()
        return super().get(key)

    def set(self, key: str, value: Any, timeout: Any = None) -> bool:
        self._check()
        return bool(super().set(key, value, timeout))

    def delete(self, key: str) -> bool:
        self._check()
        return bool(super().delete(key))


def disconnected_redis() -> tuple[fakeredis.FakeServer, RedisCache]:
    server = fakeredis.FakeServer()
    return server, RedisCache(
        host=fakeredis.FakeRedis(server=server), key_prefix="toucan:", default_timeout=0
    )


# ------------------------------------------------------------------ breaker
def test_breaker_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock = Clock()
    inner = FlakyCache()
    store = GuardedStore(inner, "Redis", CircuitBreaker("Redis", failures=3, cooldown=5, clock=clock))
    store.set("k", "v")
    inner.down = True
    for _ in range(3):
        with pytest.raises(StoreUnavailable):
            store.get("k")
    assert store.breaker.is_open
    calls = inner.calls
    for _ in range(50):
        with pytest.raises(StoreUnavailable, match="circuit open"):
            store.get("k")
    assert inner.calls == calls  # failed fast: the store was not asked


def test_breaker_half_open_probe_closes_when_the_store_is_back() -> None:
    clock = Clock()
    inner = FlakyCache()
    store = GuardedStore(inner, "Redis", CircuitBreaker("Redis", failures=2, cooldown=5, clock=clock))
    store.set("k", "v")
    inner.down = True
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            store.get("k")
    clock.now += 5
    with pytest.raises(StoreUnavailable):  # the probe, still failing: open again
        store.get("k")
    calls = inner.calls
    with pytest.raises(StoreUnavailable, match="circuit open"):
        store.get("k")
    assert inner.calls == calls
    inner.down = False
    clock.now += 5
    assert store.get("k") == "v"  # the probe succeeds: closed
    assert not store.breaker.is_open
    assert store.get("k") == "v"


def test_breaker_lets_one_probe_through_at_a_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker("Redis", failures=1, cooldown=1, clock=clock)
    breaker.failure()
    clock.now += 1
    breaker.before()  # the probe
    with pytest.raises(StoreUnavailable):
        breaker.before()  # a second caller while the probe runs
    breaker.success()
    breaker.before()


def test_a_bug_in_the_probe_does_not_wedge_the_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker("Redis", failures=1, cooldown=1, clock=clock)
    breaker.failure()
    clock.now += 1

    def bug() -> None:
        raise TypeError("a programming error, not an outage")

    with pytest.raises(TypeError):
        breaker.call("get", bug)
    assert breaker.call("get", lambda: 1) == 1


# ------------------------------------------------------------ guarded store
def test_redis_errors_become_store_unavailable_without_host_or_password() -> None:
    store = make_store(DEAD_REDIS, connect_timeout=0.2, timeout=0.2)
    with pytest.raises(StoreUnavailable) as info:
        store.get("sid:x")
    text = str(info.value) + repr(info.value) + str(info.value.to_dict())
    assert "Redis" in text
    assert PASSWORD not in text and "127.0.0.1" not in text
    assert info.value.status_code == 503 and info.value.retry_after == 5


def test_redis_client_gets_short_timeouts_and_one_retry() -> None:
    store = make_store(DEAD_REDIS, connect_timeout=0.25, timeout=0.3)
    assert isinstance(store.inner, RedisStore)
    client = store.inner.client
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == 0.25
    assert kwargs["socket_timeout"] == 0.3
    retry = client.get_retry()
    # Retry.get_retries() arrived in redis-py 6; the lowest supported (5.3) keeps the count as _retries.
    assert (retry.get_retries() if hasattr(retry, "get_retries") else retry._retries) == 1


def test_fakeredis_disconnected_is_store_unavailable() -> None:
    server, cache = disconnected_redis()
    store = make_store(cache)
    store.set("a", 1)
    server.connected = False
    with pytest.raises(StoreUnavailable, match="RedisCache store is unavailable"):
        store.get("a")


def test_full_disk_on_the_file_store_is_store_unavailable(tmp_path: Any, monkeypatch: Any) -> None:
    store = make_store(f"file://{tmp_path}")
    assert isinstance(store.inner, FileSystemCache)
    assert store.set("ok", 1)

    def no_space(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("cachelib.file.tempfile.mkstemp", no_space)
    with pytest.raises(StoreUnavailable, match="file store"):
        store.set("sid:new", "alice")


def test_session_close_that_cannot_delete_is_store_unavailable(tmp_path: Any, monkeypatch: Any) -> None:
    from flask_toucan.store import SessionRegistry

    registry = SessionRegistry(make_store(f"file://{tmp_path}"), 60)
    sid = registry.open("alice")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("cachelib.file.os.remove", refuse)
    with pytest.raises(StoreUnavailable):
        registry.close(sid)
    assert registry.is_active(sid, "alice")  # it is still there: the logout did not happen


def test_a_rate_limit_count_on_a_dead_redis_is_store_unavailable() -> None:
    """The counter travels in the store's own round trip: its failure is the store's, behind its breaker."""
    server = fakeredis.FakeServer()
    store = GuardedStore(RedisStore(fakeredis.FakeRedis(server=server)), "Redis", CircuitBreaker("Redis"))
    windows = RateLimit((Limit(5, 60),)).windows("toucan-refresh", "{tag}sid", time.time())
    assert store.read(["sid:x"], windows, time.time()) == ([None], [1])
    server.connected = False
    with pytest.raises(StoreUnavailable, match="Redis store"):
        store.read(["sid:x"], windows, time.time())
    with pytest.raises(StoreUnavailable, match="Redis store"):
        store.read([], windows, time.time())


def test_describe_store_never_shows_the_password() -> None:
    assert describe_store(DEAD_REDIS) == "Redis (redis, 127.0.0.1:1)"
    assert PASSWORD not in describe_store(DEAD_REDIS)
    assert describe_store("unix:///run/redis.sock") == "Redis (unix, /run/redis.sock)"
    assert describe_store("memory") == "memory"


def test_cli_check_does_not_print_the_redis_password() -> None:
    app, _ = make_store_app(DEAD_REDIS)
    with app.app_context():  # ours, even if an earlier test left another app's context pushed
        result = app.test_cli_runner().invoke(args=["toucan", "check"])
    assert PASSWORD not in result.output
    assert "Redis" in result.output
    assert "store near cache: up to 10000 entries per worker" in result.output


@pytest.mark.parametrize(
    ("spec", "entries", "says"),
    [
        ("memory", 10, None),
        (DEAD_REDIS, 0, "off (TOUCAN_STORE_NEAR_CACHE = 0)"),
        ("redis+sentinel://s:26379/m", 10, "off (Sentinel and Cluster read Redis on every request)"),
        ("redis+cluster://n:7000", 10, "off (Sentinel and Cluster read Redis on every request)"),
        ("rediss://h:6380/0", 5, "up to 5 entries per worker, kept true by Redis's invalidations"),
    ],
)
def test_check_says_whether_the_near_cache_is_on(spec: str, entries: int, says: str | None) -> None:
    assert describe_near_cache(spec, entries) == says


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TOUCAN_STORE_CONNECT_TIMEOUT", 0),
        ("TOUCAN_STORE_TIMEOUT", "fast"),
        ("TOUCAN_STORE_BREAKER_FAILURES", 0),
        ("TOUCAN_STORE_BREAKER_FAILURES", True),
        ("TOUCAN_STORE_BREAKER_COOLDOWN", -1),
    ],
)
def test_store_settings_are_validated(key: str, value: Any) -> None:
    from flask_toucan.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match=key):
        make_store_app("memory", **{key: value})


# --------------------------------------------------------------- the app
@pytest.fixture(params=["RedisStore", "RedisCache"])
def down_app(request: Any) -> Any:
    """An app on fakeredis, a user logged in, then the server disconnected.

    Our own Redis store (reads and the rate-limit count in one pipeline), and
    cachelib's ``RedisCache`` passed as a custom cache (reads, then counting in
    process).
    """
    server, cache = disconnected_redis()
    store: Any = cache
    if request.param == "RedisStore":
        breaker = CircuitBreaker("Redis", cooldown=0.05)
        store = GuardedStore(RedisStore(fakeredis.FakeRedis(server=server)), "Redis", breaker)
    app, _ = make_store_app(store, TOUCAN_STORE_BREAKER_COOLDOWN=0.05)
    client = app.test_client()
    csrf = login(client)
    assert client.get("/page").status_code == 200
    server.connected = False
    return app, client, csrf, server


def test_page_renders_the_unavailable_placeholder(down_app: Any) -> None:
    _, client, _, _ = down_app
    resp = client.get("/page")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'data-toucan-placeholder="unavailable"' in html
    assert "<tc-dashboard" not in html


def test_refresh_answers_503_json_with_retry_after(down_app: Any) -> None:
    _, client, csrf, _ = down_app
    for _ in range(5):  # before and after the breaker opens
        resp = client.post("/toucan/token", json={}, headers={"X-Toucan-CSRF": csrf})
        assert resp.status_code == 503
        assert resp.headers["Retry-After"] == "5"
        assert resp.get_json()["error"] == "store_unavailable"
        assert resp.headers["Cache-Control"] == "no-store"


def test_logout_answers_an_html_503_page_and_keeps_the_cookie(down_app: Any) -> None:
    _, client, csrf, server = down_app
    resp = client.post("/toucan/logout", data={"csrf_token": csrf})
    assert resp.status_code == 503
    assert resp.mimetype == "text/html"
    assert resp.headers["Retry-After"] == "5"
    body = resp.get_data(as_text=True)
    assert "Temporarily unavailable" in body and "Traceback" not in body
    server.connected = True
    # The login is intact; the user can log out for real once the store is back.
    assert _eventually(lambda: client.get("/whoami").get_data(as_text=True) == "alice")


def test_own_login_during_an_outage_is_an_html_503(down_app: Any) -> None:
    _, client, _, _ = down_app
    resp = client.post("/login", json={"sub": "bob", "iss": "https://idp.test", "org": "acme"})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"


def test_host_view_reading_current_user_is_503_not_500(down_app: Any) -> None:
    _, client, _, _ = down_app
    page = client.get("/whoami")
    assert page.status_code == 503 and page.mimetype == "text/html"
    api = client.get("/whoami", headers={"Accept": "application/json"})
    assert api.status_code == 503 and api.get_json()["error"] == "store_unavailable"


def test_can_is_false_while_the_store_is_down(down_app: Any) -> None:
    app, client, _, _ = down_app
    toucan = app.extensions["toucan"].manager
    with app.test_request_context("/"):
        from flask import session

        # The cookie's session, as a page view would see it.
        cookie = client.get_cookie("session")
        assert cookie is not None
        session.update(app.session_interface.get_signing_serializer(app).loads(cookie.value))
        assert toucan.can("dashboard") is False


def test_everything_recovers_when_the_store_comes_back(down_app: Any) -> None:
    _, client, csrf, server = down_app
    for _ in range(5):
        assert client.post("/toucan/token", json={}, headers={"X-Toucan-CSRF": csrf}).status_code == 503
    server.connected = True

    def refreshed() -> bool:
        return client.post("/toucan/token", json={}, headers={"X-Toucan-CSRF": csrf}).status_code == 200

    assert _eventually(refreshed)
    assert "<tc-dashboard" in client.get("/page").get_data(as_text=True)


def _eventually(check: Any, timeout: float = 10.0) -> bool:
    """Poll ``check`` until true (the breaker's cool-down runs on the real clock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)  # poll interval, not the wait itself
    return False


def test_no_redis_password_or_host_in_any_degraded_answer(caplog: Any) -> None:
    """Store errors whose text quotes the URL: no body, header or log line repeats it."""
    inner = FlakyCache()
    inner.error_text = f"Error 111 connecting to {DEAD_REDIS}. Connection refused."
    app, _ = make_store_app(inner)
    client = app.test_client()
    csrf = login(client)
    inner.down = True
    answers = [
        client.get("/page"),
        client.get("/whoami"),
        client.get("/whoami", headers={"Accept": "application/json"}),
        client.post("/toucan/token", json={}, headers={"X-Toucan-CSRF": csrf}),
        client.post("/toucan/logout", data={"csrf_token": csrf}),
        client.post("/login", json={"sub": "bob", "iss": "https://idp.test", "org": "acme"}),
    ]
    assert [r.status_code for r in answers] == [200, 503, 503, 503, 503, 503]
    text = "".join(r.get_data(as_text=True) + str(r.headers) for r in answers) + caplog.text
    assert PASSWORD not in text and "127.0.0.1" not in text


def test_login_against_a_dead_redis_is_503() -> None:
    app, _ = make_store_app(DEAD_REDIS, TOUCAN_STORE_CONNECT_TIMEOUT=0.2, TOUCAN_STORE_TIMEOUT=0.2)
    resp = app.test_client().post("/login", json={"sub": "alice", "iss": "https://idp.test", "org": "acme"})
    assert resp.status_code == 503
    assert PASSWORD not in resp.get_data(as_text=True)
