"""The host app the fault soak serves with gunicorn (``gunicorn bench.soak_app:application``).

api mode against the sandbox (``SOAK_BASE_URL``, ``SOAK_API_KEY``), the store
in Redis (``SOAK_STORE``, a ``unix://`` or ``redis://`` URL), shared by every
worker: sessions are real cookies checked against the Redis session registry,
so any worker can serve any user. Two attributes per user (``organization_id``
from the ``org`` claim, ``region``), so a token handed to the wrong user shows
in its introspection.

``POST /login`` (JSON claims) is a test-only login through
``toucan.login_user``; it answers the CSRF token for the refresh endpoint.
``GET /whoami`` answers the logged-in subject (or ``anonymous``) and the
worker's pid, for the near-cache test across gunicorn workers.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify, render_template_string, request
from werkzeug.wrappers import Response

from flask_toucan import Toucan

SECRET_KEY = "soak-secret-key-0123456789abcdef0123456789abcdef"
PAGE = """{% from "toucan/components.html" import tc_dashboard %}<main>{{ tc_dashboard("sales") }}</main>"""


def make_app(environ: Any = None) -> Flask:
    env = os.environ if environ is None else environ
    app = Flask("soak-host")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TOUCAN_BASE_URL=env["SOAK_BASE_URL"],
        TOUCAN_API_KEY=env["SOAK_API_KEY"],
        TOUCAN_STORE=env["SOAK_STORE"],
        TOUCAN_RATE_LIMIT=env.get("SOAK_RATE_LIMIT", "600/minute"),
        TOUCAN_REQUIRED_ATTRIBUTES=("organization_id", "region"),
        TOUCAN_STORE_BREAKER_COOLDOWN=float(env.get("SOAK_BREAKER_COOLDOWN", "0.5")),
    )
    toucan = Toucan()

    @toucan.attribute("organization_id")
    def organization(user: Any) -> Any:
        return user["org"]

    @toucan.attribute("region")
    def region(user: Any) -> Any:
        return user["region"]

    toucan.init_app(app)

    @app.post("/login")
    def login() -> Response:
        toucan.login_user(request.get_json())
        return jsonify({"csrf": toucan.csrf_token()})

    @app.get("/page")
    def page() -> str:
        return render_template_string(PAGE)

    @app.get("/ping")
    def ping() -> str:
        return "ok"

    @app.get("/whoami")
    def whoami() -> str:
        user = toucan.current_user
        return f"{user.subject if user is not None else 'anonymous'} {os.getpid()}"

    return app


application = make_app() if "SOAK_BASE_URL" in os.environ else None
