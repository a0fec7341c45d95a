"""The WSGI app gunicorn serves for benchmark 3 (``gunicorn bench.wsgi:application``).

One server, one set of workers, three apps side by side (mounted with
werkzeug's ``DispatcherMiddleware``, which costs every side the same):

* ``/cached``  flask-toucan, signed mode, as deployed (``TOUCAN_TOKEN_TTL=300``):
  the refresh endpoint serves the cached token until near expiry;
* ``/signing`` flask-toucan, signed mode, ``TOUCAN_TOKEN_TTL=1``: a one-second
  token is never cached, so every refresh maps, builds claims and signs;
* ``/bare``    a bare Flask app whose ``POST /token`` reads the user from its
  session cookie and signs the same claims with the same key (``jwt.encode``),
  with none of the checks (no CSRF, no server-side session, no origin check).

Both flask-toucan apps use ``TOUCAN_STORE=file://...`` (cachelib's
FileSystemCache: shared by the workers), each its own directory (so the
``/signing`` app can never read a token the ``/cached`` app stored), and no
rate limit. Every app has ``POST /login`` (JSON claims) for the load
generator to get a session; the toucan ones answer with the CSRF token.

Configuration comes from the environment: ``BENCH_KEY_FILE`` (PEM),
``BENCH_STORE_DIR`` (a directory; sub-directories per app).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from flask import Flask, abort, jsonify, request, session
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Response

from .common import AUDIENCE, ISSUER, SECRET_KEY, build_app

BARE_TTL = 300


def toucan_app(name: str, ttl: int, store_dir: str, key_file: str, store: str | None = None) -> Flask:
    """A flask-toucan side; ``store`` (a Redis URL, benchmark 9) instead of the file store."""
    app, toucan = build_app(
        "signed",
        name=name,
        store=store or f"file://{store_dir}",
        ttl=ttl,
        signing_key=key_file,
        SESSION_COOKIE_NAME=f"{name}_session",
    )

    @app.post("/login")
    def login() -> Response:
        toucan.login_user(request.get_json())
        return jsonify({"csrf": toucan.csrf_token()})

    @app.get("/ping")
    def ping() -> str:
        return "ok"

    return app


def bare_app(key_file: str, kid: str) -> Flask:
    """The baseline: a hand-written refresh route signing the same claims with the same key."""
    with open(key_file, "rb") as fh:
        private_key = load_pem_private_key(fh.read(), password=None)
    app = Flask("bare")
    app.config.update(SECRET_KEY=SECRET_KEY, SESSION_COOKIE_NAME="bare_session")
    headers = {"kid": kid, "typ": "JWT"}

    @app.post("/login")
    def login() -> Response:
        session["user"] = request.get_json()
        return jsonify({"csrf": ""})

    @app.get("/ping")
    def ping() -> str:
        return "ok"

    @app.post("/token")
    def token() -> Response:
        user: dict[str, Any] | None = session.get("user")
        if user is None:
            abort(401)
        now = int(time.time())
        subject = f"{user['iss']}|{user['sub']}"
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "toucan-embed-client",  # the classic profile's assertion subject
            "iat": now,
            "nbf": now,
            "exp": now + BARE_TTL,
            "jti": uuid.uuid4().hex,
            "embed_context": {
                "username": subject,
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
            },
        }
        value = jwt.encode(claims, private_key, algorithm="RS256", headers=headers)  # type: ignore[arg-type]
        expires_at = datetime.fromtimestamp(now + BARE_TTL, tz=UTC).isoformat().replace("+00:00", "Z")
        response = jsonify({"token": value, "expires_at": expires_at, "expires_in": BARE_TTL})
        response.headers["Cache-Control"] = "no-store"
        return response

    return app


def make_application() -> Any:
    key_file = os.environ["BENCH_KEY_FILE"]
    store = os.environ["BENCH_STORE_DIR"]
    cached = toucan_app("cached", 300, os.path.join(store, "cached"), key_file)
    signing = toucan_app("signing", 1, os.path.join(store, "signing"), key_file)
    kid = cached.extensions["toucan"].config.keys.current.kid
    return DispatcherMiddleware(
        NotFound(), {"/cached": cached, "/signing": signing, "/bare": bare_app(key_file, kid)}
    )


application = make_application() if "BENCH_KEY_FILE" in os.environ else None
