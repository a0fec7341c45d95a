"""A permanent refusal from Toucan (:class:`UpstreamRejected`) is not an outage.

Pages render the placeholder with reason ``misconfigured``; the refresh
endpoint answers 502 JSON with ``upstream_code`` and no ``Retry-After``; the
log names Toucan's code, never its message; the refresh script stops for good
(``toucan:refresh-failed`` with ``permanent: true``) instead of backing off
forever.

The kit side is tested with a minter that raises :class:`UpstreamRejected`,
so it does not depend on how the transport parses Toucan's error envelope; a
fake Toucan answering 403 ``NO_ACTIVE_SUBSCRIPTION`` checks the api-mode path
end to end through the real transport (one upstream call, no retry).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import pytest
from flask import Flask, request

from flask_toucan.exceptions import UpstreamError, UpstreamRejected
from flask_toucan.minting import MintRequest
from flask_toucan.test_client import ToucanTestClient

from .helpers import API_KEY, make_host
from .test_browser import TTL, Watch, events, open_page, wait_until
from .test_escaping import Elements
from .test_refresh_endpoint import client_for

CODE = "NO_ACTIVE_SUBSCRIPTION"
#: Toucan's free text: never to reach a page, a refresh body or our log.
TOUCAN_MESSAGE = "Workspace acme-7731 has no active subscription; contact billing"
PAGE = '{% from "toucan/components.html" import tc_dashboard %}{{ tc_dashboard("sales-overview") }}'


class SwitchMinter:
    """Delegates to the real minter until ``reject`` is set, then raises UpstreamRejected."""

    def __init__(self, inner: Any, *, reject: bool = False, code: str | None = CODE) -> None:
        self.inner = inner
        self.reject = reject
        self.code = code
        self.calls = 0
        self.rejected = 0
        self.lock = threading.Lock()

    def mint(self, req: MintRequest) -> Any:
        with self.lock:
            self.calls += 1
            if self.reject:
                self.rejected += 1
                raise UpstreamRejected(
                    "Toucan token API rejected the request (HTTP 403)", upstream_code=self.code, status=403
                )
        return self.inner.mint(req)


def install(app: Flask, **kw: Any) -> SwitchMinter:
    service = app.extensions["toucan"].service
    switch = SwitchMinter(service.minter, **kw)
    service.minter = switch
    return switch


def render_page(app: Flask) -> str:
    client = client_for(app)
    resp = client.get("/kit-page")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def with_page(app: Flask) -> Flask:
    from flask import render_template_string

    app.add_url_rule("/kit-page", "kit_page", lambda: render_template_string(PAGE))
    return app


def test_page_shows_the_misconfigured_placeholder_and_logs_the_code(host, caplog):
    app, _ = host()
    install(with_page(app), reject=True)
    with caplog.at_level(logging.WARNING, logger="flask_toucan"):
        html = render_page(app)
    tags = Elements(html).tags
    assert [t for t, _ in tags] == ["div"]
    assert tags[0][1]["data-toucan-placeholder"] == "misconfigured"
    assert "not set up correctly" in html and "auth-token" not in html
    assert CODE in caplog.text and "HTTP 403" in caplog.text
    assert TOUCAN_MESSAGE not in caplog.text + html


def test_transient_upstream_error_stays_unavailable(host, monkeypatch):
    app, _ = host()
    with_page(app)

    def down(req: Any) -> Any:
        raise UpstreamError("Toucan token API answered HTTP 503")

    monkeypatch.setattr(app.extensions["toucan"].service.minter, "mint", down)
    html = render_page(app)
    assert Elements(html).tags[0][1]["data-toucan-placeholder"] == "unavailable"


def test_refresh_answers_502_with_the_code_and_no_retry_after(host, caplog):
    app, _ = host()
    install(app, reject=True)
    client = client_for(app)
    with caplog.at_level(logging.WARNING, logger="flask_toucan"):
        resp = client.post(
            "/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": client.csrf_token}
        )
    assert resp.status_code == 502
    body = resp.get_json()
    assert body["error"] == "upstream_rejected" and body["upstream_code"] == CODE
    assert "retry_after" not in body and "Retry-After" not in resp.headers
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Referrer-Policy"] == "no-referrer"
    assert CODE in caplog.text and TOUCAN_MESSAGE not in caplog.text


@pytest.mark.parametrize("code", ["X\nFAKE LOG LINE", "<script>", "a" * 200, None])
def test_an_odd_upstream_code_is_neither_logged_nor_echoed_raw(host, caplog, code):
    app, _ = host()
    install(with_page(app), reject=True, code=code)
    client = client_for(app)
    with caplog.at_level(logging.WARNING, logger="flask_toucan"):
        resp = client.post("/toucan/token", json={}, headers={"X-Toucan-CSRF": client.csrf_token})
        html = client.get("/kit-page").get_data(as_text=True)
    assert resp.status_code == 502 and resp.get_json().get("upstream_code") in (None, "?")
    assert "misconfigured" in html
    if code is not None:
        assert code not in caplog.text
    assert "FAKE LOG LINE" not in caplog.text


# ------------------------------------------------------------ fake Toucan (api mode)
def fake_toucan() -> Flask:
    """Toucan as observed when the subscription lapsed: 403 in its {code, message} envelope."""
    app = Flask("fake-toucan")
    app.config["calls"] = 0

    @app.post("/<path:path>")
    def any_post(path: str) -> Any:
        app.config["calls"] += 1
        assert request.headers.get("x-api-key") == API_KEY
        return {"code": CODE, "message": TOUCAN_MESSAGE}, 403

    return app


class Upstream:
    def __init__(self, live_server: Any) -> None:
        self.app = fake_toucan()
        self.url = live_server(self.app).url

    @property
    def calls(self) -> int:
        return int(self.app.config["calls"])


def api_host(upstream: Upstream) -> Flask:
    class Fake:
        url = upstream.url
        api_key = API_KEY

    # Retries left at their default: a 403 must not be retried whatever the setting.
    app, _ = make_host(Fake(), TOUCAN_HTTP_RETRIES=2)
    app.test_client_class = ToucanTestClient
    return with_page(app)


def test_a_403_from_toucan_is_one_upstream_call_and_never_echoed(live_server, caplog):
    upstream = Upstream(live_server)
    app = api_host(upstream)
    client = client_for(app)
    with caplog.at_level(logging.INFO, logger="flask_toucan"):
        resp = client.post(
            "/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": client.csrf_token}
        )
    assert upstream.calls == 1  # not retried
    assert resp.status_code == 502 and resp.is_json
    text = resp.get_data(as_text=True)
    assert TOUCAN_MESSAGE not in text + caplog.text and API_KEY not in text + caplog.text


def test_a_403_from_toucan_is_a_permanent_502_and_misconfigured(live_server):
    upstream = Upstream(live_server)
    app = api_host(upstream)
    client = client_for(app)
    resp = client.post(
        "/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": client.csrf_token}
    )
    assert resp.status_code == 502 and "Retry-After" not in resp.headers
    assert resp.get_json()["upstream_code"] == CODE
    assert upstream.calls == 1
    html = client.get("/kit-page").get_data(as_text=True)
    assert Elements(html).tags[0][1]["data-toucan-placeholder"] == "misconfigured"
    assert upstream.calls == 2  # one per attempt: the page's render is its own request, again once


# ----------------------------------------------------------------------- browser
@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.slow
def test_refresh_script_stops_after_a_permanent_rejection(
    browser, toucan_sandbox_factory, live_server, artifacts_dir
):
    sandbox = toucan_sandbox_factory(api_key=API_KEY, token_lifetime=TTL)
    app, _ = make_host(sandbox)
    switch = install(app)
    hits = {"posts": 0}

    @app.before_request
    def count() -> None:
        if request.method == "POST" and request.path == "/toucan/token":
            hits["posts"] += 1

    url = live_server(app).url
    context = browser.new_context()
    Watch(context, url, sandbox.url)
    try:
        page = open_page(context, url, "alice", "acme")
        # A first good refresh: the loop works; then Toucan starts refusing for good.
        wait_until(page, "window.__ev.some(e => e.type === 'toucan:token-refreshed')", 3 * TTL)
        switch.reject = True
        permanent = "window.__ev.some(e => e.type === 'toucan:refresh-failed' && e.detail.permanent === true)"
        wait_until(page, permanent, 4 * TTL)
        posts = hits["posts"]
        failed_at = events(page, "toucan:refresh-failed")[0]["t"]
        # Three token lifetimes on the page's own clock: at least three refresh periods.
        wait_until(page, f"performance.now() > {failed_at} + {3 * TTL * 1000}", 4 * TTL)
        assert hits["posts"] == posts  # no further request: no re-arm, no backoff loop
        assert switch.rejected == 1
        failures = events(page, "toucan:refresh-failed")
        live = [e for e in failures if not e["detail"].get("at_expiry")]
        assert len(live) == 1, failures
        detail = live[0]["detail"]
        assert detail["permanent"] is True and detail["status"] == 502
        assert detail["upstream_code"] == CODE and detail["retry_in"] is None
        expiry = [e for e in failures if e["detail"].get("at_expiry")]
        assert len(expiry) == 1 and expiry[0]["detail"]["permanent"] is True  # told once, when it ran out
        page.screenshot(path=os.path.join(artifacts_dir, "kit-upstream-rejected.png"), full_page=True)
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.slow
def test_transient_failures_are_marked_not_permanent(browser, toucan_sandbox_factory, live_server):
    sandbox = toucan_sandbox_factory(api_key=API_KEY, token_lifetime=TTL)
    app, _ = make_host(sandbox)
    url = live_server(app).url
    context = browser.new_context()
    Watch(context, url, sandbox.url)
    try:
        page = open_page(context, url, "alice", "acme")
        sandbox.set_faults(fail_next=1, retry_after=1)
        wait_until(page, "window.__ev.some(e => e.type === 'toucan:refresh-failed')", 4 * TTL)
        detail = events(page, "toucan:refresh-failed")[0]["detail"]
        assert detail["permanent"] is False and detail["status"] == 503
        wait_until(page, "window.__ev.some(e => e.type === 'toucan:token-refreshed')", 4 * TTL)  # retried
    finally:
        context.close()
