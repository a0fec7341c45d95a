"""One base exception, one subclass per failure.

Every error the extension raises on a request path carries the HTTP status and a
short machine-readable ``code``; the blueprint's error handler turns it into a
JSON body. Messages are written for the person reading the log: they name what
went wrong and which setting to look at, and never quote a secret, a token or an
upstream response body (those may echo credentials back).
"""

from __future__ import annotations

from typing import Any


class ToucanError(Exception):
    """Base class for every flask-toucan error."""

    status_code: int = 500
    code: str = "toucan_error"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(ToucanError):
    """A ``TOUCAN_*`` setting is missing or unsafe; raised at ``init_app``."""

    code = "configuration_error"


class LoginRoutesOff(ToucanError):
    """``{prefix}/login`` or ``/callback`` was asked for, but no OAuth registry was given."""

    status_code = 404
    code = "login_routes_off"


class AuthenticationRequired(ToucanError):
    """No logged-in user (or the session was logged out / revoked)."""

    status_code = 401
    code = "not_authenticated"


class SessionExpired(AuthenticationRequired):
    """The login ended on the server: idle timeout, absolute lifetime, or the provider's word.

    Still a 401 (pages show the log-in placeholder, the refresh script stops
    and dispatches ``toucan:session-expired``); ``reason`` says which:
    ``idle``, ``lifetime`` or ``revoked`` (the identity provider refused the
    refresh token, or named another subject).
    """

    code = "session_expired"

    def __init__(self, message: str, *, reason: str = "idle") -> None:
        super().__init__(message)
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["reason"] = self.reason
        return body


class LoginError(ToucanError):
    """The OpenID Connect callback failed (state, id_token, provider error)."""

    status_code = 400
    code = "login_failed"


class BadRequest(ToucanError):
    """The request body or parameters are malformed."""

    status_code = 400
    code = "bad_request"


class CSRFError(ToucanError):
    """Missing or invalid CSRF token, or a cross-site request."""

    status_code = 403
    code = "csrf_failed"


class PermissionDenied(ToucanError):
    """The user may not have a token for this component or permission set."""

    status_code = 403
    code = "permission_denied"


class AttributeMappingError(ToucanError):
    """A required attribute mapped to nothing usable: no token is minted (fail closed)."""

    status_code = 403
    code = "attribute_mapping_failed"


class EmbedContextTooLarge(AttributeMappingError):
    """The classic profile's ``embed_context`` is above Toucan's 3.5 KB: nothing is sent.

    ``size`` is the compact JSON size in bytes; the message names it and the
    limit, never the content (it may hold secrets).
    """

    code = "embed_context_too_large"

    def __init__(self, message: str, *, size: int = 0, limit: int = 3584) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class RateLimited(ToucanError):
    """Too many token requests for this session."""

    status_code = 429
    code = "rate_limited"


class UpstreamError(ToucanError):
    """The Toucan token API (or the token exchange endpoint) failed or answered badly."""

    status_code = 503
    code = "upstream_unavailable"


class UpstreamRejected(UpstreamError):
    """Toucan (or the exchange endpoint) gave a permanent answer: a 4xx other than 408/429.

    Not an outage: retrying will not help until someone fixes the configuration
    or the subscription, so it carries no ``retry_after`` and the refresh
    endpoint answers 502. ``upstream_code`` is Toucan's ``code`` from its
    ``{"code", "message"}`` envelope (e.g. ``NO_ACTIVE_SUBSCRIPTION``) or the
    OAuth ``error``; it is safe to log and to show. Toucan's free-text
    ``message`` is never carried (it is not ours to echo to a browser).
    """

    status_code = 502
    code = "upstream_rejected"

    def __init__(self, message: str, *, upstream_code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_code = upstream_code
        self.upstream_status = status

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.upstream_code is not None:
            body["upstream_code"] = self.upstream_code
        return body


class UpstreamProtocolError(UpstreamError):
    """Toucan (or the exchange endpoint) answered 200 with a body we cannot use.

    No JSON, a wrong shape, a token of the wrong type, an ``expiresIn`` /
    ``expires_in`` that is not a bounded positive number of seconds: the
    upstream broke the protocol. Not an outage we can wait out with a known
    delay, so the refresh endpoint answers 502 without ``Retry-After`` (the
    refresh script backs off) and pages show the ``unavailable`` placeholder.
    Never a 500, never a token built from part of the answer.
    """

    status_code = 502
    code = "upstream_protocol_error"


class StoreUnavailable(ToucanError):
    """The shared store (Redis, the file store) failed: degrade, never 500.

    Pages show the ``unavailable`` placeholder; the refresh endpoint answers
    503 with ``Retry-After``. The message names the store's kind, never its URL
    (which may hold a password).
    """

    status_code = 503
    code = "store_unavailable"

    def __init__(self, message: str, *, retry_after: int | None = 5) -> None:
        super().__init__(message, retry_after=retry_after)


class InvalidTokenError(ToucanError):
    """A signed token failed verification (signature, algorithm, claims)."""

    status_code = 401
    code = "invalid_token"


__all__ = [
    "AttributeMappingError",
    "AuthenticationRequired",
    "BadRequest",
    "CSRFError",
    "ConfigurationError",
    "EmbedContextTooLarge",
    "InvalidTokenError",
    "LoginError",
    "LoginRoutesOff",
    "PermissionDenied",
    "RateLimited",
    "SessionExpired",
    "StoreUnavailable",
    "ToucanError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamRejected",
]
