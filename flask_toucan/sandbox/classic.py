"""The classic profile's token endpoint, built on Authlib's authorization server.

Self-hosted Toucan (docs-v3 "Embed SDK authentication") exchanges the host's
signed assertion at a Keycloak-style realm endpoint::

    POST {base}/api/auth/realms/{tenant}/protocol/openid-connect/token
    grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=...&scope=embed

as the confidential client ``toucan-embed-client`` (``client_secret_basic`` or
``client_secret_post``). This module is the sandbox's stand-in for it, written
with Authlib's *server* side (``AuthorizationServer``, a grant built on
``JWTBearerGrant``, Authlib's registered client authentication) so that our
client is judged by an implementation we did not write. Host assertions are
verified with joserfc (:mod:`.hostkeys`), never with ``flask_toucan.verify_token``.

It behaves like Keycloak's JWT Authorization Grant (:mod:`.keycloak`): the
``jti`` is spent before the signature is checked, so a retried duplicate is
"Token reuse detected"; ``aud`` is one string (the realm issuer or the token
endpoint, or the sandbox's configured ``audience``, standing in for the value
Toucan's admin interface shows); an assertion lives at most 300 s past its
``iat``; ``nbf`` gets no clock skew; only asymmetric algorithms.

Refusals are RFC 6749 error JSON, with Keycloak's codes: no client id is 401
``invalid_client`` (so is an unknown one); the embed client with a missing or
wrong secret is 401 ``unauthorized_client``; a missing ``embed`` scope or an
unknown scope is 400 ``invalid_scope``; a bad signature, an expired, replayed
or over-long assertion, a wrong ``aud``, ``sub`` other than the client id or an
``embed_context`` over 3.5 KB is 400 ``invalid_grant``.
"""

from __future__ import annotations

import hmac
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from authlib.oauth2.rfc7523 import JWTBearerGrant
from flask import Blueprint, Flask, Response, jsonify, request

from ..exceptions import InvalidTokenError
from .grants import Grant, RequestInvalid, grant_from_claims
from .hostkeys import MAX_ASSERTION_BYTES
from .keycloak import check_claims, spend_jti
from .state import SandboxState, get_state

bp = Blueprint("sandbox_classic", __name__)

TOKEN_PATH = "/api/auth/realms/<tenant>/protocol/openid-connect/token"  # noqa: S105 (a URL rule)
#: Keycloak 26's own path (no ``/api/auth``: Toucan's prefix), served too.
KEYCLOAK_TOKEN_PATH = "/realms/<tenant>/protocol/openid-connect/token"  # noqa: S105 (a URL rule)
EMBED_SCOPE = "embed"
#: The scopes the realm knows; any other is ``invalid_scope``.
KNOWN_SCOPES = (EMBED_SCOPE, "openid")
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
BAD_CREDENTIALS = "Invalid client or Invalid client credentials"  # Keycloak's wording


class UnauthorizedClient(UnauthorizedClientError):
    """Keycloak's answer to a known client with a wrong secret: 401 ``unauthorized_client``."""

    status_code = 401


class EmbedClient:
    """The one confidential client of the Embed Manager (Authlib's ClientMixin duck type)."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self._secret = client_secret

    def __repr__(self) -> str:
        return f"EmbedClient({self.client_id!r})"

    def check_client_secret(self, client_secret: str) -> bool:
        return bool(hmac.compare_digest(client_secret.encode(), self._secret.encode()))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in AUTH_METHODS

    def check_grant_type(self, grant_type: str) -> bool:
        return bool(grant_type == JWTBearerGrant.GRANT_TYPE)

    def get_allowed_scope(self, scope: str) -> str:
        return EMBED_SCOPE if EMBED_SCOPE in scope_to_list(scope) else ""


class EmbedJWTBearerGrant(JWTBearerGrant):
    """RFC 7523 jwt-bearer, as the classic embed flow uses it.

    Unlike plain RFC 7523 (where the assertion authenticates the client), the
    embed client authenticates with its secret *and* signs the assertion, whose
    ``sub`` must be the client id; the user is ``embed_context.username``.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def authenticate_token_endpoint_client(self) -> EmbedClient:
        """Authlib's client authentication, its refusals told apart as Keycloak does."""
        try:
            client: EmbedClient = super().authenticate_token_endpoint_client()
            return client
        except InvalidClientError:
            pass
        basic_id, _ = extract_basic_authorization(self.request.headers)
        client_id = basic_id or self.request.form.get("client_id")
        if not client_id:
            raise InvalidClientError(status_code=401, description="Missing client_id parameter")
        if client_id == get_state().options.exchange_client_id:
            raise UnauthorizedClient(description=BAD_CREDENTIALS)
        raise InvalidClientError(status_code=401, description=BAD_CREDENTIALS)

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        self.request.client = client
        scopes = scope_to_list(self.request.payload.scope or "") or []
        unknown = [s for s in scopes if s not in KNOWN_SCOPES]
        if unknown:
            raise InvalidScopeError(
                description=f"Invalid scopes: {' '.join(unknown)} (the realm knows {', '.join(KNOWN_SCOPES)})"
            )
        if EMBED_SCOPE not in scopes:
            raise InvalidScopeError(description=f"the '{EMBED_SCOPE}' scope is required")
        assertion = self.request.form.get("assertion")
        if not assertion:
            raise InvalidRequestError("Missing 'assertion' in request")
        state = get_state()
        if len(assertion.encode()) > MAX_ASSERTION_BYTES:
            raise InvalidGrantError(description="the assertion is over 8 KB")
        spend_jti(assertion, state.seen_jti)  # before the signature: a resent assertion is reuse
        claims = self.process_assertion_claims(assertion)
        check_claims(claims, token_endpoint=request.base_url, extra=(state.options.audience,))
        if claims.get("sub") != client.client_id:
            raise InvalidGrantError(description="the assertion's sub must be the embed client id")
        try:
            grant = grant_from_claims(
                claims,
                declared=state.options.attributes,
                lifetime=state.options.token_lifetime,
                source="exchange",
            )
        except RequestInvalid as exc:
            raise InvalidGrantError(description=exc.message) from None
        self.request.user = grant

    def process_assertion_claims(self, assertion: str) -> dict[str, Any]:
        """joserfc verification against the host's JWKS (see :mod:`.hostkeys`)."""
        state = get_state()
        if state.host_keys is None or state.options.issuer is None:
            raise InvalidGrantError(description="signed mode is off (start the sandbox with a host JWKS URL)")
        try:
            return state.host_keys.verify(assertion, issuer=state.options.issuer, audience=audiences(state))
        except InvalidTokenError as exc:
            raise InvalidGrantError(description=exc.message) from None

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        grant: Grant = self.request.user
        state = get_state()
        token = {
            "access_token": state.codec.encode(grant),
            "token_type": "Bearer",
            "expires_in": state.options.token_lifetime,
            "scope": EMBED_SCOPE,
        }
        state.stats.incr("exchanges")
        return 200, token, self.TOKEN_RESPONSE_HEADER


def audiences(state: SandboxState) -> list[str]:
    """The realm issuer, this endpoint's own URL (Keycloak) and the configured audience (docs-v3's
    value from the admin interface); :func:`.keycloak.check_claims` then wants one string."""
    endpoint = request.base_url
    return [endpoint.removesuffix("/protocol/openid-connect/token"), endpoint, state.options.audience]


def create_server(app: Flask, state: SandboxState) -> AuthorizationServer:
    client = EmbedClient(state.options.exchange_client_id, state.options.exchange_client_secret)
    server = AuthorizationServer(
        app,
        query_client=lambda client_id: client if client_id == client.client_id else None,
        save_token=lambda token, req: None,  # the token is self-contained (encrypted grant)
    )
    server.register_grant(EmbedJWTBearerGrant)
    return server


def _oauth_error(status: int, error: str, description: str) -> Response:
    resp = jsonify({"error": error, "error_description": description})
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


@bp.post(TOKEN_PATH)
@bp.post(KEYCLOAK_TOKEN_PATH)
def token(tenant: str) -> Response:
    state = get_state()
    state.stats.incr("exchange_requests")
    fault = state.faults.apply()
    if fault is not None:
        state.stats.incr("faults_injected")
        resp = _oauth_error(fault.status, fault.oauth_error, "injected fault (sandbox fault injection)")
        if fault.retry_after is not None:
            resp.headers["Retry-After"] = str(fault.retry_after)
        return resp
    if tenant != state.options.tenant:
        return _oauth_error(404, "invalid_request", "unknown realm (see the sandbox's tenant option)")
    server: AuthorizationServer = state.oauth_server
    answer: Response = server.create_token_response()
    if state.faults.lose():  # served (jti spent, token minted), then lost by a proxy on the way back
        state.stats.incr("faults_injected")
        lost = Response("Gateway Timeout", status=504, mimetype="text/plain")
        return lost
    return answer
