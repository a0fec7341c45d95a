"""The demo site: "Toucan analytics portal", a multi-tenant customer portal.

It uses flask-toucan exactly as docs/usage.md tells an app to: an Authlib
client registered against an OpenID provider, ``Toucan(app, oauth=oauth)``,
attribute and permission mappers, and the component macros in the templates.
Everything else here (pages, CSP, the grant panel) is ordinary Flask.

``create_app(config)`` reads its settings from ``config``, else from the
environment (see :func:`config_from_env`); ``python -m demo`` fills them in for
the local provider and sandbox it starts.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
from authlib.integrations.flask_client import OAuth
from flask import Flask, Response, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from flask_toucan import PermissionDenied, Toucan, ToucanError, ToucanUser

from . import chat as host_bot
from .users import (
    ANALYSTS_GROUP,
    DEMO_USERS,
    ORG_GROUP_PREFIX,
    ORGANIZATIONS,
    REGION_NAMES,
)

log = logging.getLogger("demo")
F = TypeVar("F", bound=Callable[..., Any])

#: The OpenID scopes the demo asks for: ``groups`` carries tenant and role,
#: ``address`` carries the region (``address.region``).
SCOPE = "openid profile email address groups"

#: Settings the demo needs, and the environment variable each one comes from.
ENV_SETTINGS: dict[str, str] = {
    "SECRET_KEY": "DEMO_SECRET_KEY",
    "DEMO_OIDC_METADATA_URL": "DEMO_OIDC_METADATA_URL",
    "DEMO_OIDC_CLIENT_ID": "DEMO_OIDC_CLIENT_ID",
    "DEMO_OIDC_CLIENT_SECRET": "DEMO_OIDC_CLIENT_SECRET",
    "TOUCAN_BASE_URL": "TOUCAN_BASE_URL",
    "TOUCAN_API_KEY": "TOUCAN_API_KEY",
    "DEMO_INTROSPECTION_URL": "DEMO_INTROSPECTION_URL",
}
REQUIRED = ("DEMO_OIDC_METADATA_URL", "DEMO_OIDC_CLIENT_ID", "DEMO_OIDC_CLIENT_SECRET")

DASHBOARDS = (
    ("sales-overview", "Sales overview", "Revenue by month and product for your organisation."),
    ("regional-performance", "Regional performance", "How each region of your organisation performs."),
)


def config_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The demo's settings from environment variables (only those that are set)."""
    environ = os.environ if environ is None else environ
    return {key: environ[var] for key, var in ENV_SETTINGS.items() if environ.get(var)}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal. ``config`` overrides the environment (tests, ``python -m demo``)."""
    app = Flask(__name__)
    app.config.update(
        # Flask cookies ignore ports: the provider on another port of 127.0.0.1
        # has its own "session" cookie, so ours needs another name.
        SESSION_COOKIE_NAME="demo_session",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        DEMO_SHOW_DEMO_USERS=False,  # True when the local provider with DEMO_USERS runs
        DEMO_INTROSPECTION_URL=None,  # the sandbox's /embed/introspect (not a Toucan API)
        DEMO_IDP_NAME="your identity provider",
        DEMO_CANONICAL_URL=None,  # e.g. http://127.0.0.1:5000: other host names are redirected there
        # The demo switches between its demo users: logout ends the portal's login only, so
        # the local provider's logout confirmation page does not stand in the way. A real
        # app keeps the default (RP-initiated logout, docs/security.md).
        TOUCAN_RP_INITIATED_LOGOUT=False,
    )
    app.config.update(config_from_env())
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        # A random key per start: sessions do not survive a restart, which is
        # what a demo wants. Set DEMO_SECRET_KEY to keep them.
        app.config["SECRET_KEY"] = secrets.token_urlsafe(32)
    missing = [key for key in REQUIRED if not app.config.get(key)]
    if missing:
        raise RuntimeError(
            f"the demo needs {', '.join(missing)}: run `python -m demo` (it starts a local "
            "OpenID provider), or set these environment variables for your own provider"
        )

    oauth = OAuth(app)
    oauth.register(
        "idp",
        server_metadata_url=app.config["DEMO_OIDC_METADATA_URL"],
        client_id=app.config["DEMO_OIDC_CLIENT_ID"],
        client_secret=app.config["DEMO_OIDC_CLIENT_SECRET"],
        client_kwargs={"scope": SCOPE},
    )
    toucan = Toucan(app, oauth=oauth)
    register_mappers(toucan)
    register_security_headers(app)
    register_views(app, toucan, oauth)
    return app


# ------------------------------------------------------------------ mappers
def register_mappers(toucan: Toucan) -> None:
    """What goes into every token: the tenant, the region, and who may ask the AI.

    They run at every mint, so a user moved to another organisation or group at
    the provider gets the new scope at their next login's next refresh.
    """

    @toucan.attribute("organization_id")
    def organization(user: ToucanUser) -> str | None:
        # Exactly one "org:<id>" group, else no organisation: the attribute is
        # required, so no token is minted (fail closed), never a tenant-less one.
        orgs = [g[len(ORG_GROUP_PREFIX) :] for g in user.get("groups", []) if g.startswith(ORG_GROUP_PREFIX)]
        return orgs[0] if len(orgs) == 1 else None

    @toucan.attribute("region")
    def region(user: ToucanUser) -> str | None:
        # The standard OpenID "address" claim; no region means the whole organisation.
        address = user.get("address") or {}
        value = address.get("region") if isinstance(address, dict) else None
        return value.lower() if isinstance(value, str) and value else None

    @toucan.permissions
    def permissions(user: ToucanUser) -> dict[str, dict[str, bool]]:
        return {
            "dashboard": {"can_view": True},
            "ai": {"can_query": ANALYSTS_GROUP in user.get("groups", [])},
        }


# ------------------------------------------------------------------ CSP
def register_security_headers(app: Flask) -> None:
    """A strict CSP with a per-request nonce: no inline script or style anywhere.

    ``g.csp_nonce`` is where flask-toucan's default nonce loader looks, so
    ``toucan_scripts()`` tags its two scripts without more wiring.
    """

    @app.before_request
    def make_nonce() -> None:
        g.csp_nonce = secrets.token_urlsafe(16)

    @app.before_request
    def canonical_host() -> BaseResponse | None:
        # The provider only knows one redirect URI and cookies are per host name:
        # http://localhost:5000 must become the URL the provider was told about.
        canonical = app.config.get("DEMO_CANONICAL_URL")
        if canonical and request.host_url.rstrip("/") != canonical and request.method in ("GET", "HEAD"):
            return redirect(canonical + request.full_path.rstrip("?"))
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        toucan_origin = _origin(app.config.get("TOUCAN_BASE_URL"))
        nonce = g.get("csp_nonce", "")
        policy = {
            "default-src": "'self'",
            "script-src": f"'self' 'nonce-{nonce}' {toucan_origin}",
            "connect-src": f"'self' {toucan_origin}",
            "style-src": "'self'",
            "img-src": "'self' data:",
            "font-src": "'self'",
            "object-src": "'none'",
            "base-uri": "'none'",
            "form-action": "'self'",
            "frame-ancestors": "'none'",
        }
        response.headers["Content-Security-Policy"] = "; ".join(f"{k} {v}" for k, v in policy.items())
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Pages carry tokens (docs/security.md): no URL leaves in a Referer, nothing is
        # cached, no other site may frame them (frame-ancestors above).
        response.headers["Referrer-Policy"] = "no-referrer"
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response


def _origin(url: str | None) -> str:
    if not url:
        return ""
    parts = url.split("/")
    return "/".join(parts[:3])


# ------------------------------------------------------------------ views
def register_views(app: Flask, toucan: Toucan, oauth: OAuth) -> None:
    def login_required(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if toucan.current_user is None:
                return redirect(url_for("sign_in", next=request.path))
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    @app.context_processor
    def portal_context() -> dict[str, Any]:
        user = toucan.current_user
        return {
            "user": profile(user) if user is not None else None,
            "csrf_token": toucan.csrf_token if user is not None else None,
            "can_ask": toucan.can("assistant"),
        }

    @app.get("/")
    def sign_in() -> str | BaseResponse:
        """The landing page: what the portal is, and whom to sign in as."""
        if toucan.current_user is not None:
            return redirect(url_for("overview"))
        target = request.args.get("next", "/overview")
        if not target.startswith("/") or target.startswith("//"):
            target = "/overview"
        return render_template(
            "sign_in.html",
            login_url=url_for("toucan.login", next=target),
            demo_users=DEMO_USERS if app.config["DEMO_SHOW_DEMO_USERS"] else (),
            organizations=ORGANIZATIONS,
            regions=REGION_NAMES,
            idp_name=app.config["DEMO_IDP_NAME"],
        )

    @app.get("/switch-account")
    def switch_account() -> BaseResponse:
        """Sign out at the provider too (RP-initiated logout), to sign in as someone else.

        Signing out of the portal ends the portal's session only; the provider
        would sign the same person straight back in.
        """
        if toucan.current_user is not None:
            return redirect(url_for("overview"))
        try:
            metadata = oauth.create_client("idp").load_server_metadata()
        except requests.RequestException:
            metadata = {}
        endpoint = metadata.get("end_session_endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            return redirect(url_for("sign_in"))
        query = urlencode(
            {
                "client_id": app.config["DEMO_OIDC_CLIENT_ID"],
                "post_logout_redirect_uri": url_for("sign_in", _external=True),
            }
        )
        return redirect(f"{endpoint}?{query}")

    @app.get("/overview")
    @login_required
    def overview() -> str:
        """Two dashboards, one token: they share the dashboard permission set."""
        return render_template(
            "overview.html", dashboards=DASHBOARDS, grant=grant_panel(app, toucan, "dashboard")
        )

    @app.get("/assistant")
    @login_required
    def assistant() -> str:
        """The AI assistant; a placeholder for users outside the analysts group."""
        return render_template("assistant.html", grant=grant_panel(app, toucan, "assistant"))

    host_bot.register(app, toucan, login_required)

    @app.errorhandler(ToucanError)
    def toucan_error(exc: ToucanError) -> tuple[str, int]:
        # Login errors (provider refused, state mismatch) land here as a page, not JSON.
        return render_template("error.html", message=exc.message), exc.status_code

    @app.errorhandler(404)
    @app.errorhandler(405)
    def not_found(exc: HTTPException) -> tuple[str, int]:
        # The portal's own page, not werkzeug's bare default.
        return render_template(
            "error.html",
            heading="Page not found" if exc.code == 404 else "Not allowed here",
            message="There is no page at this address." if exc.code == 404 else str(exc.description),
        ), int(exc.code or 404)


def profile(user: ToucanUser) -> dict[str, Any]:
    """What the header shows: name, organisation, region, role (from the same claims the mappers read)."""
    groups = [g for g in user.get("groups", []) if isinstance(g, str)]
    orgs = [g[len(ORG_GROUP_PREFIX) :] for g in groups if g.startswith(ORG_GROUP_PREFIX)]
    org = orgs[0] if len(orgs) == 1 else None
    address = user.get("address")
    region = str(address.get("region") or "").lower() or None if isinstance(address, dict) else None
    return {
        "name": user.get("name") or user.get("preferred_username") or user.subject,
        "email": user.get("email"),
        "organization_id": org,
        "organization": ORGANIZATIONS.get(org or "", org or "no organisation"),
        "region": region,
        "region_name": REGION_NAMES.get(region or "", region or "all regions"),
        "analyst": ANALYSTS_GROUP in groups,
    }


def grant_panel(app: Flask, toucan: Toucan, kind: str) -> dict[str, Any]:
    """What the page's token was asked for and, against the sandbox, what it grants.

    Built from the very token the macros put on the page (the kit memoises one
    token per permission set per request). Shows claims, never the token.
    """
    try:
        token = toucan.issue_token(kind=kind)
    except PermissionDenied:
        return {"kind": kind, "withheld": "your account does not have this permission"}
    except ToucanError as exc:
        return {"kind": kind, "withheld": exc.message}
    claims = dict(token.claims)
    panel: dict[str, Any] = {
        "kind": kind,
        "mode": app.extensions["toucan"].config.mode,
        "requested": claims,
        "requested_json": json.dumps(claims, indent=2, sort_keys=True),
        "expires_at": token.expires_at.astimezone(UTC).strftime("%H:%M:%S UTC"),
        "expires_in": token.expires_in,
        "introspection": None,
    }
    url = app.config.get("DEMO_INTROSPECTION_URL")
    if url:
        panel["introspection"] = introspect(url, app.config["TOUCAN_API_KEY"], token.value)
    return panel


def introspect(url: str, api_key: str, token: str) -> dict[str, Any]:
    """Ask the sandbox what a token grants (server side: the API key stays here)."""
    try:
        resp = requests.post(url, json={"token": token}, headers={"x-api-key": api_key}, timeout=3)
        body = resp.json()
    except (requests.RequestException, ValueError):
        return {"error": "the sandbox did not answer"}
    if resp.status_code != 200 or not isinstance(body, dict):
        return {"error": f"introspection answered {resp.status_code}"}
    shown = {k: body.get(k) for k in ("active", "user", "attributes", "permissions", "expires_at", "source")}
    expires = body.get("expires_at")
    if isinstance(expires, str):
        try:
            shown["expires_at"] = (
                datetime.fromisoformat(expires.replace("Z", "+00:00"))
                .astimezone(UTC)
                .strftime("%H:%M:%S UTC")
            )
        except ValueError:
            pass
    shown["json"] = json.dumps({k: v for k, v in shown.items() if k != "json"}, indent=2, sort_keys=True)
    return shown
