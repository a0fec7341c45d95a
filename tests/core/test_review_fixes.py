"""Regression tests for the security review's findings."""

from __future__ import annotations

import logging

import pytest
from flask import Flask, jsonify, request

from flask_toucan import ConfigurationError, Toucan, ToucanUser
from flask_toucan.test_client import ToucanTestClient

from .helpers import API_KEY, SECRET_KEY, make_app, signed_config


@pytest.mark.integration
def test_apps_with_different_api_keys_never_share_cached_tokens(live_server):
    """Same Toucan URL, same store, same user: a token minted with key A is never served by app B."""
    from cachelib import SimpleCache

    upstream = Flask("fake")

    @upstream.post("/embed/generate-token")
    def token():
        return jsonify(token="tok-for-" + request.headers["x-api-key"][-1], expiresIn=3600)

    srv = live_server(upstream)
    store = SimpleCache()
    tokens = []
    for key in ("key-A", "key-B"):
        app, t = make_app(Toucan(), TOUCAN_BASE_URL=srv.url, TOUCAN_API_KEY=key, TOUCAN_STORE=store)
        with app.test_request_context():
            tokens.append(t.issue_token(t.login_user({"sub": "alice", "iss": "i", "org": "acme"})).value)
    assert tokens == ["tok-for-A", "tok-for-B"]


def test_api_key_with_newline_is_stripped_and_control_chars_refused():
    app, _ = make_app(TOUCAN_API_KEY=API_KEY + "\n")
    assert app.extensions["toucan"].config.api_key == API_KEY
    for bad in (API_KEY[:10] + "\n" + API_KEY[10:], API_KEY + " x", "clé-" + API_KEY):
        app = Flask("bad-key")
        app.config.update(SECRET_KEY=SECRET_KEY, TOUCAN_BASE_URL="http://127.0.0.1:9", TOUCAN_API_KEY=bad)
        with pytest.raises(ConfigurationError) as info:
            Toucan(app)
        assert API_KEY[:10] not in str(info.value)


def test_unexpected_http_client_error_is_upstream_error_without_secret(monkeypatch, caplog):
    import requests

    from flask_toucan import UpstreamError

    app, toucan = make_app()
    state = app.extensions["toucan"]

    def boom(*a, **kw):
        raise requests.exceptions.InvalidHeader(f"Invalid leading whitespace in header value: {API_KEY!r}")

    monkeypatch.setattr(state.transport.session, "post", boom)
    caplog.set_level(logging.DEBUG)
    with app.test_request_context():
        user = toucan.login_user({"sub": "a", "iss": "i", "org": "acme"})
        with pytest.raises(UpstreamError) as info:
            toucan.issue_token(user)
    assert API_KEY not in str(info.value) and "InvalidHeader" in str(info.value)
    assert all(API_KEY not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind": []}',
        b'{"kind": {}}',
        b'{"kind": 1}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"kind": "dashboard"' + b" " * 5000 + b"}",
        b"{not json",
    ],
)
def test_refresh_bad_bodies_get_json_400(body):
    app, _ = make_app(**signed_config(TOUCAN_RATE_LIMIT=None))
    app.test_client_class = ToucanTestClient
    client = app.test_client(user={"sub": "alice", "iss": "i", "org": "acme"})
    r = client.post(
        "/toucan/token",
        data=body,
        content_type="application/json",
        headers={"X-Toucan-CSRF": client.csrf_token},
    )
    assert r.status_code == 400 and r.is_json and r.get_json()["error"] == "bad_request"
    ok = client.post("/toucan/token", data=b"", headers={"X-Toucan-CSRF": client.csrf_token})
    assert ok.status_code == 200  # an empty body still means the default kind


def test_memo_does_not_mix_claim_sets_of_one_identity():
    app, toucan = make_app(**signed_config())
    with app.test_request_context():
        toucan.login_user({"sub": "alice", "iss": "i", "org": "acme"})
        first = toucan.issue_token(ToucanUser("i", "alice", {"org": "acme"}))
        second = toucan.issue_token(ToucanUser("i", "alice", {"org": "globex"}))
    assert first.claims["embed_context"]["attributes"]["organization_id"] == "acme"
    assert second.claims["embed_context"]["attributes"]["organization_id"] == "globex"


def test_distinct_id_is_injective():
    a = ToucanUser("https://a|b", "c", {})
    b = ToucanUser("https://a", "b|c", {})
    assert a.distinct_id != b.distinct_id
    assert ToucanUser("https://idp", "alice", {}).distinct_id == "https://idp|alice"
