"""A host app for the cross-worker back-channel logout test (served by gunicorn).

The Redis store from ``BCL_STORE``; an Authlib client whose metadata (issuer)
and JWKS are given inline from ``BCL_ISSUER`` / ``BCL_JWKS`` (the test signs the
logout token itself); the app's own login (``POST /login`` with a ``sid``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, g, jsonify, request
from werkzeug.wrappers import Response

from flask_toucan import Toucan

from ..core.helpers import API_KEY, SECRET_KEY

CLIENT_ID = "bcl-host"


def make_app(env: Any) -> Flask:
    app = Flask("bcl-gunicorn-host")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TOUCAN_BASE_URL="http://127.0.0.1:9",
        TOUCAN_API_KEY=API_KEY,
        TOUCAN_STORE=env["BCL_STORE"],
        TOUCAN_BACKCHANNEL_LOGOUT=True,
    )
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=CLIENT_ID,
        client_secret="not-used-here",
        authorize_url=env["BCL_ISSUER"] + "/auth",
        access_token_url=env["BCL_ISSUER"] + "/token",
        issuer=env["BCL_ISSUER"],
        jwks=json.loads(env["BCL_JWKS"]),
        client_kwargs={"scope": "openid"},
    )
    toucan = Toucan(app, oauth=oauth)

    @app.post("/login")
    def login() -> Response:
        body = request.get_json()
        g._toucan_provider_login = {"sid": body.pop("sid"), "id_token": None}
        toucan.login_user(body)
        return jsonify({})

    @app.get("/ping")
    def ping() -> str:
        return "ok"

    @app.get("/whoami")
    def whoami() -> str:
        user = toucan.current_user
        return f"{user.subject if user is not None else 'anonymous'} {os.getpid()}"

    return app


application = make_app(os.environ) if "BCL_STORE" in os.environ else None
