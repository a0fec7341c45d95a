"""Classic Toucan 3 embeds in headless Chromium: the kit's ``tc_embed`` against the sandbox.

A host app in the classic profile (signed mode, the sandbox's RFC 7523
exchange) renders one embed of each form, under a strict CSP (scripts by
nonce only, frames from the sandbox only). Each tenant sees its own rows
through the launcher script and through the iframe; with 8 s tokens the
refresh script re-mounts both embeds with each new token, and they keep
drawing the tenant's rows, with a frame on screen at every sample (no blank
swap) and no request ever refused as expired.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

import pytest
from flask import Flask, g, render_template_string, request

from flask_toucan import Toucan
from tests import waiting

from ..core.helpers import rsa_pem
from .helpers import sql
from .test_classic_embeds import exchange_token

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

ISSUER = "https://host.example"
TTL = 8
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>classic</title>
{% from "toucan/components.html" import toucan_scripts, tc_embed %}{{ toucan_scripts() }}</head>
<body><h1>Classic embeds</h1>
{{ tc_embed("sales-overview", id="by-script", view="north",
            variables={"greeting": "a&b=\\"c\\"</script>", "n": [1, 2]}) }}
{{ tc_embed("sales-overview", mode="iframe", id="by-frame", title="Sales overview") }}
</body></html>"""
RECORDER = """
window.__csp = []; window.__refreshed = 0;
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
document.addEventListener("toucan:token-refreshed", () => { window.__refreshed += 1; });
"""
# Per container: the tokens in the URLs of its frames, and how many frames are on screen.
MOUNTS = """(id) => {
  const frames = [...document.querySelectorAll('#' + id + ' iframe')];
  const shown = frames.filter((f) => !f.closest('[data-toucan-embed-next]'));
  return {
    tokens: shown.map((f) => new URL(f.src).searchParams.get('token')),
    visible: shown.filter(
      (f) => f.getBoundingClientRect().height > 0 && getComputedStyle(f).visibility !== 'hidden'
    ).length,
  };
}"""


def classic_host(sandbox: Any) -> Flask:
    app = Flask("classic-embed-host")
    app.config.update(
        SECRET_KEY="classic-embed-secret-key-0123456789abcdef",
        TOUCAN_MODE="signed",
        TOUCAN_SIGNING_KEY=rsa_pem(5),
        TOUCAN_SIGNING_ALGORITHM="RS512",
        TOUCAN_ISSUER=ISSUER,
        TOUCAN_AUDIENCE=sandbox.exchange_url,
        TOUCAN_BASE_URL=sandbox.url,
        TOUCAN_EXCHANGE_URL=sandbox.exchange_url,
        TOUCAN_EXCHANGE_CLIENT_SECRET=sandbox.exchange_client_secret,
        TOUCAN_HTTP_RETRIES=0,
        TOUCAN_RATE_LIMIT="1000/minute",
    )
    toucan = Toucan()
    toucan.attribute("organization_id")(lambda user: user["org"])
    toucan.privileges(lambda user: {"sandbox": ["view"]})
    toucan.csp_nonce_loader(lambda: g.get("nonce"))
    toucan.init_app(app)

    @app.before_request
    def make_nonce() -> None:
        g.nonce = secrets.token_urlsafe(16)

    @app.after_request
    def csp(resp: Any) -> Any:
        resp.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{g.nonce}'; frame-src {sandbox.url}; "
            "connect-src 'self'; base-uri 'none'"
        )
        resp.headers["Referrer-Policy"] = "no-referrer"
        return resp

    @app.get("/_login/<sub>")
    def login(sub: str) -> str:
        toucan.login_user({"sub": sub, "iss": "https://idp.test", "org": request.args["org"]})
        return "ok"

    app.get("/page")(lambda: render_template_string(PAGE))
    return app


def expected(data_file: str, org: str) -> dict[str, int]:
    rows = sql(
        data_file,
        "SELECT month || '|' || product, SUM(amount) FROM sales WHERE organization_id = ? "
        "GROUP BY month, product",
        (org,),
    )
    return dict(rows)


def frame_rows(page: Any, container: str) -> tuple[str | None, dict[str, int]]:
    """The tenant and rows the container's (single) frame drew, once it is ready."""
    frame = page.frame_locator(f"#{container} iframe")
    root = frame.locator("main#tc-embed[data-state=ready]")
    root.wait_for(timeout=10_000)
    pairs = frame.locator("tr[data-row-id]").evaluate_all(
        "trs => trs.map(tr => [tr.dataset.rowId, tr.querySelector('td[data-col=amount]').textContent])"
    )
    return root.get_attribute("data-tenant"), {rid: int(amount) for rid, amount in pairs}


@pytest.fixture
def env(toucan_sandbox_factory: Any, live_server: Any) -> tuple[Any, str]:
    holder: dict[str, Any] = {}
    host = live_server(lambda environ, start: holder["app"](environ, start))
    sandbox = toucan_sandbox_factory(
        host_jwks_url=f"{host.url}/toucan/.well-known/jwks.json", issuer=ISSUER, token_lifetime=TTL
    )
    holder["app"] = classic_host(sandbox)
    return sandbox, host.url


def open_tenant(browser: Any, url: str, sub: str, org: str, refused: list[str]) -> tuple[Any, Any]:
    context = browser.new_context()
    context.add_init_script(RECORDER)
    context.on("response", lambda r: refused.append(r.url) if r.status == 401 else None)
    page = context.new_page()
    assert page.goto(f"{url}/_login/{sub}?org={org}").ok
    page.goto(f"{url}/page")
    return context, page


def test_each_tenant_sees_its_rows_by_script_and_by_iframe(browser, env, artifacts_dir):
    sandbox, url = env
    refused: list[str] = []
    for sub, org in (("alice", "acme"), ("bob", "globex")):
        context, page = open_tenant(browser, url, sub, org, refused)
        try:
            rows = expected(sandbox.data_file, org)
            assert frame_rows(page, "by-script") == (org, rows)
            assert frame_rows(page, "by-frame") == (org, rows)
            # The variables went through the launcher URL intact (JSON under "extra").
            shown = page.frame_locator("#by-script iframe").locator("pre.tc-variables").text_content()
            assert json.loads(shown or "") == {"greeting": 'a&b="c"</script>', "n": [1, 2]}
            main = page.frame_locator("#by-script iframe").locator("main")
            assert main.get_attribute("data-view") == "north"
            assert page.evaluate("window.__csp") == []
            page.screenshot(path=os.path.join(artifacts_dir, f"classic-embeds-{org}.png"), full_page=True)
        finally:
            context.close()
    assert refused == []
    assert expected(sandbox.data_file, "acme") != expected(sandbox.data_file, "globex")


def test_a_refresh_remounts_both_forms_without_a_blank(browser, env, artifacts_dir):
    sandbox, url = env
    refused: list[str] = []
    context, page = open_tenant(browser, url, "carol", "initech", refused)
    try:
        rows = expected(sandbox.data_file, "initech")
        assert frame_rows(page, "by-script") == ("initech", rows)
        seen: dict[str, set[str]] = {"by-script": set(), "by-frame": set()}

        def remounted_twice() -> bool:
            for container, tokens in seen.items():
                mounts = page.evaluate(MOUNTS, container)
                assert mounts["visible"] >= 1, (container, mounts)  # a frame on screen at every sample
                tokens.update(mounts["tokens"])
            return all(len(tokens) >= 3 for tokens in seen.values())

        # Until both embeds were re-mounted twice (two refreshes, ~2 x 6.4 s); the timeout is a ceiling.
        waiting.wait_until(remounted_twice, timeout=12 * TTL, interval=0.2, what="two re-mounts")
        waiting.wait_until(
            lambda: all(len(page.evaluate(MOUNTS, c)["tokens"]) == 1 for c in seen),
            timeout=15,
            interval=0.1,
            what="the swaps to settle",
        )
        for container in seen:
            assert frame_rows(page, container) == ("initech", rows)
        assert page.evaluate("window.__refreshed") >= 2
        assert page.evaluate("window.__csp") == []
        assert refused == []  # no launcher, frame or data call ever saw an expired token
        assert sandbox.stats.get("embeds_denied", 0) == 0
        page.screenshot(path=os.path.join(artifacts_dir, "classic-embeds-refreshed.png"), full_page=True)
    finally:
        context.close()


def test_an_expired_or_foreign_token_shows_a_clear_error(browser, toucan_sandbox_factory, live_server):
    sandbox = toucan_sandbox_factory()
    expired = exchange_token(sandbox.state, expires_in=-1)
    foreign = exchange_token(toucan_sandbox_factory().state)
    app = Flask("raw-host")
    markup = (
        '<div id="s"><script async src="{base}/scripts/embedLauncher.js?id=sales-overview&amp;token={t1}">'
        '</script></div><iframe id="f" src="{base}/embed.html?id=sales-overview&amp;token={t2}"></iframe>'
    )
    app.get("/")(lambda: markup.format(base=sandbox.url, t1=foreign, t2=expired))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(live_server(app).url + "/")
        box = page.locator("#s p.tc-embed-error[data-error=invalid_token]")
        box.wait_for(timeout=10_000)
        assert "not issued by this Toucan instance" in (box.text_content() or "")
        frame = page.frame_locator("#f").locator("main[data-state=error][data-error=token_expired]")
        frame.wait_for(timeout=10_000)
        assert "expired" in (frame.text_content() or "")
        assert page.locator("#s iframe").count() == 0  # nothing mounted for a refused token
    finally:
        context.close()
