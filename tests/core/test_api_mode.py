"""api mode against a local HTTP server standing in for Toucan's token API."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask, Response, jsonify, redirect, request

from flask_toucan import Toucan, UpstreamError, cache, minting
from tests.waiting import FakeClock

from .helpers import API_KEY, make_app

pytestmark = pytest.mark.integration


class FakeToucan:
    """Scripted token API: each request pops the next planned answer (default: success)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.plan: list = []
        self.latency = 0.0
        self.lock = threading.Lock()
        self.app = Flask("fake-toucan")
        self.app.add_url_rule("/embed/generate-token", "token", self.token, methods=["POST"])
        self.app.add_url_rule("/elsewhere", "elsewhere", self.elsewhere, methods=["POST", "GET"])
        self.redirected = 0

    def token(self):
        with self.lock:
            self.calls.append(
                {
                    "headers": dict(request.headers),
                    "json": request.get_json(silent=True),
                    "path": request.path,
                }
            )
            step = self.plan.pop(0) if self.plan else None
        if self.latency:
            # A slow upstream IS the behaviour here: requests must pile up behind one call.
            time.sleep(self.latency)
        if callable(step):
            return step()
        if step is None:
            return jsonify(token=f"opaque-{len(self.calls)}", expiresIn=3600)
        return step

    def elsewhere(self):
        self.redirected += 1
        return jsonify(token="should-not-be-used", expiresIn=3600)


@pytest.fixture
def fake(live_server):
    f = FakeToucan()
    f.server = live_server(f.app)
    return f


def host(fake, **cfg):
    cfg.setdefault("TOUCAN_HTTP_DEADLINE", 3)
    app, toucan = make_app(Toucan(), TOUCAN_BASE_URL=fake.server.url, **cfg)
    return app, toucan


def issue(app, toucan, sub="alice", org="acme", **kw):
    with app.test_request_context():
        user = toucan.login_user({"sub": sub, "iss": "https://idp", "org": org})
        return toucan.issue_token(user, **kw)


def no_secret(exc):
    for text in (str(exc), repr(exc), str(exc.to_dict())):
        assert API_KEY not in text


def test_exact_documented_request(fake):
    app, toucan = host(fake)
    token = issue(app, toucan, kind="dashboard")
    call = fake.calls[0]
    assert call["path"] == "/embed/generate-token"
    assert call["headers"]["X-Api-Key"] == API_KEY
    assert call["headers"]["Content-Type"] == "application/json"
    assert call["json"] == {
        "user": {
            "distinctId": "https://idp|alice",
            "role": "explorer",
            "attributes": {"organization_id": "acme"},
        },
        "permissions": {"dashboard": {"can_view": True}},
    }
    assert token.value == "opaque-1"
    assert 3590 <= token.expires_in <= 3600
    assert token.claims == call["json"]  # what we asked for, not a decoded token


@pytest.mark.parametrize(
    "expires_in,seconds", [(900, 900), ("1h", 3600), ("15m", 900), ("90s", 90), ("1h30m", 5400)]
)
def test_expires_in_forms(fake, expires_in, seconds):
    fake.plan.append(lambda: jsonify(token="t", expiresIn=expires_in))
    app, toucan = host(fake, TOUCAN_TOKEN_MAX_TTL=86400)
    # <= 2: one second of clock granularity is claimed off (minting.ApiMinter), one of floor.
    assert abs(issue(app, toucan).expires_in - seconds) <= 2


def test_max_ttl_caps_what_we_serve(fake):
    fake.plan.append(lambda: jsonify(token="t", expiresIn=7200))
    app, toucan = host(fake, TOUCAN_TOKEN_MAX_TTL=600)
    assert issue(app, toucan).expires_in <= 600


def test_cache_hit_and_key_includes_attributes(fake):
    app, toucan = host(fake)
    a = issue(app, toucan)
    b = issue(app, toucan)
    assert a.value == b.value and len(fake.calls) == 1
    c = issue(app, toucan, org="globex")
    assert c.value != a.value and len(fake.calls) == 2


def test_cache_expires_before_token_does(fake, monkeypatch):
    # Minting and the cache read one injected clock; it moves only by hand.
    clock = FakeClock().install(monkeypatch, cache, minting)
    fake.plan.append(lambda: jsonify(token="short", expiresIn=2))
    app, toucan = host(fake)
    first = issue(app, toucan)
    # Served for 1.5 s (2 s less the second claimed off for Toucan's rounding),
    # from the cache until a quarter of that before expiry: 1.125 s.
    clock.advance(1.2)
    second = issue(app, toucan)
    assert first.value == "short" and second.value != "short"


def test_fifty_concurrent_requests_one_upstream_call(fake):
    fake.latency = 0.4
    app, toucan = host(fake)
    with app.test_request_context():
        user = toucan.login_user({"sub": "alice", "iss": "https://idp", "org": "acme"})

    def one(_):
        with app.test_request_context():
            return toucan.issue_token(user).value

    with ThreadPoolExecutor(max_workers=50) as pool:
        values = list(pool.map(one, range(50)))
    assert len(set(values)) == 1
    assert len(fake.calls) == 1


def test_503_then_success_is_retried(fake):
    fake.plan += [lambda: (jsonify(error="busy"), 503)]
    app, toucan = host(fake)
    assert issue(app, toucan).value == "opaque-2"
    assert len(fake.calls) == 2


def test_429_with_retry_after_is_honoured(fake):
    fake.plan += [lambda: Response("slow down", 429, {"Retry-After": "1"})]
    app, toucan = host(fake)
    started = time.monotonic()
    assert issue(app, toucan).value == "opaque-2"
    assert time.monotonic() - started >= 0.9


def test_retry_after_beyond_deadline_fails_fast(fake):
    fake.plan += [lambda: Response("slow down", 429, {"Retry-After": "120"})]
    # A deadline far from both "at once" and the 120 s asked for: waiting for it
    # would take 10 s, failing fast takes milliseconds; 5 s splits them on any machine.
    app, toucan = host(fake, TOUCAN_HTTP_DEADLINE=10)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        issue(app, toucan)
    assert time.monotonic() - started < 5
    assert info.value.retry_after == 120 and info.value.status_code == 503
    no_secret(info.value)


def test_retries_are_bounded(fake):
    fake.plan += [lambda: (jsonify(error="x"), 502)] * 5
    app, toucan = host(fake)
    with pytest.raises(UpstreamError, match="502"):
        issue(app, toucan)
    assert len(fake.calls) == 3  # first try + at most 2 retries


def test_401_is_not_retried(fake):
    fake.plan += [lambda: (jsonify(error="bad key", echoed=request.headers.get("x-api-key")), 401)]
    app, toucan = host(fake)
    with pytest.raises(UpstreamError, match="401") as info:
        issue(app, toucan)
    assert len(fake.calls) == 1
    no_secret(info.value)


@pytest.mark.parametrize(
    "answer",
    [
        lambda: Response("{not json", 200, {"Content-Type": "application/json"}),
        lambda: jsonify(expiresIn=3600),
        lambda: jsonify(token="", expiresIn=3600),
        lambda: jsonify(token="t", expiresIn="soon"),
        lambda: jsonify(token="t", expiresIn=0),
        lambda: jsonify(token="t", expiresIn=-30),
        lambda: jsonify(token="t", expiresIn=10**9),
        lambda: jsonify(token="t"),
        lambda: jsonify(["t", 3600]),
        lambda: Response("x" * 200_000, 200),
    ],
)
def test_bad_responses_are_upstream_errors(fake, answer):
    fake.plan.append(answer)
    app, toucan = host(fake)
    with pytest.raises(UpstreamError) as info:
        issue(app, toucan)
    no_secret(info.value)
    assert len(fake.calls) == 1


def test_slow_drip_past_deadline(fake):
    def drip():
        def gen():
            yield b'{"token": "'
            for _ in range(40):
                time.sleep(0.2)  # the behaviour under test: a server dripping bytes past the deadline
                yield b"x"
            yield b'", "expiresIn": 3600}'

        return Response(gen(), 200, {"Content-Type": "application/json"})

    fake.plan.append(drip)
    app, toucan = host(fake, TOUCAN_HTTP_DEADLINE=1.5)
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="deadline"):
        issue(app, toucan)
    assert time.monotonic() - started < 4


def test_redirect_not_followed(fake):
    fake.plan.append(lambda: redirect(fake.server.url + "/elsewhere", code=307))
    app, toucan = host(fake)
    with pytest.raises(UpstreamError, match="redirect") as info:
        issue(app, toucan)
    assert fake.redirected == 0
    no_secret(info.value)


def test_unreachable_upstream(fake):
    port = fake.server.port
    fake.server.stop()
    app, toucan = make_app(Toucan(), TOUCAN_BASE_URL=f"http://127.0.0.1:{port}", TOUCAN_HTTP_DEADLINE=2)
    with pytest.raises(UpstreamError, match="unreachable") as info:
        issue(app, toucan)
    no_secret(info.value)


def test_refresh_endpoint_maps_upstream_failure_to_503(fake):
    fake.plan += [lambda: (jsonify(error="down"), 503)] * 3
    app, toucan = host(fake)

    @app.get("/login-test")
    def login_test():
        toucan.login_user({"sub": "alice", "iss": "https://idp", "org": "acme"})
        return toucan.csrf_token()

    client = app.test_client()
    csrf = client.get("/login-test").get_data(as_text=True)
    r = client.post("/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": csrf})
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) >= 1
    body = r.get_json()
    assert body["error"] == "upstream_unavailable" and "token" not in body
    assert API_KEY not in r.get_data(as_text=True)
