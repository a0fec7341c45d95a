"""Our Redis store on a real redis-server: JSON values, old pickles read as misses, one round trip."""

from __future__ import annotations

import pickle
import time
from typing import Any

import pytest
import redis

from flask_toucan.ratelimit import Limit, RateLimit
from flask_toucan.redis_store import RedisStore
from flask_toucan.store import make_store

pytestmark = pytest.mark.integration


class Boom:
    """What a pickle from a hostile writer would build: never built here."""

    built = False

    def __reduce__(self) -> Any:
        return (Boom.mark, ())

    @staticmethod
    def mark() -> None:
        Boom.built = True


def raw(server: Any) -> redis.Redis:
    return server.client()


def test_values_are_json_and_read_back_as_written(redis_server: Any) -> None:
    store = make_store(redis_server.url)
    entry = {"value": "t", "exp": 1.5, "serve_until": 1.0, "claims": {"a": [1, "x"], "b": None}}
    assert store.set("tok:{u}1", entry, timeout=60)
    assert store.set("sid:{u}x", '["iss","sub"]', timeout=60)
    assert (
        raw(redis_server).get("toucan:tok:{u}1")
        == b'{"value":"t","exp":1.5,"serve_until":1.0,"claims":{"a":[1,"x"],"b":null}}'
    )
    assert store.get_many("sid:{u}x", "tok:{u}1", "tok:{u}none") == ['["iss","sub"]', entry, None]
    assert 55 <= raw(redis_server).ttl("toucan:tok:{u}1") <= 60
    assert store.set("forever", [1, 2]) and raw(redis_server).ttl("toucan:forever") == -1


def test_a_pickled_value_is_a_miss_never_unpickled(redis_server: Any) -> None:
    """cachelib's RedisCache wrote ``!`` + pickle: left over from before, or planted by another writer."""
    r = raw(redis_server)
    r.set("toucan:sid:{u}old", b"!" + pickle.dumps('["iss","sub"]'))
    r.set("toucan:tok:{u}evil", b"!" + pickle.dumps(Boom()))
    r.set("toucan:tok:{u}junk", b"\xff\xfe not json")
    store = make_store(redis_server.url)
    assert store.get("sid:{u}old") is None  # an old login record: logged out, not a crash
    assert store.get_many("tok:{u}evil", "tok:{u}junk") == [None, None]
    assert not Boom.built
    assert store.set("sid:{u}old", "again") and store.get("sid:{u}old") == "again"  # overwritten


def test_add_inc_delete_and_clear(redis_server: Any) -> None:
    store = make_store(redis_server.url)
    assert store.add("k", 1, timeout=30) and not store.add("k", 2, timeout=30)
    assert store.get("k") == 1 and store.inc("k", 4) == 5 and store.get("k") == 5 and store.dec("k") == 4
    assert store.has("k") and store.delete("k") and not store.delete("k") and not store.has("k")
    raw(redis_server).set("someone-else", b"1")
    store.set("a", 1)
    store.set("b", 2)
    assert store.clear()
    assert store.get_many("a", "b") == [None, None]
    assert raw(redis_server).get("someone-else") == b"1"  # only our prefix is cleared


def test_read_and_count_is_one_round_trip(redis_server: Any, monkeypatch: Any) -> None:
    """The reads and each window's INCR + EXPIRE go out in one write to the socket."""
    store = make_store(redis_server.url)
    store.set("sid:{u}s", "alice", timeout=60)
    rate = RateLimit((Limit(2, 60), Limit(100, 3600)))
    now = time.time()
    windows = rate.windows("toucan-refresh", "{u}s", now)
    store.get("sid:{u}s")  # the pooled connection is open
    sends = count_sends(monkeypatch)
    assert store.read(["sid:{u}s", "tok:{u}t"], windows, now) == (["alice", None], [1, 1])
    assert store.read(["sid:{u}s"], windows, now) == (["alice"], [2, 2])
    assert len(sends) == 2
    ttl = raw(redis_server).ttl("toucan:" + windows[0].key)
    assert 0 < ttl <= 61 and ttl >= int(windows[0].ends_at - time.time()) - 1


def test_a_connection_redis_closed_is_replaced_once(redis_server: Any) -> None:
    store = make_store(redis_server.url)
    store.set("k", "v")
    raw(redis_server).client_kill_filter(_type="normal", skipme=True)  # every pooled connection dies
    assert store.get("k") == "v"


def count_sends(monkeypatch: Any) -> list[bytes]:
    sends: list[bytes] = []
    real = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sends.append(command)
        real(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sends


def test_the_store_is_ours_not_cachelibs(redis_server: Any) -> None:
    assert isinstance(make_store(redis_server.url).inner, RedisStore)


def test_threads_each_use_their_own_connection_and_get_their_own_answers(redis_server: Any) -> None:
    import threading

    store = make_store(redis_server.url)
    for i in range(8):
        store.set(f"k{i}", {"n": i})
    errors: list[str] = []

    def reader(i: int) -> None:
        for _ in range(200):
            if store.get_many(f"k{i}", "missing") != [{"n": i}, None]:
                errors.append(f"thread {i} read another thread's answer")

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_thread_per_request_server_leaves_no_connection_behind(redis_server: Any) -> None:
    """Werkzeug's development server starts a thread per request: each thread's connection
    goes back to the pool when the thread ends, so Redis does not see one more client per request."""
    import gc
    import threading

    store = make_store(redis_server.url)
    store.set("k", {"n": 1})
    before = len(raw(redis_server).client_list())
    for _ in range(40):
        t = threading.Thread(target=lambda: store.get_many("k"))
        t.start()
        t.join()
    gc.collect()
    assert len(raw(redis_server).client_list()) <= before + 2


def test_an_error_reply_mid_exchange_leaves_no_reply_unread(redis_server: Any) -> None:
    """INCR of a non-number fails after the MGET's reply: the next call must not read stale replies."""
    store = make_store(redis_server.url)
    inner = store.inner
    raw(redis_server).set("toucan:rl:{u}s:b:60:1", b"not a number")
    store.set("sid:{u}s", "alice")
    with pytest.raises(redis.ResponseError):
        inner.read(["sid:{u}s"], [("rl:{u}s:b:60:1", 60), ("rl:{u}s:other", 60)])
    assert store.get("sid:{u}s") == "alice"
    # Redis ran the failed call's later INCR too (a pipeline is not a transaction): 2, not 1.
    assert inner.read(["sid:{u}s"], [("rl:{u}s:other", 60)]) == (["alice"], [2])


def time_out_once(monkeypatch: Any) -> list[bytes]:
    """The first reply read after this times out (the command was sent and ran); the sends, recorded."""
    sends = count_sends(monkeypatch)
    real = redis.connection.AbstractConnection.read_response
    state = {"armed": True}

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        if state["armed"]:
            state["armed"] = False
            real(self, *args, **kwargs)  # Redis answered: the command ran
            raise redis.TimeoutError("Timeout reading from socket")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "read_response", flaky)
    return sends


def test_a_timed_out_incrby_is_not_sent_again(redis_server: Any, monkeypatch: Any) -> None:
    inner = make_store(redis_server.url).inner
    inner.set("n", 1)
    sends = time_out_once(monkeypatch)
    with pytest.raises(redis.TimeoutError):
        inner.inc("n", 5)
    assert len(sends) == 1  # and no reconnect to send it again
    assert raw(redis_server).get("toucan:n") == b"6"  # counted once, not twice


def test_a_timed_out_set_nx_is_not_sent_again(redis_server: Any, monkeypatch: Any) -> None:
    """A repeat would find its own write and report ``False``: the add's caller would think it lost."""
    inner = make_store(redis_server.url).inner
    inner.get("warm")
    sends = time_out_once(monkeypatch)
    with pytest.raises(redis.TimeoutError):
        inner.add("lock", "mine", timeout=30)
    assert len(sends) == 1
    assert inner.get("lock") == "mine"


def test_a_timed_out_get_is_read_again(redis_server: Any, monkeypatch: Any) -> None:
    inner = make_store(redis_server.url).inner
    inner.set("k", "v")
    sends = time_out_once(monkeypatch)
    assert inner.get("k") == "v"
    assert [s for s in sends if b"GET" in b"".join(s)] == [sends[0], sends[0]]  # sent twice


def test_a_write_after_redis_closed_the_connection_is_sent_once_and_succeeds(
    redis_server: Any, monkeypatch: Any
) -> None:
    inner = make_store(redis_server.url).inner
    inner.set("n", 1)
    raw(redis_server).client_kill_filter(_type="normal", skipme=True)  # every pooled connection dies
    sends = count_sends(monkeypatch)
    assert inner.inc("n") == 2
    assert len([s for s in sends if b"INCRBY" in b"".join(s)]) == 1
