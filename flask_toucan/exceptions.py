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


class AuthenticationRequired(ToucanError):
    """No logged-in user (or the session was logged out / revoked)."""

    status_code = 401
    code = "not_authenticated"


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


class RateLimited(ToucanError):
    """Too many token requests for this session."""

    status_code = 429
    code = "rate_limited"


class UpstreamError(ToucanError):
    """The Toucan token API (or the token exchange endpoint) failed or answered badly."""

    status_code = 503
    code = "upstream_unavailable"


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
    "InvalidTokenError",
    "LoginError",
    "PermissionDenied",
    "RateLimited",
    "ToucanError",
    "UpstreamError",
]
