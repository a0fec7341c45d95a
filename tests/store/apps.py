"""A host app for the store tests: own login, a page with a component, a view reading the user."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template_string, request
from werkzeug.wrappers import Response

from flask_toucan import Toucan

from ..core.helpers import SECRET_KEY, signed_config

PAGE = """{% from "toucan/components.html" import tc_dashboard %}<main>{{ tc_dashboard("sales") }}</main>"""


def make_store_app(store: Any, **config: Any) -> tuple[Flask, Toucan]:
    """Signed mode (no upstream involved): every failure here is the store's."""
    app = Flask("store-host")
    app.config.update(SECRET_KEY=SECRET_KEY, TOUCAN_STORE=store, TOUCAN_RATE_LIMIT="10000/minute")
    app.config.update(signed_config(**config))
    toucan = Toucan()

    @toucan.attribute("organization_id")
    def organization(user: Any) -> Any:
        return user["org"]

    toucan.init_app(app)

    @app.post("/login")
    def login() -> Response:
        toucan.login_user(request.get_json())
        return jsonify({"csrf": toucan.csrf_token()})

    @app.get("/page")
    def page() -> str:
        return render_template_string(PAGE)

    @app.get("/whoami")
    def whoami() -> str:
        user = toucan.current_user
        return user.subject if user is not None else "anonymous"

    return app, toucan


def login(client: Any, sub: str = "alice", org: str = "acme", base: str = "") -> str:
    """Log ``sub`` in through the app's own login; the CSRF token for the refresh endpoint."""
    resp = client.post(f"{base}/login", json={"sub": sub, "iss": "https://idp.test", "org": org})
    assert resp.status_code == 200, resp.status_code
    csrf: str = resp.get_json()["csrf"] if hasattr(resp, "get_json") else resp.json()["csrf"]
    return csrf
