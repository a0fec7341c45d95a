"""``create_app(**options)``: the sandbox as a Flask app."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, send_from_directory

from . import auth_api, classic, data_api, embeds
from .errors import register_error_handlers
from .frontend import register_frontend
from .options import SandboxOptions
from .state import EXTENSION_KEY, SandboxState
from .views import CHARTS, DASHBOARDS


def _install_mcp(app: Flask) -> None:
    """``/api/mcp`` when the ``mcp`` extra is installed (see mcp_server.py)."""
    try:
        from . import mcp_server
    except ImportError:  # pragma: no cover - depends on the installed extras
        return
    mcp_server.install(app)


def create_app(**options: Any) -> Flask:
    """Build a sandbox app; ``options`` are the fields of :class:`SandboxOptions`."""
    opts = SandboxOptions.build(**options)
    app = Flask("flask_toucan.sandbox", static_folder=None)
    state = SandboxState.from_options(opts)
    app.extensions[EXTENSION_KEY] = state
    state.oauth_server = classic.create_server(app, state)
    app.register_blueprint(auth_api.bp)
    app.register_blueprint(classic.bp)
    app.register_blueprint(data_api.bp)
    app.register_blueprint(embeds.bp)
    register_error_handlers(app)
    register_frontend(app)
    _install_mcp(app)

    @app.get("/embed/embed.js")
    def embed_js() -> Response:
        # Module scripts are fetched with CORS: the script itself is public, so "*".
        resp = send_from_directory(
            app.root_path + "/static", "embed.js", mimetype="text/javascript", max_age=0
        )
        resp.headers["Access-Control-Allow-Origin"] = "*"
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    @app.get("/")
    def index() -> Response:
        return jsonify(
            {
                "service": "flask-toucan sandbox (a local stand-in for Toucan AI)",
                "script": "/embed/embed.js",
                "classic_embeds": ["/scripts/embedLauncher.js", "/embed.html"],
                "dashboards": sorted(DASHBOARDS),
                "charts": sorted(CHARTS),
                "signed_mode": opts.host_jwks_url is not None,
                "token_endpoint": f"/api/auth/realms/{opts.tenant}/protocol/openid-connect/token",
                "docs": "docs/sandbox.md",
            }
        )

    @app.after_request
    def security_headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        return resp

    return app
