"""TokenService.key_for memoises cache keys by request fingerprint; it must never be stale.

The invariant: after any sequence of requests, ``key_for(r)`` equals the key
computed from scratch (``_key_of(r)``). The variants below differ from each
other in one thing each, including values that compare equal in Python but
are different JSON (``1``/``True``/``1.0``), so a fingerprint keyed too loosely
fails here.
"""

from __future__ import annotations

from typing import Any

import flask_toucan.minting as minting
from flask_toucan.cache import TokenCache
from flask_toucan.mappers import ClassicContext
from flask_toucan.memstore import MemoryStore
from flask_toucan.minting import MintRequest, TokenService
from flask_toucan.user import ToucanUser


class _NoMinter:
    def mint(self, request: MintRequest) -> Any:
        raise AssertionError("not called")


def service() -> TokenService:
    return TokenService(_NoMinter(), TokenCache(MemoryStore(), lambda lifetime: 0.0), "ns")


ALICE = ToucanUser("https://idp", "alice", {})
BOB = ToucanUser("https://idp", "bob", {})
OTHER_IDP = ToucanUser("https://other", "alice", {})
VIEW: dict[str, dict[str, bool]] = {"dashboard": {"can_view": True}}


def variants() -> list[MintRequest]:
    classic = ClassicContext()
    return [
        MintRequest(ALICE, {"org": "acme"}, VIEW, classic),
        MintRequest(ALICE, {"org": "globex"}, VIEW, classic),
        MintRequest(BOB, {"org": "acme"}, VIEW, classic),
        MintRequest(OTHER_IDP, {"org": "acme"}, VIEW, classic),
        MintRequest(ALICE, {"org": "acme", "groups": ["a", "b"]}, VIEW, classic),
        MintRequest(ALICE, {"org": "acme", "groups": ["b", "a"]}, VIEW, classic),
        MintRequest(ALICE, {"org": "acme", "groups": "a"}, VIEW, classic),
        MintRequest(ALICE, {"org": 1}, VIEW, classic),
        MintRequest(ALICE, {"org": True}, VIEW, classic),
        MintRequest(ALICE, {"org": 1.0}, VIEW, classic),
        MintRequest(ALICE, {"org": "acme"}, {"dashboard": {"can_view": True, "can_edit": True}}, classic),
        MintRequest(ALICE, {"org": "acme"}, {"dashboard": {"can_view": 1}}, classic),  # type: ignore[dict-item]
        MintRequest(ALICE, {"org": "acme"}, {"chart": {"can_view": True}}, classic),
        MintRequest(ALICE, {"org": "acme"}, VIEW, ClassicContext(roles=["ADMIN"])),
        MintRequest(ALICE, {"org": "acme"}, VIEW, ClassicContext(groups=["finance"])),
        MintRequest(ALICE, {"org": "acme"}, VIEW, ClassicContext(privileges={"app": ["view"]})),
        MintRequest(ALICE, {"org": "acme"}, VIEW, ClassicContext(secrets={"token": "s1"})),
        MintRequest(ALICE, {"org": "acme"}, VIEW, ClassicContext(secrets={"token": "s2"})),
        MintRequest(ALICE, {"org": "acme"}, VIEW, None),
    ]


def odd_shapes() -> list[MintRequest]:
    """Hand-built shapes the mappers never give: keyed the slow way, never a crash."""
    return [
        MintRequest(ALICE, {"org": "acme"}, {"dashboards": ["sales"]}, None),  # type: ignore[dict-item]
        MintRequest(ALICE, {"org": "acme"}, [("dashboard", "can_view")], None),  # type: ignore[arg-type]
        MintRequest(ALICE, [("org", "acme")], VIEW, None),  # type: ignore[arg-type]
        MintRequest(ALICE, {"org": "acme"}, VIEW, ClassicContext(roles=("USER",))),  # type: ignore[arg-type]
        MintRequest(ALICE, {"org": "acme"}, VIEW, ClassicContext(privileges={"app": ("view",)})),  # type: ignore[dict-item]
    ]


def test_memoised_keys_always_equal_fresh_ones() -> None:
    svc = service()
    requests = variants() + odd_shapes()
    for _ in range(2):  # the second pass is served from the memo where it can be
        for request in requests:
            assert svc.key_for(request) == svc._key_of(request)
    keys = [svc.key_for(r) for r in variants()]
    # every variant is another key (a list's order counts: it is the mappers' order)
    assert len(set(keys)) == len(keys)


def test_the_memo_is_used_and_bounded(monkeypatch: Any) -> None:
    svc = service()
    request = variants()[0]
    first = svc.key_for(request)
    monkeypatch.setattr(minting, "cache_key", lambda *a: "recomputed")
    assert svc.key_for(request) == first  # served from the memo
    monkeypatch.setattr(minting, "_MAX_KEYS", 1)
    assert svc.key_for(variants()[1]) == "recomputed"  # a full memo is cleared, then filled
    assert len(svc._keys) == 1
