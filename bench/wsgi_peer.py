"""The WSGI app gunicorn serves for benchmark 9: flask-toucan's refresh vs flask-jwt-extended's.

One server, one set of workers, three apps side by side (werkzeug's
``DispatcherMiddleware``, the same cost for each):

* ``/cached``  flask-toucan, signed mode, the Redis store, ``TOUCAN_TOKEN_TTL=300``:
  the refresh endpoint serves the cached token until near expiry;
* ``/signing`` the same with ``TOUCAN_TOKEN_TTL=1``: nothing cached, every refresh signs;
* ``/jwt``     the hand-rolled peer, a flask-jwt-extended app: ``POST /refresh``
  checks the refresh token (an RS256 JWT in a cookie, with flask-jwt-extended's
  double-submit CSRF header) and signs a fresh RS256 access token carrying the
  same ``embed_context``. The key objects are loaded once (``JWT_PRIVATE_KEY`` /
  ``JWT_PUBLIC_KEY`` are PyJWT key objects, not PEM text parsed per call).

Each app has ``POST /login`` (JSON claims) for the load generator to get a
session and its CSRF token. Configuration from the environment:
``BENCH_KEY_FILE`` (PEM), ``BENCH_REDIS_URL`` (the toucan sides' store).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from flask import Flask, jsonify, request
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Response

from .common import AUDIENCE, ISSUER, SECRET_KEY
from .wsgi import toucan_app

PEER_TTL = 300


def embed_context(user: dict[str, Any]) -> dict[str, Any]:
    """What flask-toucan's bench mappers put in a token (see bench/common.py), built by hand."""
    return {
        "username": f"{user['iss']}|{user['sub']}",
        "workspace_id": None,
        "roles": ["USER"],
        "privileges": {},
        "groups": [],
        "attributes": {
            "organization_id": user["org"],
            "region": user["region"],
            "groups": list(user.get("groups", [])),
        },
        "secrets": {},
    }


def jwt_extended_app(key_file: str, kid: str) -> Flask:
    """The peer: refresh-token cookie + CSRF header in, a freshly signed RS256 access token out."""
    from flask_jwt_extended import (
        JWTManager,
        create_access_token,
        create_refresh_token,
        get_csrf_token,
        get_jwt,
        get_jwt_identity,
        jwt_required,
        set_refresh_cookies,
    )

    with open(key_file, "rb") as fh:
        private_key = load_pem_private_key(fh.read(), password=None)
    app = Flask("jwt-peer")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        JWT_ALGORITHM="RS256",
        JWT_PRIVATE_KEY=private_key,  # key objects, loaded once
        JWT_PUBLIC_KEY=private_key.public_key(),  # type: ignore[union-attr]
        JWT_TOKEN_LOCATION=["cookies"],
        JWT_COOKIE_CSRF_PROTECT=True,
        JWT_COOKIE_SECURE=False,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=PEER_TTL),
        JWT_ENCODE_ISSUER=ISSUER,
        JWT_ENCODE_AUDIENCE=AUDIENCE,
        JWT_DECODE_AUDIENCE=AUDIENCE,
        JWT_DECODE_ISSUER=ISSUER,
    )
    JWTManager(app)
    headers = {"kid": kid, "typ": "JWT"}

    @app.post("/login")
    def login() -> Response:
        user = request.get_json()
        refresh = create_refresh_token(
            identity="toucan-embed-client", additional_claims={"embed_context": embed_context(user)}
        )
        response = jsonify({"csrf": get_csrf_token(refresh)})
        set_refresh_cookies(response, refresh)
        return response

    @app.get("/ping")
    def ping() -> str:
        return "ok"

    @app.post("/refresh")
    @jwt_required(refresh=True)
    def refresh() -> Response:
        context = get_jwt()["embed_context"]
        value = create_access_token(
            identity=get_jwt_identity(),
            additional_claims={"embed_context": context},
            additional_headers=headers,
        )
        expires_at = datetime.now(UTC) + timedelta(seconds=PEER_TTL)
        response = jsonify(
            {
                "token": value,
                "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
                "expires_in": PEER_TTL,
            }
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    return app


def make_application() -> Any:
    key_file = os.environ["BENCH_KEY_FILE"]
    store = os.environ["BENCH_REDIS_URL"]
    cached = toucan_app("cached", 300, "", key_file, store=store)
    signing = toucan_app("signing", 1, "", key_file, store=store)
    kid = cached.extensions["toucan"].config.keys.current.kid
    return DispatcherMiddleware(
        NotFound(), {"/cached": cached, "/signing": signing, "/jwt": jwt_extended_app(key_file, kid)}
    )


application = make_application() if "BENCH_REDIS_URL" in os.environ else None
