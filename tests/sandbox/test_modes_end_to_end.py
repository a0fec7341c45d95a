"""flask-toucan + sandbox in a real browser, in every token mode.

The host app logs a user in, renders ``tc_dashboard`` through the kit's macros,
and the sandbox's component shows that tenant's rows only: api mode (Toucan's
token API), the classic profile (signed assertion exchanged at the sandbox's
Authlib-based realm token endpoint with client authentication), and
signed-direct (the host JWT straight to the component: a sandbox/test mode that
no Toucan product accepts).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, render_template_string

from flask_toucan import Toucan

from ..core.helpers import rsa_pem
from .test_browser import expected_rows, rendered_rows

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>e2e</title>
{% from "toucan/components.html" import toucan_scripts, tc_dashboard %}{{ toucan_scripts() }}</head>
<body>{{ tc_dashboard("sales-overview") }}</body></html>"""


def build_host(mode: str, sandbox: Any, host_url: str) -> Flask:
    app = Flask(f"e2e-{mode}")
    app.config.update(SECRET_KEY="e2e-secret-key-0123456789abcdef0123", TOUCAN_BASE_URL=sandbox.url)
    if mode == "api":
        app.config["TOUCAN_API_KEY"] = sandbox.api_key
    else:
        app.config.update(
            TOUCAN_MODE="signed",
            TOUCAN_SIGNING_KEY=rsa_pem(0),
            TOUCAN_SIGNING_ALGORITHM="RS512",
            TOUCAN_ISSUER=host_url,
        )
        if mode == "classic":  # aud: the realm's token endpoint (no default: it is required)
            app.config.update(
                TOUCAN_EXCHANGE_URL=sandbox.exchange_url,
                TOUCAN_AUDIENCE=sandbox.exchange_url,
                TOUCAN_EXCHANGE_CLIENT_SECRET=sandbox.exchange_client_secret,
            )
        else:
            app.config["TOUCAN_AUDIENCE"] = "toucan-sandbox"
    toucan = Toucan(app)
    toucan.privileges(lambda user: {"sandbox": ["view"]})  # the sandbox's app id

    @toucan.attribute("organization_id")
    def org(user: Any) -> Any:
        return user["org"]

    @app.get("/as/<org>")
    def as_org(org: str) -> Any:
        toucan.login_user({"sub": f"user-{org}", "iss": "https://idp.example", "org": org})
        return render_template_string(PAGE)

    return app


@pytest.mark.parametrize("mode", ["api", "classic", "signed-direct"])
def test_each_tenant_sees_only_its_rows(mode, browser, live_server, toucan_sandbox_factory, artifacts_dir):
    holder: dict[str, Flask] = {}
    host = live_server(lambda environ, start: holder["app"](environ, start))
    options = {} if mode == "api" else {"host_jwks_url": f"{host.url}/toucan/.well-known/jwks.json"}
    sandbox = toucan_sandbox_factory(**options)
    holder["app"] = build_host(mode, sandbox, host.url)

    seen = {}
    for org in ("acme", "globex"):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{host.url}/as/{org}")
        html = page.content()
        if mode == "classic":  # only the exchanged opaque token reaches the page
            token = page.get_attribute("tc-dashboard", "auth-token") or ""
            assert token.count(".") == 4 and "eyJhbGciOiJSUzUxMiI" not in html
        page.wait_for_selector("tc-dashboard[data-state=ready]", timeout=15000)
        assert page.get_attribute("tc-dashboard", "data-tenant") == org
        rows = rendered_rows(page)
        assert rows == expected_rows(sandbox.data_file, org)
        seen[org] = set(rows)
        page.screenshot(path=f"{artifacts_dir}/e2e-{mode}-{org}.png")
        context.close()
    assert seen["acme"] and seen["globex"]
    stats = sandbox.stats
    if mode == "classic":
        assert stats["exchanges"] >= 2
    if mode == "api":
        assert stats["tokens_issued"] >= 2
