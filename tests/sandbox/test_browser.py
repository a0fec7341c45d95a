"""embed.js in headless Chromium: right tenant's rows, token swap, expiry event, assistant."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from flask import Flask, request
from markupsafe import Markup, escape

from .helpers import mint, sql

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>host page</title>
<script type="module" src="{base}/embed/embed.js"></script></head>
<body><h1>Host app</h1>{component}</body></html>"""


def host_app(sandbox: Any) -> Flask:
    """The host app of the test: mints a token server-side and renders the component."""
    app = Flask("browser-host")

    @app.get("/")
    def page() -> Any:
        org = request.args.get("org", "acme")
        region = request.args.get("region")
        attrs = {"organization_id": org, **({"region": region} if region else {})}
        perms = {"dashboard": {"can_view": True}}
        if request.args.get("ai"):
            perms["ai"] = {"can_query": True}
        token = mint(sandbox, attrs, perms)
        kind = request.args.get("kind", "dashboard")
        if kind == "assistant":
            component = Markup('<tc-ai-assistant auth-token="{}" server-url="{}"></tc-ai-assistant>').format(
                token, sandbox.url + "/api"
            )
        else:
            component = Markup(
                '<tc-dashboard dashboard-id="sales-overview" auth-token="{}" server-url="{}" '
                'data-theme="dark" '
                'refresh-interval="{}"></tc-dashboard>'
            ).format(token, sandbox.url + "/api", request.args.get("refresh", ""))
        html = PAGE.format(base=escape(sandbox.url), component=component)
        # Strict CSP: proves embed.js needs no inline script or style. (A page that
        # sizes the element with a style="" attribute needs 'unsafe-hashes' or a class.)
        csp = (
            f"default-src 'none'; script-src {sandbox.url}; connect-src {sandbox.url}; "
            "style-src 'self'; img-src 'none'; base-uri 'none'"
        )
        return html, 200, {"Content-Security-Policy": csp, "Content-Type": "text/html; charset=utf-8"}

    return app


def expected_rows(data_file: str, org: str) -> dict[str, int]:
    rows = sql(
        data_file,
        "SELECT month || '|' || product, SUM(amount) FROM sales "
        "WHERE organization_id = ? GROUP BY month, product",
        (org,),
    )
    return dict(rows)


def rendered_rows(page: Any) -> dict[str, int]:
    pairs = page.eval_on_selector_all(
        "tc-dashboard tr[data-row-id]",
        "trs => trs.map(tr => [tr.dataset.rowId, tr.querySelector('td[data-col=amount]').textContent])",
    )
    return {rid: int(amount.replace(",", "")) for rid, amount in pairs}


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context()
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def test_dashboard_renders_tenant_rows_and_swaps_token(toucan_sandbox, live_server, page, artifacts_dir):
    host = live_server(host_app(toucan_sandbox))
    page.goto(f"{host.url}/?org=acme")
    page.wait_for_selector("tc-dashboard[data-state=ready]", timeout=10_000)
    dash = page.locator("tc-dashboard")
    assert dash.get_attribute("data-tenant") == "acme"
    assert page.text_content("tc-dashboard .tc-tenant") == "Acme Corporation"
    acme = expected_rows(toucan_sandbox.data_file, "acme")
    assert rendered_rows(page) == acme
    assert dash.get_attribute("data-row-count") == str(len(acme))
    assert page.locator("tc-dashboard svg.tc-chart rect").count() == 12  # one bar per month
    page.screenshot(path=os.path.join(artifacts_dir, "sandbox-dashboard-acme.png"), full_page=True)

    # The host's refresh script sets a new token: the component refetches, no reload.
    page.evaluate("() => { window.__loads = performance.getEntriesByType('navigation').length; }")
    globex_token = mint(toucan_sandbox, {"organization_id": "globex"}, {"dashboard": {"can_view": True}})
    dash.evaluate("(el, t) => el.setAttribute('auth-token', t)", globex_token)
    page.wait_for_selector("tc-dashboard[data-tenant=globex][data-state=ready]", timeout=10_000)
    globex = expected_rows(toucan_sandbox.data_file, "globex")
    assert rendered_rows(page) == globex
    assert set(globex.values()) != set(acme.values())
    assert page.evaluate("() => window.__loads") == 1
    page.screenshot(path=os.path.join(artifacts_dir, "sandbox-dashboard-globex.png"), full_page=True)
    assert page.errors == []


def test_token_expired_event_and_no_retry_loop(toucan_sandbox_factory, live_server, page, artifacts_dir):
    # 4 s, not 2: the page must load and render once before the token dies, which a
    # loaded CI box may not do in 2 s; the expiry itself is awaited as a condition.
    sandbox = toucan_sandbox_factory(token_lifetime=4)
    host = live_server(host_app(sandbox))
    page.goto(f"{host.url}/?org=initech&region=apac&refresh=0.5")
    page.evaluate(
        """() => { window.__events = [];
        for (const name of ['toucan:token-expired', 'toucan:error', 'toucan:ready'])
          document.addEventListener(name, e => window.__events.push({type: e.type, detail: e.detail})); }"""
    )
    page.wait_for_selector("tc-dashboard[data-state=ready]", timeout=10_000)
    assert page.get_attribute("tc-dashboard", "data-tenant") == "initech"
    page.wait_for_selector("tc-dashboard[data-state=expired]", timeout=15_000)
    events = page.evaluate("() => window.__events")
    expired = [e for e in events if e["type"] == "toucan:token-expired"]
    assert len(expired) == 1
    assert expired[0]["detail"]["error"] == "token_expired" and expired[0]["detail"]["status"] == 401
    assert not [e for e in events if e["type"] == "toucan:error"]
    page.screenshot(path=os.path.join(artifacts_dir, "sandbox-dashboard-expired.png"), full_page=True)

    # No retry loop: with the refresh interval still running, the dead token is not resent.
    before = sandbox.stats["data_requests"]
    # Sleeping IS the check: an absence (no request with the dead token) is only seen
    # over time; 1.6 s spans three 0.5 s refresh ticks. A slow machine can only
    # weaken the check, never fail it falsely.
    time.sleep(1.6)
    assert sandbox.stats["data_requests"] == before

    fresh = mint(sandbox, {"organization_id": "initech", "region": "apac"}, {"dashboard": {"can_view": True}})
    page.eval_on_selector("tc-dashboard", "(el, t) => el.setAttribute('auth-token', t)", fresh)
    page.wait_for_selector("tc-dashboard[data-state=ready]", timeout=5_000)
    # Chromium logs the one 401 itself; nothing else may have gone wrong.
    assert [e for e in page.errors if "status of 401" not in e] == []
    assert len(page.errors) == 1


def test_assistant_refused_without_ai_and_answers_with_it(toucan_sandbox, live_server, page):
    host = live_server(host_app(toucan_sandbox))
    page.goto(f"{host.url}/?org=acme&kind=assistant")
    page.wait_for_selector("tc-ai-assistant[data-state=forbidden]", timeout=10_000)
    assert "Not allowed" in page.text_content("tc-ai-assistant")

    page.goto(f"{host.url}/?org=acme&region=emea&kind=assistant&ai=1")
    page.wait_for_selector("tc-ai-assistant[data-state=ready]", timeout=10_000)
    page.fill("tc-ai-assistant input[name=question]", "What are my total sales?")
    page.press("tc-ai-assistant input[name=question]", "Enter")
    page.wait_for_selector("tc-ai-assistant li[data-kind=total]", timeout=5_000)
    amount = sql(
        toucan_sandbox.data_file,
        "SELECT SUM(amount) FROM sales WHERE organization_id = 'acme' AND region = 'emea'",
    )[0][0]
    assert f"{amount:,}" in page.text_content("tc-ai-assistant li[data-kind=total] .tc-answer")
    assert [e for e in page.errors if "status of 403" not in e] == []  # the expected refusal only
