"""The data API the components call: token, origin, permission, then RLS.

Every request runs the same gate, in this order:

1. the page origin (``Origin`` header, when present) must be authorized,
   else 403 ``origin_not_allowed``; requests without one (server-side, the
   headless API) pass;
2. the bearer token must decrypt (401 ``invalid_token``) and be unexpired
   (401 ``token_expired``, the code the components recognise);
3. the token must hold the permission of the resource (403 ``forbidden``);
4. the table's access rules are compiled with the token's attributes (403
   ``missing_attribute`` when one is absent) and every query runs with them.

CORS: preflights and responses carry ``Access-Control-Allow-Origin`` (the
exact origin, with ``Vary: Origin``) only for authorized origins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from . import assistant
from .auth_api import grant_of
from .codec import TokenRejected
from .data import connect, organization_name
from .errors import ApiError
from .grants import Grant
from .options import origin_allowed
from .rls import RuleError, where_clause
from .state import SandboxState, get_state
from .views import CHARTS, DASHBOARDS, View, run_view, scoped_rows

bp = Blueprint("sandbox_data", __name__, url_prefix="/api/v1")

MAX_PAGE = 10_000


def _origin_ok(state: SandboxState, origin: str) -> bool:
    own = request.host_url.rstrip("/")
    return origin == own or origin_allowed(origin, state.options.origins)


@bp.before_request
def check_origin() -> Response | None:
    state = get_state()
    state.stats.incr("data_requests")
    origin = request.headers.get("Origin")
    if origin is not None and not _origin_ok(state, origin):
        state.stats.incr("data_denied")
        raise ApiError(
            403, "origin_not_allowed", "this page origin is not an authorized origin of the sandbox"
        )
    if request.method == "OPTIONS":
        resp = Response(status=204)
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        resp.headers["Access-Control-Max-Age"] = "600"
        return resp
    return None


@bp.after_request
def cors_headers(resp: Response) -> Response:
    origin = request.headers.get("Origin")
    if origin is not None and _origin_ok(get_state(), origin):
        resp.headers["Access-Control-Allow-Origin"] = origin
    resp.vary.add("Origin")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def authenticate(state: SandboxState) -> Grant:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "missing_token",
            "send the embed token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="toucan-sandbox"'},
        )
    try:
        return grant_of(state, token)
    except TokenRejected as exc:
        state.stats.incr("data_denied")
        raise ApiError(
            401,
            exc.code,
            exc.message,
            headers={"WWW-Authenticate": f'Bearer realm="toucan-sandbox", error="{exc.code}"'},
        ) from None


def require(grant: Grant, *alternatives: tuple[str, str]) -> None:
    if not any(grant.allows(resource, flag) for resource, flag in alternatives):
        get_state().stats.incr("data_denied")
        needed = " or ".join(f"{r}.{f}" for r, f in alternatives)
        raise ApiError(403, "forbidden", f"the token lacks the {needed} permission")


def scoped(state: SandboxState, grant: Grant, table: str = "sales") -> tuple[str, list[Any]]:
    try:
        return where_clause(state.options.rules, table, grant.attributes)
    except RuleError as exc:
        state.stats.incr("data_denied")
        raise ApiError(403, exc.code, str(exc)) from None


def tenant(conn: Any, grant: Grant) -> dict[str, Any]:
    org = grant.attributes.get("organization_id")
    if not isinstance(org, str):
        return {"id": None, "name": None}
    return {"id": org, "name": organization_name(conn, org)}


def _view_response(grant: Grant, view: View) -> Response:
    state = get_state()
    where, params = scoped(state, grant)
    with connect(state.data_file) as conn:
        result = run_view(conn, view, where, params)
        return jsonify(
            {
                "id": view.id,
                "kind": view.kind,
                "title": view.title,
                "tenant": tenant(conn, grant),
                **result,
            }
        )


def _lookup(table: dict[str, View], view_id: str, what: str) -> View:
    view = table.get(view_id)
    if view is None:
        raise ApiError(404, "not_found", f"no {what} with this id")
    return view


@bp.route("/dashboards", methods=["GET", "OPTIONS"])
def list_dashboards() -> Response:
    grant = authenticate(get_state())
    require(grant, ("dashboard", "can_view"), ("chart", "can_view"))
    return jsonify(
        {
            "dashboards": [{"id": v.id, "title": v.title} for v in DASHBOARDS.values()],
            "charts": [{"id": v.id, "title": v.title} for v in CHARTS.values()],
        }
    )


@bp.route("/dashboards/<dashboard_id>", methods=["GET", "OPTIONS"])
def dashboard(dashboard_id: str) -> Response:
    grant = authenticate(get_state())
    require(grant, ("dashboard", "can_view"))
    return _view_response(grant, _lookup(DASHBOARDS, dashboard_id, "dashboard"))


@bp.route("/charts/<chart_id>", methods=["GET", "OPTIONS"])
def chart(chart_id: str) -> Response:
    alternatives = (("chart", "can_view"), ("dashboard", "can_view"))
    grant = authenticate(get_state())
    require(grant, *alternatives)
    return _view_response(grant, _lookup(CHARTS, chart_id, "chart"))


def _int_arg(name: str, default: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > maximum:
        raise ApiError(400, "invalid_request", f"{name} must be an integer 0..{maximum}", field=name)
    return int(raw)


@bp.route("/datasets/sales/rows", methods=["GET", "OPTIONS"])
def sales_rows() -> Response:
    state = get_state()
    grant = authenticate(state)
    require(grant, ("database", "can_view"))
    where, params = scoped(state, grant)
    limit = _int_arg("limit", MAX_PAGE, MAX_PAGE)
    offset = _int_arg("offset", 0, 10**9)
    with connect(state.data_file) as conn:
        rows, total = scoped_rows(conn, where, params, limit, offset)
        return jsonify({"tenant": tenant(conn, grant), "rows": rows, "row_count": total})


def _assistant(
    grant: Grant, handler: Callable[[Any, str, list[Any], dict[str, Any]], dict[str, Any]]
) -> Response:
    state = get_state()
    where, params = scoped(state, grant)
    with connect(state.data_file) as conn:
        who = tenant(conn, grant)
        return jsonify({"tenant": who, **handler(conn, where, params, who)})


@bp.route("/assistant", methods=["GET", "OPTIONS"])
def assistant_status() -> Response:
    grant = authenticate(get_state())
    require(grant, ("ai", "can_query"))
    return _assistant(
        grant, lambda conn, where, params, who: {"ready": True, "suggestions": list(assistant.SUGGESTIONS)}
    )


@bp.route("/assistant/ask", methods=["POST", "OPTIONS"])
def ask() -> Response:
    body = request.get_json(silent=True)
    question = body.get("question") if isinstance(body, dict) else None
    state = get_state()
    grant = authenticate(state)  # authenticate before validating: 401/403 win over 400
    require(grant, ("ai", "can_query"))
    if not isinstance(question, str) or not question.strip() or len(question) > assistant.MAX_QUESTION:
        raise ApiError(
            400,
            "invalid_request",
            f"question must be a non-empty string of at most {assistant.MAX_QUESTION} characters",
            field="question",
        )
    return _assistant(
        grant,
        lambda conn, where, params, who: assistant.answer(
            conn, question, where, params, who["name"] or "your organisation"
        ),
    )
