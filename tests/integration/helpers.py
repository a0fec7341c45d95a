"""Helpers shared by the tests of this folder (imported as ``.helpers``; fixtures live in conftest.py).

Fixtures for the front-end tests: a test CA, nginx, tinyproxy, a host app, a recording sandbox.
"""

from __future__ import annotations

import html
import re
from typing import Any

from flask import Flask, render_template_string

from flask_toucan import Toucan

SECRET_KEY = "integration-secret-key-0123456789abcdef0123"


#: Fixed so that the tests can look for it in proxy logs.
API_KEY = "tk_integration_SECRET_api_key_0123456789"


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>fe</title>
{% from "toucan/components.html" import toucan_scripts, tc_dashboard %}{{ toucan_scripts() }}</head>
<body>{{ tc_dashboard("sales-overview") }}</body></html>"""


def auth_tokens(page: str) -> list[str]:
    """The ``auth-token`` attributes of the page's components."""
    return [html.unescape(v) for v in re.findall(r'auth-token="([^"]*)"', page)]


def make_host(**config: Any) -> Flask:
    """A host app rendering ``tc_dashboard`` for ``/as/<org>`` (logs the user in first)."""
    app = Flask(f"fe-host-{id(config)}")
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True, TOUCAN_RATE_LIMIT=None)
    app.config.update(config)
    toucan = Toucan()

    @toucan.attribute("organization_id")
    def organization(user: Any) -> Any:
        return user["org"]

    toucan.init_app(app)

    @app.get("/as/<org>")
    def as_org(org: str) -> str:
        toucan.login_user({"sub": f"user-{org}", "iss": "https://idp.test", "org": org})
        return render_template_string(PAGE)

    app.extensions["fe_toucan"] = toucan
    return app


def render_page(app: Flask, org: str = "acme") -> tuple[int, str]:
    resp = app.test_client().get(f"/as/{org}")
    return resp.status_code, resp.get_data(as_text=True)


class Recorder:
    """WSGI middleware around the sandbox: the headers of every request that reached it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        self.seen.append({"path": environ.get("PATH_INFO", ""), **headers})
        return self.app(environ, start_response)
