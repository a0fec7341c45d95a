"""``tc_result_renderer`` in headless Chromium: ``element.payload`` is the envelope's visualization.

The page runs under a strict CSP (scripts by nonce, or by the payload
script's hash): the payload script sets ``payload`` from the JSON child once
the sandbox's ``<tc-result-renderer>`` is defined, the JSON child stays (the
component still draws from it), and a value the page set itself is kept.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from flask import Flask, g, render_template_string, request

from flask_toucan.result_renderer import PAYLOAD_SCRIPT_HASH
from tests import waiting

from .helpers import make_app

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

ONE = {"type": "bar", "title": "</script><b>x</b>", "columns": ["region", "amount"], "rows": [["emea", 5]]}
TWO = {"type": "kpi", "title": "Total", "columns": ["Sales"], "rows": [[7]]}
ENVELOPE = {"schema": "toucan-mcp-v1", "answer": "a", "threadId": "t", "visualizations": [ONE]}
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>r</title>
<script type="module" src="{{ base }}/embed/embed.js" nonce="{{ g.nonce }}"></script></head><body>
{% from "toucan/components.html" import tc_result_renderer %}
{{ tc_result_renderer(envelope, id="one") }}
{{ tc_result_renderer(both, id="both") }}
</body></html>"""
RECORDER = """window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));"""


def host(sandbox_url: str) -> Flask:
    app, toucan = make_app(sandbox_url, "key", TOUCAN_ASSISTANT_ROUTE=False)
    toucan.csp_nonce_loader(lambda: g.nonce if request.args.get("by") != "hash" else None)

    @app.before_request
    def nonce() -> None:
        g.nonce = secrets.token_urlsafe(16)

    @app.after_request
    def csp(resp: Any) -> Any:
        allowed = PAYLOAD_SCRIPT_HASH if request.args.get("by") == "hash" else f"'nonce-{g.nonce}'"
        resp.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{g.nonce}' {allowed} {sandbox_url}; base-uri 'none'"
        )
        return resp

    app.get("/")(lambda: render_template_string(PAGE, base=sandbox_url, envelope=ENVELOPE, both=[ONE, TWO]))
    return app


@pytest.mark.parametrize("by", ["nonce", "hash"])
def test_payload_is_the_envelopes_visualization(browser, toucan_sandbox, live_server, by):
    url = live_server(host(toucan_sandbox.url)).url
    context = browser.new_context()
    context.add_init_script(RECORDER)
    try:
        page = context.new_page()
        page.goto(f"{url}/?by={by}")
        page.wait_for_selector("#one[data-state='ready']", timeout=10_000)
        set_ = "document.querySelector('#both').payload !== undefined"
        waiting.wait_until(lambda: page.evaluate(set_), 10, interval=0.05, what=set_)
        assert page.evaluate("document.querySelector('#one').payload") == ONE
        assert page.evaluate("document.querySelector('#both').payload") == [ONE, TWO]
        # The JSON child is still there: what the component drew from.
        assert page.locator("#one script[type='application/json']").count() == 1
        assert page.get_attribute("#both", "data-visualization-count") == "2"
        assert page.evaluate("window.__csp") == []
    finally:
        context.close()


def test_a_payload_the_page_set_is_kept(browser, live_server):
    """Before the component is defined, the script waits; a value the page set meanwhile wins."""
    app = host("http://127.0.0.1:9")  # no component script: tc-result-renderer is never defined here
    url = live_server(app).url
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{url}/?by=nonce")
        assert page.evaluate("document.querySelector('#one').payload") is None  # undefined: not defined yet
        page.evaluate("document.querySelector('#one').payload = 'mine'")
        page.evaluate("customElements.define('tc-result-renderer', class extends HTMLElement {})")
        set_ = "document.querySelector('#both').payload !== undefined"
        waiting.wait_until(lambda: page.evaluate(set_), 10, interval=0.05, what=set_)
        assert page.evaluate("document.querySelector('#one').payload") == "mine"
        assert page.evaluate("document.querySelector('#both').payload") == [ONE, TWO]
    finally:
        context.close()
