"""The in-process store: bounded maps, LRU eviction, tokens never push out login records."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from flask_toucan.config import ToucanConfig
from flask_toucan.exceptions import ConfigurationError
from flask_toucan.memstore import MemoryStore
from flask_toucan.store import make_store

from ..core.helpers import signed_config
from .apps import login, make_store_app


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_tokens_evict_least_recently_used_first() -> None:
    store = MemoryStore(max_tokens=3, max_sessions=10)
    for i in range(3):
        store.set(f"tok:{i}", f"t{i}")
    assert store.get("tok:0") == "t0"  # 0 is now the most recently used
    store.set("tok:3", "t3")  # over capacity: the least recently used (1) goes
    assert [store.get(f"tok:{i}") for i in range(4)] == ["t0", None, "t2", "t3"]
    assert store.tokens.evictions == 1 and len(store.tokens) == 3


def test_tokens_never_evict_login_records(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore(max_tokens=100, max_sessions=50)
    for i in range(50):
        store.set(f"sid:{i}", f"user-{i}", timeout=3600)
    with caplog.at_level(logging.WARNING, logger="flask_toucan"):
        for i in range(10_000):
            store.set(f"tok:{i}", {"value": i}, timeout=60)
    assert all(store.get(f"sid:{i}") == f"user-{i}" for i in range(50))
    assert store.records.evictions == 0 and "evicted" not in caplog.text
    assert len(store.tokens) == 100  # bounded
    assert store.get("tok:9999") == {"value": 9999} and store.get("tok:0") is None


def test_a_lost_login_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore(max_tokens=10, max_sessions=2)
    with caplog.at_level(logging.WARNING, logger="flask_toucan"):
        store.set("sid:secret-session-id-a", "alice")
        store.set("sid:secret-session-id-b", "bob")
        store.set("sid:secret-session-id-c", "carol")
    assert store.get("sid:secret-session-id-a") is None
    assert "TOUCAN_STORE_MAX_SESSIONS=2" in caplog.text and "logged out" in caplog.text
    assert "secret-session-id" not in caplog.text  # the key is a session id: never logged


def test_entries_expire_and_values_are_copies() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    entry = {"value": "abc", "claims": {"a": 1}}
    store.set("tok:x", entry, timeout=10)
    got = store.get("tok:x")
    got["claims"]["a"] = 2  # a caller mutating its copy
    assert store.get("tok:x") == {"value": "abc", "claims": {"a": 1}}
    clock.now += 10
    assert store.get("tok:x") is None and not store.has("tok:x")
    store.set("sid:y", "kept", timeout=0)  # 0: no expiry
    clock.now += 10**9
    assert store.get("sid:y") == "kept"


def test_add_inc_delete_clear() -> None:
    store = MemoryStore()
    assert store.add("sid:a", 1) and not store.add("sid:a", 2)
    assert store.inc("n") == 1 and store.inc("n", 5) == 6 and store.dec("n") == 5
    assert store.delete("sid:a") and not store.delete("sid:a")
    store.set("tok:a", "x")
    assert store.clear() and store.get("tok:a") is None and store.get("n") is None


def test_capacities_come_from_the_config(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_store_app("memory", TOUCAN_STORE_MAX_TOKENS=5, TOUCAN_STORE_MAX_SESSIONS=2)
    store: Any = app.extensions["toucan"].store.inner
    assert isinstance(store, MemoryStore)
    assert (store.tokens.capacity, store.records.capacity) == (5, 2)
    clients = [app.test_client() for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="flask_toucan"):
        for i, client in enumerate(clients):
            login(client, sub=f"user-{i}")
    assert "logged out" in caplog.text
    assert clients[0].get("/whoami").text == "anonymous"  # the oldest login went
    assert clients[2].get("/whoami").text == "user-2"


@pytest.mark.parametrize("key", ["TOUCAN_STORE_MAX_TOKENS", "TOUCAN_STORE_MAX_SESSIONS"])
@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True])
def test_bad_capacities_are_refused(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=key):
        ToucanConfig.from_mapping(signed_config(**{key: value}))


def test_memory_is_the_default_store() -> None:
    assert isinstance(make_store("memory").inner, MemoryStore)
    assert isinstance(make_store(None).inner, MemoryStore)
