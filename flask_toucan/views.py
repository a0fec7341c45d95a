"""The blueprint: login / callback / logout, the refresh endpoint, JWKS.

Thin Flask layer over the extension: each view checks the request, calls the
extension, and lets :func:`handle_error` turn a :class:`ToucanError` into a
JSON body with the right status (and ``Retry-After`` where it applies).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from flask import Blueprint, current_app, g, jsonify, redirect, request, session, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from . import csrf, guards, identity, issuing, liveness, page, rp_logout
from .components import loggable_code
from .config import ToucanConfig
from .exceptions import (
    BadRequest,
    ConfigurationError,
    CSRFError,
    LoginError,
    LoginRoutesOff,
    RateLimited,
    ToucanError,
    UpstreamError,
    UpstreamRejected,
)
from .mappers import KINDS
from .ratelimit import Window
from .redirects import safe_next
from .state import SESSION_ID, get_state
from .tokens import EmbedToken
from .user import ToucanUser

log = logging.getLogger("flask_toucan")

SESSION_NEXT = "_toucan_next"

# What a rejected id_token raises: Authlib's own errors (authlib.jose, older Authlib)
# and, since Authlib validates id_tokens with joserfc, joserfc's JoseError, which
# derives from neither AuthlibBaseError nor ValueError.
ID_TOKEN_ERRORS: tuple[type[Exception], ...] = (AuthlibBaseError, ValueError)
try:
    from joserfc.errors import JoseError
except ImportError:  # pragma: no cover - older Authlib without joserfc
    pass
else:
    ID_TOKEN_ERRORS = (*ID_TOKEN_ERRORS, JoseError)


#: Endpoints that answer JSON (every error too), never an HTML error page.
#: The blueprint's JSON routes (errors as JSON, ``no-referrer``, ``nosniff``).
JSON_ENDPOINTS = (
    "toucan.token",
    "toucan.jwks",
    "toucan.assistant_ask",
    "toucan.backchannel_logout",
    "toucan.activity",
)
#: Those whose answers hold a token or user data (or must not be cached, Back-Channel Logout 2.8).
NO_STORE_ENDPOINTS = ("toucan.token", "toucan.assistant_ask", "toucan.backchannel_logout", "toucan.activity")


def handle_error(exc: ToucanError) -> Response:
    body = exc.to_dict()
    retry_after = exc.retry_after
    if isinstance(exc, UpstreamRejected):
        # Permanent: logged with Toucan's code only (its free text is not ours to
        # repeat), and no Retry-After, so no client is told that waiting helps.
        code = loggable_code(exc.upstream_code)
        log.warning(
            "flask-toucan: Toucan rejected the token request (code %s, HTTP %s)", code, exc.upstream_status
        )
        if "upstream_code" in body:
            body["upstream_code"] = code
        body.pop("retry_after", None)
        retry_after = None
    elif exc.status_code >= 500:
        log.warning("flask-toucan: %s: %s", type(exc).__name__, exc.message)
    response = jsonify(body)
    response.status_code = exc.status_code
    response.headers["Cache-Control"] = "no-store"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def handle_http_error(exc: HTTPException) -> HTTPException | Response:
    """Werkzeug's own errors as JSON on API routes: a 413, a client that hung up mid-body,
    and the 500 Flask raises for an unexpected exception (name only, never a traceback)."""
    if request.endpoint not in JSON_ENDPOINTS or exc.code is None:
        return exc
    code = {400: "bad_request", 413: "payload_too_large"}.get(exc.code, "http_error")
    if exc.code >= 500:
        code = "internal_error"
    response = jsonify({"error": code, "message": str(exc.name)})
    response.status_code = exc.code
    return response


def security_headers(response: Response) -> Response:
    """Headers of every refresh answer (success and every error) and of the JWKS.

    The refresh body holds a bearer token: never stored by a cache
    (``no-store``), never leaking the page URL onward (``no-referrer``), never
    sniffed into HTML. The JWKS is public and meant to be cached, so it keeps
    its ``max-age``; ``no-referrer`` and ``nosniff`` cost it nothing.
    """
    endpoint = request.endpoint
    if endpoint not in JSON_ENDPOINTS:
        return response
    headers = response.headers
    if (
        headers.get("Referrer-Policy") == "no-referrer"
        and headers.get("X-Content-Type-Options") == "nosniff"
        and headers.get("Cache-Control") == "no-store"
    ):
        return response  # all there already (the refresh's 200: REFRESH_HEADERS)
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    if endpoint in NO_STORE_ENDPOINTS:
        headers["Cache-Control"] = "no-store"
    return response


def create_blueprint(config: ToucanConfig, template_folder: str) -> Blueprint:
    bp = Blueprint(
        "toucan",
        __name__,
        url_prefix=config.url_prefix,
        template_folder=template_folder,
        static_folder="static",
        static_url_path="/static",
    )
    bp.register_error_handler(ToucanError, handle_error)
    bp.register_error_handler(HTTPException, handle_http_error)
    bp.after_request(security_headers)
    bp.add_url_rule("/login", "login", login, methods=["GET"])
    bp.add_url_rule("/callback", "callback", callback, methods=["GET"])
    bp.add_url_rule("/logout", "logout", logout, methods=["POST"])
    bp.add_url_rule("/logged-out", "logged_out", logged_out, methods=["GET"])
    # GET is routed too, only to answer 405 in JSON (a routing-level 405 would be
    # werkzeug's HTML page: blueprint error handlers do not see routing errors).
    bp.add_url_rule("/token", "token", refresh_token, methods=["GET", "POST"])
    bp.add_url_rule("/.well-known/jwks.json", "jwks", jwks, methods=["GET"])
    return bp


# --------------------------------------------------------------------- login
def _oauth_client() -> Any:
    """The Authlib client resolved (with PKCE S256) at ``init_app``; see oauth_client.py."""
    client = get_state().oauth_client
    if client is None:  # a 404 naming the fix, not a 500 (flask toucan check says it too)
        raise LoginRoutesOff(
            "the login routes are off: no OAuth registry was given (pass Toucan(app, oauth=oauth)), "
            "or the app logs users in itself with toucan.login_user(claims)"
        )
    return client


def login() -> Response:
    client = _oauth_client()
    target = safe_next(request.args.get("next"))
    try:  # the first login loads the provider's metadata: it may be down
        response: Response = client.authorize_redirect(url_for("toucan.callback", _external=True))
    except requests.RequestException:
        raise UpstreamError("the identity provider is unreachable; try again") from None
    # Stored after authorize_redirect so the state and the target travel together.
    if target is not None:
        session[SESSION_NEXT] = target
    else:
        session.pop(SESSION_NEXT, None)
    return response


def callback() -> Response:
    client = _oauth_client()
    if "error" in request.args:
        code = str(request.args.get("error"))[:64]
        raise LoginError(f"the identity provider refused the login ({code})")
    state_param = request.args.get("state")
    if not state_param or client.framework.get_state_data(session, state_param) is None:
        session.pop(SESSION_NEXT, None)
        raise LoginError("the login state does not match; start the login again")
    try:
        metadata = client.load_server_metadata()
    except requests.RequestException:
        raise UpstreamError("the identity provider is unreachable; try again") from None
    issuer = metadata.get("issuer")
    if not issuer:
        raise ConfigurationError("the provider's metadata has no issuer")
    # RFC 9207: a provider that names itself in the redirect must name the right one
    # (defends against mix-up attacks when several providers are configured).
    if "iss" in request.args and request.args["iss"] != issuer:
        raise LoginError("the authorization response comes from another issuer")
    claims_options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client.client_id},
        "sub": {"essential": True},
    }
    try:
        token = client.authorize_access_token(claims_options=claims_options)
    except MismatchingStateError:
        session.pop(SESSION_NEXT, None)
        raise LoginError("the login state does not match; start the login again") from None
    except OAuthError as exc:
        raise LoginError(f"the token request failed ({str(exc.error)[:64]})") from None
    except requests.RequestException:
        raise UpstreamError("the identity provider is unreachable; try again") from None
    except ID_TOKEN_ERRORS as exc:
        log.info("flask-toucan: id_token rejected: %s", type(exc).__name__)
        raise LoginError("the identity provider's id_token was rejected") from None
    userinfo = token.get("userinfo")
    if not userinfo:
        raise LoginError("the identity provider sent no id_token (is 'openid' in the scope?)")
    claims = dict(userinfo)
    # The provider's session id and the id_token, kept server-side with the login record
    # (backchannel.record_login): Back-Channel Logout names the sid, RP logout sends the id_token.
    g._toucan_provider_login = {"sid": userinfo.get("sid"), "id_token": token.get("id_token")}
    if get_state().config.fetch_userinfo and metadata.get("userinfo_endpoint"):
        claims = _merge_userinfo(client, token, claims)
    target = session.pop(SESSION_NEXT, None)
    # The provider's tokens stay server-side (the login record's idp: key), for revalidation.
    identity.login_user(claims, issuer=issuer, provider_token=token)
    return redirect(safe_next(target) or get_state().config.login_redirect)


def _merge_userinfo(client: Any, token: Any, claims: dict[str, Any]) -> dict[str, Any]:
    """Add the UserInfo endpoint's claims (groups, custom claims) to the id_token's.

    OpenID Connect Core 5.3.2: the UserInfo ``sub`` must equal the id_token's,
    else the response is discarded; id_token claims win on conflict.
    """
    try:
        extra = client.userinfo(token=token)
    except Exception as exc:
        log.info("flask-toucan: userinfo request failed: %s", type(exc).__name__)
        raise LoginError("the identity provider's userinfo request failed") from None
    if extra.get("sub") != claims.get("sub"):
        raise LoginError("the userinfo subject does not match the id_token")
    return {**dict(extra), **claims}


def logout() -> Response:
    state = get_state()
    token = request.form.get("csrf_token") or request.headers.get(state.config.csrf_header)
    sid = session.get(SESSION_ID)
    if sid is not None and not csrf.check_token(current_app, token, sid, state.config.csrf_max_age):
        raise CSRFError("missing or invalid CSRF token")
    at_provider = rp_logout.provider_logout(state)  # before the login's details go
    identity.logout_user()
    session.clear()
    target = safe_next(request.form.get("next")) or state.config.logout_redirect
    if at_provider is not None:
        url, logout_state = at_provider
        session[rp_logout.SESSION_LOGOUT] = {"state": logout_state, "next": target}
        return redirect(url)
    return redirect(target)


def logged_out() -> Response:
    """Where the provider sends the browser after RP-initiated logout: on to the logout's ``next``.

    Only with the ``state`` sent to the provider; anything else goes to ``TOUCAN_LOGOUT_REDIRECT``.
    """
    pending = session.pop(rp_logout.SESSION_LOGOUT, None)
    fallback = get_state().config.logout_redirect
    if isinstance(pending, dict) and pending.get("state") == request.args.get("state"):
        return redirect(safe_next(pending.get("next")) or fallback)
    return redirect(fallback)


# ------------------------------------------------------------------- refresh
def refresh_token() -> Response:
    req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not a dozen
    if req.method != "POST":
        response = jsonify({"error": "method_not_allowed", "message": "use POST"})
        response.status_code = 405
        response.headers["Allow"] = "POST"
        response.headers["Cache-Control"] = "no-store"
        return response
    # Origin first (a cross-site request costs no store read), then the session record, the
    # cached token and the rate-limit count in one store round trip (no mint yet: CSRF and the
    # rate limit are checked before any).
    guards.check_same_origin(req.headers, req.host)
    # The request's page: its state, app, session and request, looked up once for every step below.
    here = page.current_page()
    kind, body_error = _refresh_kind()
    counted = None
    if kind is not None:
        windows = countable(REFRESH_BUCKET, here)
        counts = page.load(here, [kind], mint=False, count=windows)
        counted = (windows, counts) if windows and counts else None
    user = checked_post(
        REFRESH_BUCKET, "too many token requests; slow down", counted, origin_checked=True, at=here
    )
    if kind is None:
        assert body_error is not None
        raise body_error
    token = _refresh_token_for(kind, user, here)
    # What jsonify would send (compact, sorted keys, a newline), without its provider lookups;
    # with the headers security_headers gives every JSON answer (it then finds them there).
    body = _BODY_ENCODER.encode(token.as_json()) + "\n"
    return here.app.response_class(body, mimetype="application/json", headers=REFRESH_HEADERS)


#: ``json.dumps(..., separators=(",", ":"), sort_keys=True)`` with one encoder for every call.
_BODY_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)

#: Headers of a refresh's 200 (a bearer token: never stored; it differs per session cookie),
#: with what :func:`security_headers` gives every JSON answer, set here at once.
REFRESH_HEADERS = (
    ("Cache-Control", "no-store"),
    ("Vary", "Cookie"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
)


def _refresh_kind() -> tuple[str | None, BadRequest | None]:
    """The kind asked for, or the error to answer once the session and CSRF checks passed."""
    try:
        body = small_json_body()
        if not isinstance(body, dict) or set(body) - {"kind"}:
            raise BadRequest("the body must be a JSON object with only 'kind'")
        kind = body.get("kind", "dashboard")
        if not isinstance(kind, str) or kind not in KINDS:
            raise BadRequest(f"'kind' must be one of {', '.join(KINDS)}")
    except BadRequest as exc:
        return None, exc
    return kind, None


def _refresh_token_for(kind: str, user: ToucanUser, here: page.Page) -> EmbedToken:
    """The token read with the session record, or minted now for the miss that read found."""
    found = here.slots.get(kind)
    if found is None or found.permissions is None or (found.token is None and found.request is None):
        return issuing.issue_for(kind, user).token  # a refusal: issue_for raises the right error
    if found.token is not None:
        token, cached = found.token, True
    else:
        token, cached = page.mint_missed(found, here.state)
    issuing.remember(user, found.permissions, token, here.at)
    issuing.announce(user, token, cached, here.app)
    return token


MAX_REFRESH_BODY = 1024


REFRESH_BUCKET = "toucan-refresh"
#: Rate-limit windows and their counts, taken in the request's store read (see :func:`countable`).
Counted = tuple[list[Window], list[int]]


def countable(bucket: str, at: page.Page | None = None) -> list[Window]:
    """The rate-limit windows to count in this request's store read, else ``[]``.

    Only with rate limiting on and a CSRF token that is this session's: a
    request refused for its CSRF token (or its origin, checked before) counts
    nothing, as before the count joined the store read. The CSRF check is a
    local, memoised HMAC; :func:`checked_post` still makes it, in its order.
    ``at``: the request's page (saves the proxy lookups).
    """
    state = get_state() if at is None else at.state
    if state.limiter is None:
        return []
    sid = (session if at is None else at.at.session).get(SESSION_ID)
    token = (request if at is None else at.request).headers.get(state.config.csrf_header)
    if not isinstance(sid, str):
        return []
    if not csrf.check_token(current_app if at is None else at.app, token, sid, state.config.csrf_max_age):
        return []
    return state.limiter.windows(bucket, sid, time.time())


def checked_post(
    bucket: str,
    slow_down: str,
    counted: Counted | None = None,
    *,
    origin_checked: bool = False,
    at: page.Page | None = None,
) -> ToucanUser:
    """What every state-changing JSON route checks first; returns the logged-in user.

    In this order, so the cheapest refusal comes first and a refused request
    costs no store read: same-origin headers (:mod:`guards`: a malformed
    ``Origin`` is a 403, never a crash), a live login, the CSRF token bound to
    it, then the per-session rate limit counted in ``bucket`` (already
    ``counted`` in the request's one store read, or counted now).
    ``origin_checked``: the caller ran the same-origin check already; ``at``: the
    request's page (saves the proxy lookups).
    """
    state = get_state() if at is None else at.state
    req = request if at is None else at.request
    if not origin_checked:
        guards.check_same_origin(req.headers, req.host)
    user = identity.current_user()
    if user is None:
        raise liveness.ended_error(g)  # SessionExpired (code session_expired) after a timeout
    token = req.headers.get(state.config.csrf_header)
    sid = csrf.require(token) if at is None else csrf.require(token, at.app, state.config, at.at.session)
    if state.limiter is not None:
        now = time.time()
        if counted is not None:
            windows, counts = counted
        else:
            windows = state.limiter.windows(bucket, sid, now)
            counts = state.store.read([], windows, now)[1]
        retry_after = state.limiter.retry_after(windows, counts, now)
        if retry_after is not None:
            raise RateLimited(slow_down, retry_after=retry_after)
    return user


def small_json_body(max_bytes: int = MAX_REFRESH_BODY) -> Any:
    """A JSON route's body: empty means ``{}``; anything else small, strict JSON.

    The headers are checked first (:mod:`guards`), the read is bounded even
    without ``Content-Length``, and ``NaN`` / ``Infinity`` are refused.
    """
    guards.check_body_headers(request.headers, max_bytes)
    raw = _read_body(max_bytes)
    if len(raw) > max_bytes:
        raise BadRequest(f"the body is larger than {max_bytes} bytes")
    if not raw.strip():
        return {}
    guards.check_json_content_type(request.headers)
    try:
        # What json.loads(raw, parse_constant=...) does, with one decoder for every call.
        return _BODY_DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None


def _read_body(max_bytes: int) -> bytes:
    """Up to ``max_bytes + 1`` bytes of the body.

    The common case (a ``Content-Length`` that :func:`guards.check_body_headers`
    found to be a number within ``max_bytes``, within the app's
    ``MAX_CONTENT_LENGTH``) reads exactly that many bytes from the server's
    input, as werkzeug's length-limited stream would, without building that
    stream (a third of the refresh's body handling). Anything else (no length,
    a chunked body the server terminates, a length over the app's limit)
    goes through ``request.stream``, which knows those cases and answers 413.
    """
    environ = request.environ
    raw_length = environ.get("CONTENT_LENGTH")
    limit = request.max_content_length
    if raw_length and raw_length.isdigit() and not environ.get("wsgi.input_terminated"):
        length = int(raw_length)
        if length <= max_bytes and (limit is None or length <= limit):
            stream = environ["wsgi.input"]
            chunks, left = [], length
            while left > 0:
                chunk = stream.read(left)
                if not chunk:  # what werkzeug's stream calls a client that disconnected
                    raise BadRequest("the body is shorter than its Content-Length")
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
    data: bytes = request.stream.read(max_bytes + 1)
    return data


def _refuse_constant(name: str) -> Any:
    """``NaN`` / ``Infinity`` are not JSON (RFC 8259); Python's parser accepts them by default."""
    raise ValueError(name)


_BODY_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def public_jwks(config: ToucanConfig) -> dict[str, Any]:
    """The public keys of ``signed`` mode (current, next, fallbacks); none in ``api`` mode."""
    keys = config.keys
    if keys is None or keys.current.is_hmac:
        return {"keys": []}
    return keys.jwks()


def jwks() -> Response:
    keys = public_jwks(get_state().config)
    if not keys["keys"]:
        response = jsonify({"error": "not_found", "message": "no public keys in this mode"})
        response.status_code = 404
        return response
    response = jsonify(keys)
    # Verifiers cache the set; a rotation publishes the next key well before it signs.
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
