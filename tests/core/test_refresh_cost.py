"""What keeps a refresh cheap (benchmarks 3 and 9) without changing what it checks."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from flask_toucan.test_client import ToucanTestClient

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
