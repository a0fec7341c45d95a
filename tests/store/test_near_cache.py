"""The Redis store's near cache (flask_toucan/nearcache.py) against a real ``redis-server``.

What must hold: a page the copy holds sends Redis nothing, and the copy is
never trusted past a change Redis has announced — a logout on another
worker, a key deleted by hand, ``FLUSHALL``, the invalidation connection
killed, silence on it, an expiry, a fork. Each test here fails if the
corresponding rule in ``NearCache`` is taken out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask

from flask_toucan import nearcache
from flask_toucan.exceptions import ConfigurationError
from flask_toucan.redis_store import RedisStore

from ..waiting import wait_until
from .apps import login, make_store_app

pytestmark = pytest.mark.integration

LONG = 60_000  # ms


class Clock:
    """A hand-moved monotonic clock (heartbeat and expiry without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def two_workers(url: str) -> tuple[Any, Any, Any]:
    """Two apps on one Redis (two workers), and a client of each carrying one login cookie."""
    apps = []
    for _ in range(2):
        app, toucan = make_store_app(url)

        @app.post("/logout")
        def logout(toucan: Any = toucan) -> str:
            toucan.logout_user()
            return "bye"

        apps.append(app)
    a, b = apps[0].test_client(), apps[1].test_client()
    login(a)
    cookie = a.get_cookie("session")
    assert cookie is not None
    b.set_cookie("session", cookie.value)
    return a, b, redis.Redis.from_url(url)


def commands(r: redis.Redis) -> dict[str, int]:
    skip = {"config", "info", "hello", "client"}
    return {
        name.removeprefix("cmdstat_"): int(v["calls"])
        for name, v in r.info("commandstats").items()
        if name.removeprefix("cmdstat_").split("|")[0] not in skip
    }


def warm(client: Any) -> None:
    """Pages until the copy holds this user's login record and token (a hit sends nothing)."""
    for _ in range(3):
        assert "<tc-dashboard" in client.get("/page").text


def near_store(url: str, capacity: int = 100) -> tuple[RedisStore, nearcache.NearCache, Clock]:
    store = RedisStore(redis.Redis.from_url(url), near_cache=capacity, near_prefixes=("sid:", "tok:"))
    assert store.near is not None
    clock = Clock()
    store.near.clock = clock
    return store, store.near, clock


def announced(near: nearcache.NearCache) -> None:
    """Wait until an invalidation Redis sent has reached the near cache's socket."""
    conn = near._conn
    assert conn is not None
    wait_until(lambda: conn.can_read(timeout=0.05), timeout=10, what="an invalidation")


# ---------------------------------------------------------------- pages and workers
def test_a_page_the_copy_holds_sends_redis_nothing(redis_server: Any) -> None:
    a, _, r = two_workers(redis_server.url)
    warm(a)
    r.config_resetstat()
    page = a.get("/page").text
    assert "<tc-dashboard" in page and "toucan-placeholder" not in page
    assert commands(r) == {}, commands(r)


@pytest.mark.parametrize("query", ["", "?decode_responses=True"])
def test_a_logout_on_another_worker_ends_the_next_page_here_at_once(redis_server: Any, query: str) -> None:
    a, b, _ = two_workers(redis_server.url + query)
    warm(b)
    assert b.get("/whoami").text == "alice"
    assert a.post("/logout").status_code == 200
    # No wait: Redis wrote the invalidation out in the same event-loop turn as its answer to A's DEL.
    assert b.get("/whoami").text == "anonymous"
    assert "<tc-dashboard" not in b.get("/page").text


def test_a_record_deleted_by_hand_is_gone_from_the_copy(redis_server: Any) -> None:
    _, b, r = two_workers(redis_server.url)
    warm(b)
    for name in r.scan_iter(match="toucan:sid:*"):
        r.delete(name)
    assert b.get("/whoami").text == "anonymous"


def test_flushall_empties_the_copy(redis_server: Any) -> None:
    _, b, r = two_workers(redis_server.url)
    warm(b)
    r.flushall()
    assert b.get("/whoami").text == "anonymous"


def test_a_killed_invalidation_connection_stops_the_copy_then_it_reconnects(redis_server: Any) -> None:
    _, b, r = two_workers(redis_server.url)
    warm(b)
    assert r.client_kill_filter(_type="pubsub") == 1
    record = next(iter(r.scan_iter(match="toucan:sid:*")))
    value = r.get(record)
    r.delete(record)  # no invalidation can reach the dead connection: the copy must not answer
    assert b.get("/whoami").text == "anonymous"
    r.set(record, value, ex=60)

    def a_hit() -> bool:  # a fetch reconnects (after the back-off), the next one fills, then hits
        r.config_resetstat()
        return "<tc-dashboard" in b.get("/page").text and commands(r) == {}

    wait_until(a_hit, timeout=10, what="the copy back")


# ---------------------------------------------------------------- the rules, one by one
def test_nothing_from_before_a_lost_connection_is_trusted_after_the_next(redis_server: Any) -> None:
    store, near, clock = near_store(redis_server.url)
    r = redis.Redis.from_url(redis_server.url)
    store.set("sid:{t}gone", "alice", timeout=60)
    store.set("sid:{t}kept", "bob", timeout=60)
    for _ in range(3):
        store.get_many("sid:{t}gone", "sid:{t}kept")
    assert r.client_kill_filter(_type="pubsub") == 1
    r.delete("toucan:sid:{t}gone")  # while nobody listens
    assert store.get("sid:{t}kept") == "bob"  # finds the connection dead
    clock.now += nearcache.HEARTBEAT + 0.1  # past the reconnect back-off
    store.get("sid:{t}kept")  # reconnects
    assert near._conn is not None
    assert near.lookup(["toucan:sid:{t}gone"]) is None
    assert store.get("sid:{t}gone") is None


def warm_key(store: RedisStore, near: nearcache.NearCache) -> str:
    """A login record the copy holds (its full Redis key)."""
    store.set("sid:{t}x", "alice", timeout=60)
    for _ in range(3):
        assert store.get("sid:{t}x") == "alice"
    assert near.lookup(["toucan:sid:{t}x"]) == [b'"alice"']
    return "toucan:sid:{t}x"


def test_silence_is_not_trusted_until_a_ping_is_answered(redis_server: Any) -> None:
    store, near, clock = near_store(redis_server.url)
    key = warm_key(store, near)
    r = redis.Redis.from_url(redis_server.url)
    r.client_pause(2000, all=True)  # the PING waits unanswered (a paused server cannot be unpaused)
    clock.now += nearcache.HEARTBEAT + 0.1
    assert near.lookup([key]) is None  # sends the PING
    assert near.lookup([key]) is None  # still no PONG
    wait_until(lambda: near.lookup([key]) == [b'"alice"'], timeout=10, what="the PONG")


def test_a_pong_read_late_vouches_only_for_when_its_ping_left(redis_server: Any) -> None:
    store, near, clock = near_store(redis_server.url)
    key = warm_key(store, near)
    clock.now += nearcache.HEARTBEAT * 0.6
    assert near.lookup([key]) == [b'"alice"']  # still proven; a PING goes out ahead of time
    announced(near)  # its PONG is here, unread
    clock.now += 5  # nobody asked for 5 s: the connection may have died since the PONG left
    assert near.lookup([key]) is None
    wait_until(lambda: near.lookup([key]) == [b'"alice"'], timeout=10, what="a fresh PONG")


def test_a_busy_worker_never_waits_for_a_pong(redis_server: Any) -> None:
    store, near, clock = near_store(redis_server.url)
    key = warm_key(store, near)
    for _ in range(20):  # 4 s of lookups every 0.2 s: each PONG is back before the proof ages out
        clock.now += 0.2
        assert near.lookup([key]) == [b'"alice"']
        if near._ping_sent is not None:
            announced(near)


def test_a_ping_never_answered_drops_the_connection(redis_server: Any) -> None:
    store, near, clock = near_store(redis_server.url)
    key = warm_key(store, near)
    redis.Redis.from_url(redis_server.url).client_pause(2000, all=True)
    clock.now += nearcache.HEARTBEAT + 0.1
    assert near.lookup([key]) is None  # the PING
    clock.now += nearcache.PONG_TIMEOUT + 0.1
    assert near.lookup([key]) is None
    assert near._conn is None and not near._entries


def test_a_value_read_while_its_key_changed_is_not_kept(redis_server: Any) -> None:
    store, near, clock = near_store(redis_server.url)
    store.get("sid:{t}other")  # connects the invalidation connection
    key = "toucan:sid:{t}race"
    ticket = near.begin([key])
    assert ticket is not None
    redis.Redis.from_url(redis_server.url).set(key, '"new"')  # after our read, before we keep it
    announced(near)
    near.lookup(["toucan:sid:{t}other"])  # drains the invalidation: the ticket is withdrawn
    near.fill(ticket, [key], [b'"old"'], [LONG], clock())
    assert near.lookup([key]) is None
    assert store.get("sid:{t}race") == "new"


def test_a_copy_expires_with_its_key(redis_server: Any) -> None:
    store, near, clock = near_store(redis_server.url)
    r = redis.Redis.from_url(redis_server.url)
    r.set("toucan:sid:{t}short", '"a"', px=300)
    r.set("toucan:sid:{t}long", '"b"', ex=60)
    for _ in range(3):
        store.get_many("sid:{t}short", "sid:{t}long")
    assert near.lookup(["toucan:sid:{t}short"]) == [b'"a"']
    clock.now += 0.5  # past the short key's PTTL, within the heartbeat
    assert near.lookup(["toucan:sid:{t}short"]) is None
    assert near.lookup(["toucan:sid:{t}long"]) == [b'"b"']


def test_only_the_newest_entries_are_kept(redis_server: Any) -> None:
    store, near, _ = near_store(redis_server.url, capacity=2)
    for name in ("a", "b", "c"):
        store.set(f"sid:{{t}}{name}", name, timeout=60)
    store.get("sid:{t}a")  # connects
    for name in ("a", "b", "c"):
        store.get(f"sid:{{t}}{name}")
    assert near.lookup(["toucan:sid:{t}a"]) is None
    assert near.lookup(["toucan:sid:{t}b", "toucan:sid:{t}c"]) == [b'"b"', b'"c"']


def test_own_writes_void_the_copy_before_redis_says_so(redis_server: Any) -> None:
    store, near, _ = near_store(redis_server.url)
    store.set("sid:{t}w", "alice", timeout=60)
    for _ in range(3):
        store.get("sid:{t}w")
    store.delete("sid:{t}w")
    assert near.lookup(["toucan:sid:{t}w"]) is None
    assert store.get("sid:{t}w") is None


def test_a_failed_fetch_leaves_no_claim_behind(redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store, near, _ = near_store(redis_server.url)
    store.get("sid:{t}a")  # connects

    def down(commands: Any) -> Any:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(store, "execute", down)
    with pytest.raises(redis.ConnectionError):
        store.get("sid:{t}b")
    assert not near._tickets


def test_other_keys_never_enter_the_copy(redis_server: Any) -> None:
    store, near, _ = near_store(redis_server.url)
    store.set("thread:x", ["t1"], timeout=60)
    for _ in range(3):
        assert store.get("thread:x") == ["t1"]
    assert not near.covers(["toucan:thread:x"])
    assert "toucan:thread:x" not in near._entries


def test_a_forked_child_starts_empty_and_leaves_the_parents_connection(
    redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, near, _ = near_store(redis_server.url)
    store.set("sid:{t}f", "alice", timeout=60)
    for _ in range(3):
        store.get("sid:{t}f")
    parent_conn = near._conn
    monkeypatch.setattr(nearcache.os, "getpid", lambda: 4_000_000)
    assert near.lookup(["toucan:sid:{t}f"]) is None
    assert near._conn is None and not near._entries
    parent_conn.send_command("PING")  # the parent's connection was not closed by the "child"
    assert parent_conn.read_response() == [b"pong", b""]


def test_a_real_fork_reads_through_its_own_connections(redis_server: Any) -> None:
    """After ``os.fork`` (gunicorn's ``--preload``): the child's store and copy work, the parent's too."""
    import os

    store, near, _ = near_store(redis_server.url)
    key = warm_key(store, near)
    parent_conn = near._conn
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only, never return into pytest
        code = 1
        try:
            fresh = near.lookup([key]) is None and near._conn is None
            values = [store.get("sid:{t}x") for _ in range(3)]
            code = 0 if fresh and values == ["alice"] * 3 and near._conn is not parent_conn else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert near._conn is parent_conn and near.lookup([key]) == [b'"alice"']
    assert store.get("sid:{t}x") == "alice"


class _Refusing:
    """A connection to a server (or proxy) that does not know CLIENT TRACKING."""

    def connect(self) -> None: ...

    def send_command(self, *args: Any) -> None:
        self.last = args

    def read_response(self) -> Any:
        if self.last[:2] == ("CLIENT", "TRACKING"):
            raise redis.ResponseError("ERR unknown subcommand 'TRACKING'")
        return 7

    def disconnect(self) -> None: ...


def test_a_server_that_refuses_tracking_turns_the_copy_off_once(caplog: pytest.LogCaptureFixture) -> None:
    opened: list[_Refusing] = []

    def connect() -> _Refusing:
        opened.append(_Refusing())
        return opened[-1]

    near = nearcache.NearCache(connect, ["toucan:sid:"], 10, clock=Clock())
    with caplog.at_level(logging.WARNING, "flask_toucan"):
        for _ in range(3):
            near.fill(near.begin(["toucan:sid:x"]), ["toucan:sid:x"], [b"1"], [LONG], 0.0)
            near.clock.now += 10  # type: ignore[attr-defined]
    assert near.refused and len(opened) == 1
    assert [r.getMessage() for r in caplog.records].count(
        "flask-toucan: Redis refused client tracking; near cache off (ERR unknown subcommand 'TRACKING')"
    ) == 1


class _Failing:
    """A connection whose server answers with an error naming a password (as a proxy might)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def connect(self) -> None:
        raise self.error

    def disconnect(self) -> None: ...


@pytest.mark.parametrize(
    "error",
    [redis.AuthenticationError("invalid password s3cret-pw"), redis.ConnectionError("redis://:s3cret-pw@h")],
)
def test_a_failed_connection_logs_no_secret(error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    near = nearcache.NearCache(lambda: _Failing(error), ["toucan:sid:"], 10, clock=Clock())
    with caplog.at_level(logging.DEBUG, "flask_toucan"):
        near.fill(None, ["toucan:sid:x"], [b"1"], [LONG], 0.0)
    assert caplog.records and not near.refused
    assert all("s3cret" not in r.getMessage() and r.exc_info is None for r in caplog.records)


# ---------------------------------------------------------------- where it is off
def test_off_for_sentinel_cluster_and_zero() -> None:
    from redis.sentinel import Sentinel

    from flask_toucan.redis_store import LazyClient

    master = Sentinel([("127.0.0.1", 1)]).master_for("mymaster")  # type: ignore[no-untyped-call]
    assert RedisStore(master, near_cache=10, near_prefixes=("sid:",)).near is None
    assert RedisStore(LazyClient(lambda: None), near_cache=10, near_prefixes=("sid:",)).near is None
    assert RedisStore(redis.Redis(), near_cache=0, near_prefixes=("sid:",)).near is None


@pytest.mark.parametrize("value", [-1, 1.5, "100", True, 10_000_001])
def test_the_setting_takes_a_count(value: Any) -> None:
    from flask_toucan import Toucan

    app = Flask("near")
    app.config.update(SECRET_KEY="k" * 32, TOUCAN_BASE_URL="https://toucan.example", TOUCAN_API_KEY="x")
    app.config["TOUCAN_STORE_NEAR_CACHE"] = value
    with pytest.raises(ConfigurationError, match="TOUCAN_STORE_NEAR_CACHE"):
        Toucan(app)


@pytest.fixture
def tls_redis() -> Iterator[Any]:
    from ..redis_deployments import TlsRedis

    with TlsRedis() as server:
        yield server.start()


def test_over_tls_a_hit_sends_nothing_and_a_logout_still_reaches_it(tls_redis: Any) -> None:
    url = f"{tls_redis.url}?ssl_ca_certs={tls_redis.ca_file}"
    a, b, r = two_workers(url)
    warm(b)
    r.config_resetstat()
    assert b.get("/whoami").text == "alice"
    assert commands(r) == {}
    a.post("/logout")
    assert b.get("/whoami").text == "anonymous"
