"""Header parsing that cannot crash, and the refresh endpoint's own response headers.

Issue 9 items 4 and 6: a malformed ``Origin`` (``http://[`` gave a 500 with a
traceback), ``Referer``, ``Sec-Fetch-*``, ``Content-Type``, ``Content-Length``
or CSRF header is a 400/403 JSON answer; every refresh answer, success or
error, carries ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Any

import pytest

from flask_toucan.exceptions import UpstreamError
from flask_toucan.guards import host_of
from tests.core.helpers import signed_config

from .test_refresh_endpoint import ALICE, client_for

BAD_ORIGINS = [
    "http://[",
    "http://[::1",
    "http://a]b",
    "http://localhost:99999",
    "http://localhost:x",
    "http://user@localhost",
    "null",
    "",
    "http://localhost\x00",
    "http://l\xe9calhost",
]


def assert_refresh_headers(resp: Any) -> None:
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.is_json


def refresh(
    client: Any,
    *,
    body: Any = b'{"kind": "dashboard"}',
    csrf: str | None = "auto",
    environ: dict[str, str] | None = None,
    **headers: str,
) -> Any:
    headers.setdefault("Content-Type", "application/json")
    if csrf == "auto":
        csrf = client.csrf_token
    if csrf is not None:
        headers["X-Toucan-CSRF"] = csrf
    resp = client.post("/toucan/token", data=body, headers=headers, environ_overrides=environ or {})
    assert_refresh_headers(resp)
    return resp


@pytest.mark.parametrize("origin", BAD_ORIGINS)
@pytest.mark.parametrize("logged_in", [True, False], ids=["session", "no-session"])
def test_malformed_origin_is_a_403_not_a_500(host, origin, logged_in):
    app, _ = host()
    client = client_for(app, ALICE if logged_in else None)
    resp = refresh(client, Origin=origin)
    assert resp.status_code == 403 and resp.get_json()["error"] == "csrf_failed"


@pytest.mark.parametrize("referer", [*BAD_ORIGINS, "https://evil.example/page"])
def test_a_foreign_or_malformed_referer_without_origin_is_refused(host, referer):
    app, _ = host()
    resp = refresh(client_for(app), Referer=referer)
    assert resp.status_code == 403 and resp.get_json()["error"] == "csrf_failed"


def test_same_origin_referer_or_origin_pass(host, toucan_sandbox):
    app, _ = host()
    client = client_for(app)
    assert refresh(client, Referer="http://localhost/page?x=1").status_code == 200
    assert refresh(client, Origin="https://LOCALHOST").status_code == 200  # host only, any case
    assert refresh(client).status_code == 200  # neither header: the CSRF token alone


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-Mode", "no-cors"),
        ("Sec-Fetch-Mode", "\x00\xff"),
        ("Sec-Fetch-Dest", "document"),
        ("Sec-Fetch-Dest", "iframe"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "x" * 5000),
    ],
)
def test_fetch_metadata_of_a_non_fetch_request_is_refused(host, name, value):
    app, _ = host()
    resp = refresh(client_for(app), **{name: value})
    assert resp.status_code == 403 and resp.get_json()["error"] == "csrf_failed"


def test_fetch_metadata_of_the_refresh_script_passes(host, toucan_sandbox):
    app, _ = host()
    headers = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    assert refresh(client_for(app), Origin="http://localhost", **headers).status_code == 200


@pytest.mark.parametrize("length", ["abc", "-1", "+5", "1e3", "0x10", " ", "99999999999999999999999", "2048"])
def test_bad_content_length_is_a_400(host, length):
    app, _ = host()
    resp = refresh(client_for(app), environ={"CONTENT_LENGTH": length})
    assert resp.status_code == 400 and resp.get_json()["error"] == "bad_request"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        ";;",
        "\x00",
    ],
)
def test_a_body_must_be_declared_json(host, content_type):
    app, _ = host()
    resp = refresh(client_for(app), **{"Content-Type": content_type})
    assert resp.status_code == 400 and resp.get_json()["error"] == "bad_request"


def test_nan_in_the_body_is_not_json(host):
    app, _ = host()
    resp = refresh(client_for(app), body=b'{"kind": NaN}')
    assert resp.status_code == 400


@pytest.mark.parametrize(
    "csrf", ["é" * 10, "\x00\x01\xff" * 50, "A" * 100_000, "a.b.c" + "\x7f", "..", "a" * 512]
)
def test_hostile_csrf_header_is_a_403(host, csrf):
    app, _ = host()
    resp = refresh(client_for(app), csrf=csrf)
    assert resp.status_code == 403 and resp.get_json()["error"] == "csrf_failed"


def test_http_errors_from_werkzeug_are_json_on_the_refresh_route(host):
    app, _ = host(MAX_CONTENT_LENGTH=10)
    resp = refresh(client_for(app), body=b'{"kind": "dashboard"}')
    assert resp.status_code in (400, 413) and resp.get_json()["error"] in ("bad_request", "payload_too_large")


def test_every_refresh_answer_carries_the_headers(host, toucan_sandbox):
    app, _toucan = host(TOUCAN_RATE_LIMIT="2/minute")
    client = client_for(app)
    assert refresh(client).status_code == 200
    assert refresh(client, body=b"{").status_code == 400
    assert refresh(client, csrf=None).status_code == 403
    assert refresh(client_for(app, None)).status_code == 401
    assert refresh(client).status_code == 429
    resp = client.get("/toucan/token")
    assert resp.status_code == 405
    assert_refresh_headers(resp)


def test_upstream_failure_answers_carry_the_headers(host, monkeypatch):
    app, _ = host()
    state = app.extensions["toucan"]

    def down(request: Any) -> Any:
        raise UpstreamError("Toucan token API answered HTTP 503")

    monkeypatch.setattr(state.service.minter, "mint", down)
    resp = refresh(client_for(app))
    assert resp.status_code == 503 and resp.get_json()["error"] == "upstream_unavailable"


def test_jwks_stays_cacheable_and_gains_referrer_policy():
    from tests.core.helpers import make_app

    app, _ = make_app(**signed_config())
    resp = app.test_client().get("/toucan/.well-known/jwks.json")
    assert resp.status_code == 200
    assert "max-age" in resp.headers["Cache-Control"]
    assert resp.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("url", [*BAD_ORIGINS, "ftp://localhost", "//localhost", "a" * 5000])
def test_host_of_never_raises(url):
    assert host_of(url) is None


def test_host_of_reads_plain_origins():
    assert host_of("http://localhost") == "localhost"
    assert host_of("https://App.Example:8443/x?y") == "app.example:8443"
    assert host_of("http://[::1]:5000") == "[::1]:5000"


def test_null_origin_passes_only_with_same_origin_fetch_metadata(host, toucan_sandbox):
    app, _ = host()
    client = client_for(app)
    assert refresh(client, Origin="null", **{"Sec-Fetch-Site": "same-origin"}).status_code == 200
    for site in ("cross-site", "same-site", None):
        headers = {"Origin": "null"} | ({"Sec-Fetch-Site": site} if site else {})
        assert refresh(client, **headers).status_code == 403
    assert refresh(client, csrf=None, Origin="null", **{"Sec-Fetch-Site": "same-origin"}).status_code == 403


@pytest.mark.browser
@pytest.mark.integration
def test_refresh_works_under_no_referrer_with_a_real_origin(browser, toucan_sandbox_factory, live_server):
    from flask import request

    from .helpers import API_KEY, make_host
    from .test_browser import TTL, Watch, wait_until

    sandbox = toucan_sandbox_factory(api_key=API_KEY, token_lifetime=TTL)
    app, _ = make_host(sandbox)
    seen: list[tuple[str | None, str | None]] = []

    @app.before_request
    def record() -> None:
        if request.method == "POST" and request.path == "/toucan/token":
            seen.append((request.headers.get("Origin"), request.headers.get("Referer")))

    url = live_server(app).url
    context = browser.new_context()
    Watch(context, url, sandbox.url)
    try:
        page = context.new_page()
        assert page.goto(f"{url}/_login/alice?org=acme").ok
        resp = page.goto(f"{url}/page?poll=0.5")
        assert (
            resp.headers["referrer-policy"] == "no-referrer" and resp.headers["cache-control"] == "no-store"
        )
        page.wait_for_selector("#dash[data-state=ready]", timeout=10_000)
        wait_until(page, "window.__ev.some(e => e.type === 'toucan:token-refreshed')", 3 * TTL)
        assert seen
        # The page's policy would make it "Origin: null"; the script's fetch keeps the real one.
        assert all(origin == url for origin, _ in seen), seen
        assert all(referer in (None, url + "/") for _, referer in seen), seen  # never the page's path
    finally:
        context.close()


def test_an_unexpected_exception_is_a_json_500_without_detail(host, monkeypatch):
    """The last line of defence: still JSON, still the headers, no exception text."""
    app, _ = host()
    app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)

    def boom(request: Any) -> Any:
        raise RuntimeError("internal detail /srv/app/secret.py")

    monkeypatch.setattr(app.extensions["toucan"].service.minter, "mint", boom)
    resp = refresh(client_for(app))
    assert resp.status_code == 500 and resp.get_json() == {
        "error": "internal_error",
        "message": "Internal Server Error",
    }
    assert "RuntimeError" not in resp.get_data(as_text=True)
