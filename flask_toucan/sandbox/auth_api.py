"""The server-to-server endpoints: token API, introspection, admin.

``POST /embed/generate-token`` (and the older documented path
``POST /api/generate-token``) and ``POST /embed/introspect`` need the
``x-api-key`` header (compared in constant time). The classic profile's
token endpoint lives in :mod:`.classic`. ``/_sandbox/*`` lets tests read
counters and inject faults at run time. Errors are Toucan's ``{code, message}``.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request
from joserfc import jws
from joserfc.errors import JoseError

from ..exceptions import InvalidTokenError
from .codec import TokenRejected
from .errors import ApiError, json_error
from .faults import FAULT_FIELDS
from .grants import Grant, RequestInvalid, grant_from_claims, grant_from_request
from .state import SandboxState, get_state

bp = Blueprint("sandbox_auth", __name__)


def require_api_key(state: SandboxState) -> None:
    given = request.headers.get("x-api-key", "")
    if not given or not hmac.compare_digest(given.encode(), state.options.api_key.encode()):
        raise ApiError(401, "unauthorized", "missing or wrong x-api-key header")


def _json_body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(
            400, "invalid_request", "the body must be JSON (Content-Type: application/json)", field="body"
        )
    return body


def _inject_fault(state: SandboxState) -> Response | None:
    fault = state.faults.apply()
    if fault is None:
        return None
    state.stats.incr("faults_injected")
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
    return json_error(fault.status, fault.error, "injected fault (sandbox fault injection)", headers)


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


@bp.post("/embed/generate-token")
@bp.post("/api/generate-token")  # the older path Toucan's docs also show
def generate_token() -> Response:
    state = get_state()
    state.stats.incr("token_requests")
    faulty = _inject_fault(state)
    if faulty is not None:
        return faulty
    require_api_key(state)
    try:
        grant = grant_from_request(
            _json_body(),
            declared=state.options.attributes,
            roles=state.options.roles,
            lifetime=state.options.token_lifetime,
        )
    except RequestInvalid as exc:
        raise ApiError(400, "invalid_request", exc.message, field=exc.field) from None
    state.stats.incr("tokens_issued")
    return _no_store(jsonify({"token": state.codec.encode(grant), "expiresIn": state.options.token_lifetime}))


def verify_host_token(state: SandboxState, token: str) -> dict[str, Any]:
    """Verified claims of a host-signed JWT (signed mode), or :class:`InvalidTokenError`."""
    assert state.host_keys is not None and state.options.issuer is not None
    return state.host_keys.verify(token, issuer=state.options.issuer, audience=state.options.audience)


def host_token_expired(token: str) -> bool:
    """Whether a host JWT that failed verification did so (also) because it expired."""
    try:
        exp = json.loads(jws.extract_compact(token.encode()).payload).get("exp")
    except (JoseError, ValueError, AttributeError):
        return False
    return isinstance(exp, int | float) and not isinstance(exp, bool) and exp < time.time()


def grant_of(state: SandboxState, token: str, *, check_expiry: bool = True) -> Grant:
    """The grant of an opaque token, or of a host JWT in direct mode (see docs)."""
    if token.count(".") == 2 and state.host_keys is not None:
        try:
            claims = verify_host_token(state, token)
        except InvalidTokenError as exc:
            if host_token_expired(token):
                raise TokenRejected(
                    "token_expired", "the token has expired; ask the host app for a new one"
                ) from None
            raise TokenRejected("invalid_token", exc.message) from None
        try:
            return grant_from_claims(
                claims,
                declared=state.options.attributes,
                lifetime=state.options.token_lifetime,
                source="direct",
            )
        except RequestInvalid as exc:
            raise TokenRejected("invalid_token", exc.message) from None
    return state.codec.decode(token, check_expiry=check_expiry)


@bp.post("/embed/introspect")
def introspect() -> Response:
    state = get_state()
    require_api_key(state)
    state.stats.incr("introspections")
    body = _json_body()
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise ApiError(400, "invalid_request", "token must be a non-empty string", field="token")
    return _no_store(jsonify(introspection(state, token)))


def introspection(state: SandboxState, token: str) -> dict[str, Any]:
    """What the token grants; ``{"active": false, "error": ...}`` when it grants nothing."""
    try:
        return grant_of(state, token, check_expiry=False).introspection()
    except TokenRejected as exc:
        return {"active": False, "error": exc.code}


@bp.get("/_sandbox/stats")
def stats() -> Response:
    state = get_state()
    require_api_key(state)
    return jsonify(state.stats_snapshot())


@bp.post("/_sandbox/reset")
def reset() -> Response:
    state = get_state()
    require_api_key(state)
    reset_state(state)
    return jsonify({"stats": state.stats_snapshot(), "faults": state.faults.settings()})


def reset_state(state: SandboxState) -> None:
    """Zero the counters and restore the start-up fault settings."""
    state.stats.reset()
    if state.host_keys is not None:
        state.host_keys.fetches = 0
    o = state.options
    state.faults.update(**{name: getattr(o, name) for name in FAULT_FIELDS})


@bp.route("/_sandbox/faults", methods=["GET", "POST"])
def faults() -> Response:
    state = get_state()
    require_api_key(state)
    if request.method == "POST":
        body = _json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "the body must be a JSON object", field="body")
        try:
            state.faults.update(**body)
        except ValueError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
    return jsonify(state.faults.settings())
