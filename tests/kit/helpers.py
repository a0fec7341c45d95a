"""Helpers shared by the tests of this folder (imported as ``.helpers``; fixtures live in conftest.py).

Host app for the component-kit tests, pointed at the real Toucan sandbox.

Login goes through ``toucan.login_user`` (no OpenID provider needed here): a
``GET /_login/<sub>?org=...&ai=1`` route stands in for the app's own login.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, g, render_template_string, request

from flask_toucan import Toucan

SECRET_KEY = "kit-test-secret-key-0123456789abcdef0123456789"


#: Fixed so that a scan over many tests' responses can look for it.
API_KEY = "tk_kit_SECRET_api_key_0123456789abcdef"


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>kit</title>
{% from "toucan/components.html" import toucan_scripts, tc_dashboard, tc_ai_assistant %}
{{ toucan_scripts() }}</head>
<body>
<h1>Analytics</h1>
{{ tc_dashboard("sales-overview", id="dash", height=300, refresh_interval=poll) }}
{{ tc_dashboard(chart_id="revenue-by-month", id="chart", height=200, refresh_interval=poll) }}
{% if with_assistant %}{{ tc_ai_assistant(id="assistant", height=200) }}{% endif %}
</body></html>"""


def make_host(sandbox: Any, **config: Any) -> tuple[Flask, Toucan]:
    """A host app in api mode against ``sandbox``; ``config`` overrides TOUCAN_* settings."""
    app = Flask("kit-host")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TESTING=True,
        TOUCAN_BASE_URL=sandbox.url,
        TOUCAN_API_KEY=sandbox.api_key,
        TOUCAN_HTTP_RETRIES=0,  # the browser's script does the retrying in these tests
        TOUCAN_RATE_LIMIT="1000/minute",
    )
    app.config.update(config)
    toucan = Toucan()

    @toucan.attribute("organization_id")
    def organization(user: Any) -> Any:
        return user["org"]

    @toucan.permissions
    def permissions(user: Any) -> dict[str, dict[str, bool]]:
        granted = {"dashboard": {"can_view": True}}
        if user.get("ai"):
            granted["ai"] = {"can_query": True}
        return granted

    @toucan.csp_nonce_loader
    def nonce() -> str | None:
        return g.get("nonce")

    toucan.init_app(app)

    @app.before_request
    def make_nonce() -> None:
        g.nonce = secrets.token_urlsafe(16)

    @app.after_request
    def token_page_headers(resp: Any) -> Any:
        # What docs/security.md asks of pages that carry tokens; the refresh script
        # must work under them (its fetch sets its own referrer policy).
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if resp.mimetype == "text/html":
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.after_request
    def csp(resp: Any) -> Any:
        # Strict script policy: only the nonce'd module scripts may run (nothing inline).
        # KIT_TEST_CSP=False: no policy, so an injected inline handler would really run
        # (what the escaping tests must be able to see).
        if not app.config.get("KIT_TEST_CSP", True):
            return resp
        resp.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'nonce-{g.nonce}'; "
            f"connect-src 'self' {sandbox.url}; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
        )
        return resp

    @app.get("/_login/<sub>")
    def login(sub: str) -> str:
        claims = {"sub": sub, "iss": "https://idp.test", "org": request.args.get("org", "acme")}
        if request.args.get("ai"):
            claims["ai"] = True
        toucan.login_user(claims)
        return "ok"

    @app.get("/page")
    def page() -> str:
        return render_template_string(
            PAGE,
            poll=float(request.args.get("poll", 0)) or None,
            with_assistant=bool(request.args.get("assistant")),
        )

    return app, toucan
