"""``<tc-result-renderer>`` in headless Chromium: draws from the JSON child, never as HTML."""

from __future__ import annotations

import pytest
from flask import g, render_template_string

from .helpers import ACME, make_app

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

HOSTILE = '<img src=x id=pwned onerror="window.__pwned=1"></script><script>window.__pwned=2</script><!--'
PAGE = """<!doctype html><html><head>
{% from "toucan/components.html" import toucan_scripts, tc_result_renderer %}{{ toucan_scripts() }}
</head><body>{{ tc_result_renderer(envelope, id="r") }}</body></html>"""


def test_renderer_draws_text_only_under_a_strict_csp(browser, toucan_sandbox, live_server, mcp_endpoint):
    app, toucan = make_app(toucan_sandbox.url, toucan_sandbox.api_key)
    envelope = {
        "answer": "x",
        "threadId": "t",
        "visualizations": [
            {
                "type": "bar",
                "title": HOSTILE,
                "columns": ["Region", "Sales"],
                "rows": [[HOSTILE, 7], ["b", 3]],
            },
            {"type": "kpi", "title": "Total", "columns": ["Sales"], "rows": [[10]]},
        ],
    }

    @app.before_request
    def nonce():
        g.csp_nonce = "n0nce"

    @app.get("/")
    def page():
        toucan.login_user(ACME)
        return render_template_string(PAGE, envelope=envelope)

    @app.after_request
    def csp(resp):
        resp.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'nonce-n0nce' {toucan_sandbox.url}; "
            f"connect-src 'self' {toucan_sandbox.url}"
        )
        return resp

    host = live_server(app)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(host.url + "/")
        page.wait_for_selector("#r[data-state='ready']", timeout=10_000)
        assert page.get_attribute("#r", "data-visualization-count") == "2"
        assert page.locator("#pwned").count() == 0
        assert page.evaluate("window.__pwned === undefined")
        assert page.inner_text("#r figure[data-type='bar'] figcaption") == HOSTILE
        labels = page.eval_on_selector_all("#r svg rect", "rs => rs.map(r => r.dataset.label)")
        assert labels == [HOSTILE, "b"]
        assert page.inner_text("#r .tc-kpi-value") == "10"
    finally:
        context.close()
