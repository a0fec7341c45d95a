"""Whatever the token API or the exchange answers with 200, no 500 (issue 22, item 1).

A real local HTTP server plays the upstream (Toucan AI's token API in ``api``
mode, the realm's token endpoint in the classic profile) and answers with the
body the test sets; the host app runs the full path: ``POST /toucan/token``
through the transport, the parser and the error handlers, and a page with
``tc_dashboard``. A malformed answer is :class:`UpstreamProtocolError`: 502
``upstream_protocol_error`` on the refresh endpoint (no ``Retry-After``: the
script backs off), the ``unavailable`` placeholder on the page, never a 500,
never a token made from part of the answer. Hypothesis fuzzes the answer's
fields (``token`` / ``expiresIn``, ``access_token`` / ``expires_in``).
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from typing import Any

import pytest
from flask import Flask, Response, render_template_string
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flask_toucan import Toucan, UpstreamError, UpstreamProtocolError
from flask_toucan.wire import MAX_UPSTREAM_LIFETIME, parse_expires_in

from .helpers import API_KEY, make_app, signed_config

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PAGE = '{% from "toucan/components.html" import tc_dashboard %}{{ tc_dashboard("sales-overview") }}'
SECRET = "exchange-SECRET-s3cr3t"
#: JSON values of every shape: what a buggy upstream could put in a field.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
LIFETIMES = st.one_of(
    JSON_VALUES,
    st.sampled_from(["soon", "1h", "15m", "0", "-5", "1e999", "3600", " ", "99999999999999999999d"]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.just(float("inf")),
    st.just(float("nan")),
)
TOKENS = st.one_of(
    JSON_VALUES,
    st.just("opaque-ok"),
    st.text(max_size=30),
    st.just("x" * 20_000),
    st.just("\ud800"),  # a lone surrogate, as JSON's "\\ud800" delivers it
    st.just("tok\u00e9n"),
)


class Upstream:
    """A local HTTP server answering every POST with the body last set (status 200)."""

    def __init__(self) -> None:
        self.body = b"{}"
        self.lock = threading.Lock()
        self.app = Flask("fake-upstream")
        self.app.add_url_rule("/embed/generate-token", "api", self.answer, methods=["POST"])
        self.app.add_url_rule("/oauth/token", "exchange", self.answer, methods=["POST"])

    def set(self, fields: dict[str, Any]) -> None:
        # allow_nan: Python's json writes NaN / Infinity, which json.loads reads back
        # (``1e999`` is read as inf too): the upstream may well send them.
        with self.lock:
            self.body = json.dumps(fields, allow_nan=True).encode()

    def set_raw(self, body: bytes) -> None:
        with self.lock:
            self.body = body

    def answer(self) -> Response:
        with self.lock:
            body = self.body
        return Response(body, 200, {"Content-Type": "application/json"})


@pytest.fixture
def upstream(live_server):
    up = Upstream()
    up.server = live_server(up.app)
    return up


def api_host(up: Upstream):
    return with_routes(*make_app(Toucan(), TOUCAN_BASE_URL=up.server.url, **common()))


def exchange_host(up: Upstream):
    cfg = signed_config(
        TOUCAN_EXCHANGE_URL=up.server.url + "/oauth/token", TOUCAN_EXCHANGE_CLIENT_SECRET=SECRET
    )
    return with_routes(*make_app(Toucan(), **cfg, **common()))


def common() -> dict[str, Any]:
    return {"TOUCAN_HTTP_DEADLINE": 3, "TOUCAN_HTTP_RETRIES": 0, "TOUCAN_RATE_LIMIT": "100000/minute"}


_subjects = itertools.count()


def with_routes(app: Flask, toucan: Toucan):
    @app.get("/login-test/<sub>")
    def login_test(sub: str) -> str:
        toucan.login_user({"sub": sub, "iss": "https://idp", "org": "acme"})
        return toucan.csrf_token()

    app.add_url_rule("/page", "page", lambda: render_template_string(PAGE))
    return app, toucan


def run_both(app: Flask) -> tuple[Any, Any]:
    """A fresh user (nothing cached) asks ``POST /toucan/token``, another loads the page."""
    client = app.test_client()
    csrf = client.get(f"/login-test/u{next(_subjects)}").get_data(as_text=True)
    refresh = client.post("/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": csrf})
    other = app.test_client()
    other.get(f"/login-test/u{next(_subjects)}")
    page = other.get("/page")
    return refresh, page


def check(refresh: Any, page: Any, token: str | None) -> None:
    """``token`` served, or (``None``) 502 ``upstream_protocol_error`` and the placeholder."""
    assert refresh.status_code in (200, 502), refresh.get_data(as_text=True)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for text in (refresh.get_data(as_text=True), html):
        assert API_KEY not in text and SECRET not in text
    if token is not None:
        assert refresh.status_code == 200 and refresh.get_json()["token"] == token
        assert "data-toucan-placeholder" not in html
        return
    body = refresh.get_json()
    assert body["error"] == "upstream_protocol_error" and "token" not in body
    assert "Retry-After" not in refresh.headers
    assert 'data-toucan-placeholder="unavailable"' in html


def usable_token(token: Any) -> bool:
    """The rule written out: a visible-ASCII string, at most 16 KiB."""
    return isinstance(token, str) and 0 < len(token) <= 16 * 1024 and all("!" <= c <= "~" for c in token)


def api_lifetime(lifetime: Any) -> int | None:
    """``expiresIn``: a finite number of seconds, or a duration text (the parser's own rule)."""
    if isinstance(lifetime, bool):
        return None
    if isinstance(lifetime, int) or (isinstance(lifetime, float) and math.isfinite(lifetime)):
        return int(lifetime)
    if isinstance(lifetime, str):
        try:
            return parse_expires_in(lifetime)
        except ValueError:
            return None
    return None


def expected_api(token: Any, lifetime: Any) -> str | None:
    seconds = api_lifetime(lifetime)
    good = usable_token(token) and seconds is not None and 0 < seconds <= MAX_UPSTREAM_LIFETIME
    return token if good else None


def expected_exchange(token: Any, lifetime: Any) -> str | None:
    ok_type = isinstance(lifetime, int) and not isinstance(lifetime, bool)
    good = usable_token(token) and ok_type and 0 < lifetime <= MAX_UPSTREAM_LIFETIME
    return token if good else None


@pytest.mark.parametrize("lifetime", ["soon", 1e999, [300], float("nan"), True, -5, None, 10**400, {}])
def test_exchange_bad_expires_in_is_a_protocol_error(upstream, lifetime):
    """The attack run's 500s: Authlib's ``OAuth2Token.from_dict`` raised on these."""
    upstream.set({"access_token": "opaque-ok", "token_type": "Bearer", "expires_in": lifetime})
    app, _ = exchange_host(upstream)
    check(*run_both(app), None)


@pytest.mark.parametrize("lifetime", ["soon", 1e999, -1e999, [300], float("nan"), True, -5, None, 10**400])
def test_api_bad_expires_in_is_a_protocol_error(upstream, lifetime):
    upstream.set({"token": "opaque-ok", "expiresIn": lifetime})
    app, _ = api_host(upstream)
    check(*run_both(app), None)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 30_000,  # deeper than the parser recurses, under the 64 KiB body cap
        b"{not json",
        b'"just a string"',
        b"[300]",
        b"null",
        b'{"token": 5}',
        b'{"token": "\\ud800", "access_token": "\\ud800", "expiresIn": 60, "expires_in": 60}',
    ],
)
def test_unreadable_bodies_are_protocol_errors(upstream, body):
    """A body nested past the parser's recursion limit raised ``RecursionError``."""
    upstream.set_raw(body)
    for app, _ in (api_host(upstream), exchange_host(upstream)):
        check(*run_both(app), None)


def test_parsers_raise_the_protocol_error(upstream):
    """The core call (no Flask view) raises the one exception type, a kind of UpstreamError."""
    upstream.set({"token": "opaque-ok", "expiresIn": 1e999})
    app, toucan = api_host(upstream)
    with app.test_request_context():
        user = toucan.login_user({"sub": "alice", "iss": "https://idp", "org": "acme"})
        with pytest.raises(UpstreamProtocolError) as info:
            toucan.issue_token(user)
    assert isinstance(info.value, UpstreamError) and info.value.status_code == 502


@FUZZ
@given(token=TOKENS, lifetime=LIFETIMES, extra=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=2))
@example(token="opaque-ok", lifetime=3600, extra={})
@example(token="opaque-ok", lifetime="soon", extra={})
@example(token=["opaque-ok"], lifetime=3600, extra={})
def test_fuzz_token_api_answer(upstream, token, lifetime, extra):
    upstream.set({**extra, "token": token, "expiresIn": lifetime})
    app, _ = api_host(upstream)
    check(*run_both(app), expected_api(token, lifetime))


@FUZZ
@given(token=TOKENS, lifetime=LIFETIMES, extra=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=2))
@example(token="opaque-ok", lifetime=600, extra={})
@example(token="opaque-ok", lifetime=1e999, extra={})
@example(token="opaque-ok", lifetime=[300], extra={})
def test_fuzz_exchange_answer(upstream, token, lifetime, extra):
    extra.pop("error", None)  # an ``error`` member is the refusal path, tested elsewhere
    upstream.set({**extra, "access_token": token, "token_type": "Bearer", "expires_in": lifetime})
    app, _ = exchange_host(upstream)
    check(*run_both(app), expected_exchange(token, lifetime))
