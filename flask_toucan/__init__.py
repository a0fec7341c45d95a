"""flask-toucan: embed Toucan AI dashboards and the AI assistant in Flask apps.

Short-lived, tenant-scoped tokens minted server-side (Toucan's token API, or
signed here for self-hosted deployments), handed to the ``<tc-dashboard>`` /
``<tc-ai-assistant>`` web components by Jinja macros, refreshed before expiry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    SessionExpired,
    StoreUnavailable,
    ToucanError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRejected,
)
from .signals import token_issued, user_logged_in, user_logged_out
from .tokens import EmbedToken
from .user import ToucanUser

if TYPE_CHECKING:
    from .assistant import AssistantSession
    from .extension import Toucan
    from .verify import verify_token

#: Imported on first use (PEP 562). ``import flask_toucan`` (the pytest plugin
#: does it in every test run of a host project; so do tools that only want the
#: exceptions or ``EmbedToken``) costs what Flask and PyJWT cost; the facade and
#: the modules it wires (views, components, CLI, store, minting) load with the
#: first ``flask_toucan.Toucan``.
_LAZY = {"AssistantSession": ".assistant", "Toucan": ".extension", "verify_token": ".verify"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "SessionExpired",
    "StoreUnavailable",
    "Toucan",
    "ToucanError",
    "ToucanUser",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamRejected",
    "token_issued",
    "user_logged_in",
    "user_logged_out",
    "verify_token",
]
