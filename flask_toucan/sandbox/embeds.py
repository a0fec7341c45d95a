"""Classic Toucan 3 embeds: ``/scripts/embedLauncher.js``, ``/embed.html`` and their data call.

A self-hosted Toucan 3 instance (docs-v3 "Embed a story with user
attributes", "Passing extra variables") renders an embed from one of two
snippets, each carrying the opaque token its exchange issued::

    <div><script async src="{instance}/scripts/embedLauncher.js?id=EMBED&token=T" ...></script></div>
    <iframe src="{instance}/embed.html?id=EMBED&token=T"></iframe>

with an optional ``view=`` and extra variables as ``variables=`` (JSON, every
key under ``extra``) or ``variables.name=`` pairs (each value JSON). This
module is the sandbox's stand-in for both:

* the launcher answers a script that mounts ``/embed.html`` (same query) in
  the element around it, or, when the token is refused, draws the refusal
  there (a script answered with a 4xx would never run: the page would show
  nothing, so the refusal is a 200 script that says why; our choice);
* ``/embed.html`` is a frame page that checks the token before anything
  else (401 page with a clear message for an expired, forged or foreign
  token, 404 for an unknown embed) and draws the tenant's rows;
* ``GET /api/v1/embeds/<id>`` is the frame's data call: the same token as
  Bearer, RLS from the grant's attributes (the assertion's
  ``embed_context.attributes``), ``{code, message}`` errors with 401/403/404.

Only a token issued by *this* sandbox's exchange (``source == "exchange"``)
opens an embed: a token-API token (Toucan AI's) or a host JWT used directly
is refused as ``invalid_token``, like one from another instance.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request
from markupsafe import escape

from .codec import TokenRejected
from .data import connect
from .data_api import require, scoped, tenant
from .errors import ApiError
from .grants import Grant
from .state import SandboxState, get_state
from .views import CHARTS, DASHBOARDS, View, run_view

bp = Blueprint("sandbox_embeds", __name__)

#: The embeds of the sample data set: a story per dashboard, a tile per chart.
EMBEDS: dict[str, View] = {**DASHBOARDS, **CHARTS}
STATIC = os.path.join(os.path.dirname(__file__), "static")
MAX_VARIABLES = 4096
MAX_VIEW = 256
#: What the frame shows for each refusal (no token, no key, no secret in any of them).
MESSAGES = {
    "missing_token": "This embed needs a token: the host page must pass token=.",
    "invalid_token": "This embed's token was not issued by this Toucan instance's embed exchange.",
    "token_expired": "This embed's token has expired: the host page must mount it with a new one.",
    "not_found": "There is no embed with this id.",
    "invalid_request": "This embed's query is malformed.",
}


def embed_grant(state: SandboxState, token: str | None) -> Grant:
    """The grant of an opaque token from this sandbox's exchange, or :class:`TokenRejected`."""
    if not token:
        raise TokenRejected("missing_token", MESSAGES["missing_token"])
    grant = state.codec.decode(token)
    if grant.source != "exchange":
        raise TokenRejected("invalid_token", MESSAGES["invalid_token"])
    return grant


def variables_of(args: Mapping[str, str]) -> dict[str, Any]:
    """``extra`` of ``variables=`` (JSON) merged with ``variables.name=`` pairs (each JSON)."""
    extra: dict[str, Any] = {}
    raw = args.get("variables")
    if raw is not None:
        if len(raw) > MAX_VARIABLES:
            raise ApiError(400, "invalid_request", "variables is too long", field="variables")
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ApiError(400, "invalid_request", "variables must be JSON", field="variables") from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("extra", {}), dict):
            raise ApiError(
                400,
                "invalid_request",
                "variables must be an object with its keys under 'extra'",
                field="variables",
            )
        extra.update(parsed.get("extra", {}))
    for key, value in args.items():
        if key.startswith("variables.") and len(key) > len("variables."):
            try:
                extra[key[len("variables.") :]] = json.loads(value)
            except ValueError:
                raise ApiError(400, "invalid_request", f"{key} must be JSON", field=key) from None
    return extra


def _view_arg(args: Mapping[str, str]) -> str | None:
    view = args.get("view")
    if view is not None and (not view or len(view) > MAX_VIEW):
        raise ApiError(400, "invalid_request", f"view must be 1..{MAX_VIEW} characters", field="view")
    return view


def _embed(embed_id: str | None) -> View:
    view = EMBEDS.get(embed_id or "")
    if view is None:
        raise ApiError(404, "not_found", MESSAGES["not_found"])
    return view


def _refusal(state: SandboxState, exc: TokenRejected) -> ApiError:
    state.stats.incr("embeds_denied")
    return ApiError(
        401,
        exc.code,
        MESSAGES.get(exc.code, exc.message),
        headers={"WWW-Authenticate": f'Bearer realm="toucan-sandbox", error="{exc.code}"'},
    )


# ------------------------------------------------------------------ launcher
@bp.get("/scripts/embedLauncher.js")
def launcher() -> Response:
    """The launcher: mounts ``/embed.html`` with the same query, or draws why it will not."""
    state = get_state()
    state.stats.incr("embed_launches")
    launch: dict[str, Any]
    try:
        _embed(request.args.get("id"))
        _view_arg(request.args)
        variables_of(request.args)
        embed_grant(state, request.args.get("token"))
    except TokenRejected as exc:
        state.stats.incr("embeds_denied")
        launch = {"error": exc.code, "message": MESSAGES.get(exc.code, exc.message)}
    except ApiError as exc:
        launch = {"error": exc.error, "message": MESSAGES.get(exc.error, exc.message)}
    else:
        query = urlencode(list(request.args.items(multi=True)))
        launch = {"frame": f"{request.host_url.rstrip('/')}/embed.html?{query}"}
    with open(f"{STATIC}/embedLauncher.js", encoding="utf-8") as fh:
        body = fh.read()
    # JSON is a JS literal; "<" escaped all the same (the body is never HTML, but costs nothing).
    call = json.dumps(launch).replace("<", "\\u003c")
    resp = Response(f"{body}\nwindow.__toucanSandboxLaunch(document.currentScript, {call});\n")
    resp.mimetype = "text/javascript"
    resp.headers["Cache-Control"] = "no-store"  # it carries the outcome of one token's check
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


# --------------------------------------------------------------------- frame
FRAME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script src="/scripts/embed-frame.js" defer></script></head>
<body><main id="tc-embed" class="tc-embed" data-state="{state}"
 data-embed-id="{embed_id}"{error}>{content}</main>
</body></html>"""


def _frame_headers(resp: Response, state: SandboxState) -> Response:
    """The frame may be framed by the authorized origins only; its URL (with the token) goes nowhere."""
    ancestors = " ".join(["'self'", *state.options.origins])
    resp.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
        f"img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
    )
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _frame_page(state: SandboxState, status: int, embed_id: str, *, error: str | None = None) -> Response:
    if error is None:
        content, extra, page_state = '<p class="tc-message">Loading…</p>', "", "loading"
    else:
        message = escape(MESSAGES.get(error, "This embed cannot be shown."))
        content = f'<p class="tc-message tc-error" role="alert">{message}</p>'
        extra, page_state = f' data-error="{escape(error)}"', "error"
    html = FRAME.format(
        title="Toucan embed", state=page_state, embed_id=escape(embed_id), error=extra, content=content
    )
    resp = Response(html, status=status, mimetype="text/html")
    return _frame_headers(resp, state)


@bp.get("/embed.html")
def frame() -> Response:
    """The iframe form (and what the launcher mounts): checked server-side before anything is drawn."""
    state = get_state()
    state.stats.incr("embed_frames")
    embed_id = request.args.get("id", "")
    try:
        _embed(embed_id)
        _view_arg(request.args)
        variables_of(request.args)
        embed_grant(state, request.args.get("token"))
    except TokenRejected as exc:
        state.stats.incr("embeds_denied")
        return _frame_page(state, 401, embed_id, error=exc.code)
    except ApiError as exc:
        return _frame_page(state, exc.status, embed_id, error=exc.error)
    return _frame_page(state, 200, embed_id)


@bp.get("/scripts/embed-frame.js")
def frame_script() -> Response:
    with open(f"{STATIC}/embed-frame.js", encoding="utf-8") as fh:
        resp = Response(fh.read(), mimetype="text/javascript")
    resp.headers["Cache-Control"] = "no-cache"
    return resp


# ----------------------------------------------------------------- data call
@bp.get("/api/v1/embeds/<embed_id>")
def embed_data(embed_id: str) -> Response:
    """The frame's data call: token as Bearer (401 first), then the embed (404), then RLS (403)."""
    state = get_state()
    state.stats.incr("data_requests")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        grant = embed_grant(state, token.strip() if scheme.lower() == "bearer" else None)
    except TokenRejected as exc:
        raise _refusal(state, exc) from None
    view = _embed(embed_id)
    require(grant, ("dashboard", "can_view"), ("chart", "can_view"))
    chosen = _view_arg(request.args)
    variables = variables_of(request.args)
    where, params = scoped(state, grant)
    with connect(state.data_file) as conn:
        result = run_view(conn, view, where, params)
        body = {"id": embed_id, "title": view.title, "tenant": tenant(conn, grant), **result}
    body.update(view=chosen, variables={"extra": variables}, expires_at=grant.expires_at)
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp
