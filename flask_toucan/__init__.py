"""flask-toucan: embed Toucan AI dashboards and the AI assistant in Flask apps.

Short-lived, tenant-scoped tokens minted server-side (Toucan's token API, or
signed here for self-hosted deployments), handed to the ``<tc-dashboard>`` /
``<tc-ai-assistant>`` web components by Jinja macros, refreshed before expiry.
"""

from __future__ import annotations

# AssistantSession imports the MCP SDK only when a session opens (the ``mcp`` extra).
from .assistant import AssistantSession
from .exceptions import (
    AttributeMappingError,
    AuthenticationRequired,
    BadRequest,
    ConfigurationError,
    CSRFError,
    EmbedContextTooLarge,
    InvalidTokenError,
    LoginError,
    PermissionDenied,
    RateLimited,
    StoreUnavailable,
    ToucanError,
    UpstreamError,
    UpstreamRejected,
)
from .extension import Toucan
from .signals import token_issued, user_logged_in, user_logged_out
from .tokens import EmbedToken
from .user import ToucanUser
from .verify import verify_token

__all__ = [
    "AssistantSession",
    "AttributeMappingError",
    "AuthenticationRequired",
    "BadRequest",
    "CSRFError",
    "ConfigurationError",
    "EmbedContextTooLarge",
    "EmbedToken",
    "InvalidTokenError",
    "LoginError",
    "PermissionDenied",
    "RateLimited",
    "StoreUnavailable",
    "Toucan",
    "ToucanError",
    "ToucanUser",
    "UpstreamError",
    "UpstreamRejected",
    "token_issued",
    "user_logged_in",
    "user_logged_out",
    "verify_token",
]
