"""What keeps a refresh cheap (benchmarks 3 and 9) without changing what it checks."""

from __future__ import annotations

import gc
import hashlib
import json
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flask_toucan.cache import SingleFlight, cache_key
from flask_toucan.exceptions import AttributeMappingError
from flask_toucan.mappers import (
    ClassicContext,
    MapperRegistry,
    clean_privileges,
    clean_roles,
    default_privileges,
    default_roles,
    valid_name,
)
from flask_toucan.minting import MintRequest
from flask_toucan.schema import NO_SCHEMA, check_value
from flask_toucan.test_client import ToucanTestClient
from flask_toucan.user import ToucanUser
from flask_toucan.views import small_json_body
from tests.waiting import wait_until

from .helpers import make_app, signed_config

ALICE = {"sub": "alice", "iss": "https://idp.test", "org": "acme"}


def _refresh(client: ToucanTestClient, csrf: str) -> Any:
    return client.post("/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": csrf})


@pytest.fixture
def saved_garbage() -> Iterator[list[Any]]:
    """What the cyclic garbage collector finds (``gc.DEBUG_SAVEALL``), restored afterwards."""
    gc.collect()
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_a_refresh_leaves_no_cyclic_garbage(saved_garbage):
    """The page object on ``g`` refers back to ``g``: the app-context teardown breaks that
    cycle, so the request's objects are freed by reference counting, not by the collector."""
    app, _ = make_app(**signed_config())
    app.test_client_class = ToucanTestClient
    client = app.test_client(user=ALICE)
    csrf = client.csrf_token  # the test client's own context, outside the measured requests
    assert _refresh(client, csrf).status_code == 200  # warm: the login and the cached token
    gc.collect()
    saved_garbage.clear()
    for _ in range(3):
        assert _refresh(client, csrf).status_code == 200
    gc.collect()
    # The page's objects (one set per request without the teardown).
    page_objects = {"Page", "Slot", "MintRequest", "EmbedToken", "ClassicContext"}
    assert sorted({type(o).__qualname__ for o in saved_garbage} & page_objects) == []


# ------------------------------------------------------------------ single flight
def test_single_flight_waiters_share_the_leaders_result_and_error():
    """The flight's latch is a plain lock now: waiters still block until the leader ends,
    every one of them gets its result (or its error), and the key is free afterwards."""
    flights = SingleFlight()
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow(value: Any) -> Any:
        def fn() -> Any:
            calls.append(1)
            entered.set()
            assert release.wait(10)
            if isinstance(value, Exception):
                raise value
            return value

        return fn

    for outcome in ("token", ValueError("upstream said no")):
        entered.clear(), release.clear(), calls.clear()
        results: list[Any] = []

        def run(outcome: Any = outcome, results: list[Any] = results) -> None:
            try:
                results.append(flights.do("k", slow(outcome)))
            except ValueError as exc:
                results.append(exc)

        leader = threading.Thread(target=run)
        leader.start()
        assert entered.wait(10)
        waiters = [threading.Thread(target=run) for _ in range(5)]
        for t in waiters:
            t.start()
        # Every waiter is blocked inside SingleFlight.do (its innermost frame), not yet done.
        wait_until(lambda: all(_innermost(t) == "do" for t in waiters), what="waiters in do()")
        assert results == []
        release.set()
        for t in (leader, *waiters):
            t.join(10)
        assert len(calls) == 1 and len(results) == 6
        assert all(r is outcome for r in results)
        assert flights.completed("k") >= 1 and flights.do("k", lambda: "again") == "again"


def _innermost(thread: threading.Thread) -> str | None:
    frame = sys._current_frames().get(thread.ident or -1)
    return frame.f_code.co_name if frame is not None else None


# ------------------------------------------------------------------ cache key
def _request(attributes: dict[str, Any], classic: ClassicContext | None = None) -> MintRequest:
    user = ToucanUser("https://idp.test", "alice", {"org": "acme"})
    return MintRequest(user, attributes, {"dashboard": {"can_view": True}}, classic)


def test_cache_key_text_is_unchanged_by_the_shared_encoder():
    """Keys of tokens cached before this release stay the same (no cold cache on upgrade)."""
    parts = {"namespace": "n", "user": "u", "attributes": {"b": [1.0, True], "a": "é"}, "classic": None}
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    assert cache_key(parts, "{t}") == "tok:{t}" + hashlib.sha256(blob.encode()).hexdigest()


def test_a_changed_attribute_or_secret_gives_another_key():
    app, _ = make_app(**signed_config())
    service = app.extensions["toucan"].service
    base = service.key_for(_request({"org": "acme"}, ClassicContext()))
    assert service.key_for(_request({"org": "acme"}, ClassicContext())) == base
    assert service.key_for(_request({"org": "acme2"}, ClassicContext())) != base
    assert service.key_for(_request({"org": "acme", "n": 1}, ClassicContext())) != base
    assert service.key_for(_request({"org": "acme", "n": True}, ClassicContext())) != service.key_for(
        _request({"org": "acme", "n": 1}, ClassicContext())
    )
    with_secret = service.key_for(_request({"org": "acme"}, ClassicContext(secrets={"db": "pw"})))
    other_secret = service.key_for(_request({"org": "acme"}, ClassicContext(secrets={"db": "pw2"})))
    assert len({base, with_secret, other_secret}) == 3


def test_a_changed_attribute_gives_a_fresh_token_on_refresh():
    app, _ = make_app(**signed_config())
    app.test_client_class = ToucanTestClient
    client = app.test_client(user=ALICE)
    first = _refresh(client, client.csrf_token).get_json()["token"]
    again_client = app.test_client(user=ALICE)
    assert _refresh(again_client, again_client.csrf_token).get_json()["token"] == first
    moved = app.test_client(user={**ALICE, "org": "globex"})
    assert _refresh(moved, moved.csrf_token).get_json()["token"] != first


# ------------------------------------------------------------------ mappers
def test_default_classic_mappers_give_what_cleaning_them_gives():
    registry = MapperRegistry()
    user = ToucanUser("https://idp.test", "alice", {})
    fast = registry.map_classic(user)
    assert (fast.roles, fast.privileges, fast.groups, fast.secrets) == (
        clean_roles(default_roles(user)),
        clean_privileges(default_privileges(user)),
        [],
        {},
    )
    assert registry.map_classic(user).roles is not fast.roles  # fresh lists: a caller may keep them
    registry.roles_mapper = lambda u: ["ADMIN", "GUEST"]  # a custom mapper is checked, as before
    with pytest.raises(AttributeMappingError):
        registry.map_classic(user)


def test_attribute_names_are_checked_every_time_even_after_a_valid_one():
    registry = MapperRegistry()
    registry.add_bulk(lambda u: {"ok_name": "x", **u.get("extra", {})})
    assert registry.map_attributes(ToucanUser("i", "a", {}), ()) == {"ok_name": "x"}
    for bad in ("bad name", "ok_name\n", "1x", "x" * 65):
        with pytest.raises(AttributeMappingError):
            registry.map_attributes(ToucanUser("i", "a", {"extra": {bad: "v"}}), ())
    assert valid_name("ok_name") and not valid_name(7) and not valid_name("ok_name\n")


# ------------------------------------------------------------------ refresh body and headers
@pytest.mark.parametrize("raw", [b'{"kind":"dashboard"}', b'{"kind":"dashboard" }', b'{ "kind": "chart"}'])
def test_refresh_bodies_parse_as_json_loads_does(raw):
    app, _ = make_app(**signed_config())
    with app.test_request_context(
        "/toucan/token", method="POST", data=raw, headers={"Content-Type": "application/json"}
    ):
        assert small_json_body() == json.loads(raw)


def test_refresh_answers_keep_every_security_header():
    app, _ = make_app(**signed_config())
    app.test_client_class = ToucanTestClient
    client = app.test_client(user=ALICE)
    ok = _refresh(client, client.csrf_token)
    refused = _refresh(client, "forged")
    for resp in (ok, refused):
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert ok.status_code == 200 and refused.status_code == 403
    assert len(ok.headers.getlist("Referrer-Policy")) == 1 and "Set-Cookie" not in ok.headers


def test_distinct_id_memo_follows_issuer_and_subject():
    a = ToucanUser("https://idp.test", "alice", {})
    assert a.distinct_id == "https://idp.test|alice"
    assert ToucanUser("https://idp.test", "bob", {}).distinct_id != a.distinct_id
    assert (
        ToucanUser("https://idp.test|x", "y", {}).distinct_id
        != ToucanUser("https://idp.test", "x|y", {}).distinct_id
    )
    a.subject = "carol"  # a changed attribute of the same object: the memo is keyed on the values
    assert a.distinct_id == "https://idp.test|carol"


@pytest.mark.parametrize(
    "value", ["acme", "a\u202eb", "x\ny", "\x00", "é" * 300, "ok", " padded ", "\ud800", "a\u2028b"]
)
def test_plain_text_attributes_are_checked_as_the_general_path_checks_them(value):
    """The untyped-text shortcut in map_attributes gives what the general path gives: the same
    value, or an AttributeMappingError (schema.check_value on the cleaned value)."""
    registry = MapperRegistry()
    registry.add_attribute("org", lambda u: u["org"])
    user = ToucanUser("i", "a", {"org": value})
    try:
        expected: Any = {"org": check_value(NO_SCHEMA, "org", value, required=False)}
    except AttributeMappingError:
        expected = AttributeMappingError
    if expected is AttributeMappingError:
        with pytest.raises(AttributeMappingError):
            registry.map_attributes(user, ())
    else:
        assert registry.map_attributes(user, ()) == expected
