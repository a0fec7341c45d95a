"""Hypothesis fuzzing of ``POST /toucan/token``: headers and body, with and without a session.

Whatever arrives (a malformed ``Origin`` such as ``http://[``, a non-numeric or
negative ``Content-Length``, binary in the CSRF header, any body), the answer
is JSON with a 2xx/4xx status, the refresh endpoint's security headers, and no
traceback or secret. ``TESTING`` is on, so an exception in a view fails the
example instead of hiding behind a 500 page.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from flask_toucan.test_client import ToucanTestClient

from .helpers import API_KEY, SECRET_KEY

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: Header text as a server could deliver it: latin-1, no CR/LF (the server would split there).
HEADER_TEXT = st.text(st.characters(max_codepoint=255, blacklist_characters="\r\n"), max_size=60)
URL_BITS = st.text(alphabet="[]:@/?#.%\\ lLocahst0189:[]", max_size=14)
ORIGINS = st.one_of(
    st.sampled_from(
        [
            "http://[",
            "http://[::1",
            "http://a]b",
            "http://localhost",
            "https://localhost",
            "http://localhost:99999",
            "http://localhost:x",
            "http://user@localhost",
            "null",
            "",
            "https://evil.example",
            "http://LOCALHOST",
            "http://[::1]:80",
            "file://",
            "http://localhost\x00",
        ]
    ),
    st.builds(
        lambda scheme, rest: scheme + rest, st.sampled_from(["http://", "https://", "", "//"]), URL_BITS
    ),
    HEADER_TEXT,
)
FETCH_VALUES = st.one_of(
    st.sampled_from(
        [
            "same-origin",
            "same-site",
            "cross-site",
            "none",
            "cors",
            "navigate",
            "no-cors",
            "empty",
            "document",
            "",
        ]
    ),
    HEADER_TEXT,
)
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "text/plain",
            "multipart/form-data; boundary=",
            'application/json; charset="',
            ";;;",
            "",
        ]
    ),
    HEADER_TEXT,
)
LENGTHS = st.one_of(
    st.sampled_from(
        ["-1", "1e3", "0x10", "abc", "", " 5", "99999999999999999999999", "1024", "1025", "+3", "٣"]
    ),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    HEADER_TEXT,
)
BODIES = st.one_of(
    st.just(b""),
    st.just(b'{"kind": "dashboard"}'),
    st.sampled_from([b'{"kind": NaN}', b'{"kind": "chart", "x": 1}', b"[]", b"null", b'"x"', b"[" * 5000]),
    st.builds(
        lambda d: json.dumps(d).encode(),
        st.dictionaries(st.sampled_from(["kind", "k", ""]), st.one_of(st.text(max_size=12), st.integers())),
    ),
    st.binary(max_size=1500),
)


def headers_strategy() -> Any:
    """A random subset of the headers the endpoint reads, each with a hostile or plausible value."""
    return st.fixed_dictionaries(
        {},
        optional={
            "Origin": ORIGINS,
            "Referer": ORIGINS,
            "Sec-Fetch-Site": FETCH_VALUES,
            "Sec-Fetch-Mode": FETCH_VALUES,
            "Sec-Fetch-Dest": FETCH_VALUES,
            "Content-Type": CONTENT_TYPES,
        },
    )


CSRF_VALUES = st.one_of(
    st.just("real"),
    st.just(None),
    HEADER_TEXT,
    st.binary(max_size=600).map(lambda b: b.decode("latin-1").replace("\r", "").replace("\n", "")),
    st.integers(min_value=0, max_value=20_000).map(lambda n: "A" * n),
    st.just("real-tampered"),
)


def check(resp: Any) -> None:
    body = resp.get_data(as_text=True)
    assert resp.status_code in (200, 400, 401, 403, 413), (resp.status_code, body)
    assert resp.is_json, body
    assert "Traceback" not in body and 'File "' not in body
    assert API_KEY not in body and SECRET_KEY not in body
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    if resp.status_code == 200:
        assert set(resp.get_json()) >= {"token", "expires_in", "expires_at"}


def send(
    client: Any,
    csrf_token: str | None,
    headers: dict[str, str],
    csrf: str | None,
    body: bytes,
    length: str | None,
) -> Any:
    headers = dict(headers)
    if csrf == "real":
        csrf = csrf_token
    elif csrf == "real-tampered" and csrf_token:
        csrf = csrf_token[:-2] + ("AA" if not csrf_token.endswith("AA") else "BB")
    if csrf is not None:
        headers["X-Toucan-CSRF"] = csrf
    overrides = {} if length is None else {"CONTENT_LENGTH": length}
    return client.post("/toucan/token", data=body, headers=headers, environ_overrides=overrides)


def fuzz_client(host: Any, *, logged_in: bool) -> ToucanTestClient:
    app, _ = host(TOUCAN_RATE_LIMIT=None)
    app.test_client_class = ToucanTestClient
    user = {"sub": "alice", "iss": "https://idp.test", "org": "acme"} if logged_in else None
    client: ToucanTestClient = app.test_client(user=user)
    return client


@pytest.fixture
def anonymous(host: Any) -> ToucanTestClient:
    return fuzz_client(host, logged_in=False)


@pytest.fixture
def alice(host: Any) -> ToucanTestClient:
    return fuzz_client(host, logged_in=True)


ARGS = {
    "headers": headers_strategy(),
    "csrf": CSRF_VALUES,
    "body": BODIES,
    "length": st.one_of(st.none(), LENGTHS),
}


@FUZZ
@given(**ARGS)
@example(headers={"Origin": "http://["}, csrf=None, body=b"", length=None)
def test_fuzz_refresh_without_a_session(anonymous, headers, csrf, body, length):
    resp = send(anonymous, None, headers, csrf, body, length)
    event(f"status {resp.status_code}")
    check(resp)


@FUZZ
@given(**ARGS)
@example(headers={"Origin": "http://[::1"}, csrf="real", body=b"", length=None)
@example(headers={"Origin": "http://a]b"}, csrf="real", body=b'{"kind": "dashboard"}', length=None)
@example(headers={"Content-Type": "application/json"}, csrf="real", body=b"{}", length="-1")
def test_fuzz_refresh_with_a_session(alice, headers, csrf, body, length):
    resp = send(alice, alice.csrf_token, headers, csrf, body, length)
    event(f"status {resp.status_code}")
    check(resp)


@FUZZ
@given(
    content_type=st.one_of(st.none(), CONTENT_TYPES),
    body=BODIES,
    length=st.one_of(st.none(), LENGTHS),
    origin=st.sampled_from([None, "http://localhost", "https://localhost"]),
)
def test_fuzz_refresh_body_past_the_csrf_check(alice, content_type, body, length, origin):
    """Same-origin, right CSRF token: what is left to get wrong is the body and how it is described."""
    headers = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    if origin is not None:
        headers["Origin"] = origin
    if content_type is not None:
        headers["Content-Type"] = content_type
    resp = send(alice, alice.csrf_token, headers, "real", body, length)
    event(f"status {resp.status_code}")
    check(resp)


def test_the_fuzz_reaches_success(alice):
    """The harness is not vacuous: a well-formed request through it gets a token."""
    ok = send(
        alice, alice.csrf_token, {"Content-Type": "application/json"}, "real", b'{"kind": "dashboard"}', None
    )
    check(ok)
    assert ok.status_code == 200
