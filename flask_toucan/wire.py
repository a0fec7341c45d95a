"""Toucan AI's token API, as its public documentation describes it.

Everything that knows the vendor's field names lives here (see
``docs/wire.md``), so following a change of their API touches one module.

Request  ``POST {base}/embed/generate-token`` with ``x-api-key``::

    {"user": {"distinctId": "...", "role": "explorer", "attributes": {...}},
     "permissions": {"dashboard": {"can_view": true}, "ai": {"can_query": true}}}

Response ``{"token": "<opaque, encrypted>", "expiresIn": 3600 | "1h"}``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from . import hints
from .exceptions import UpstreamError, UpstreamProtocolError, UpstreamRejected
from .mappers import AttributeValue, Permissions

#: A lifetime above this is not a short-lived token; refuse it rather than cache it.
MAX_UPSTREAM_LIFETIME = 24 * 3600
MAX_TOKEN_LENGTH = 16 * 1024
#: Toucan's error codes look like ``NO_ACTIVE_SUBSCRIPTION``; anything else is not carried.
#: (Patterns are strings, compiled by ``re``'s cache on first use rather than at import.)
_ERROR_CODE = r"^[A-Z0-9_]{1,64}$"
#: 4xx statuses that mean "try again later", not "this will never work".
TRANSIENT_4XX = frozenset({408, 429})

log = logging.getLogger("flask_toucan")
_DURATION = r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s?)?\s*$"


def build_request(
    distinct_id: str, role: str, attributes: Mapping[str, AttributeValue], permissions: Permissions
) -> dict[str, Any]:
    return {
        "user": {"distinctId": distinct_id, "role": role, "attributes": dict(attributes)},
        "permissions": {k: dict(v) for k, v in permissions.items()},
    }


def parse_expires_in(value: Any) -> int:
    """Seconds from ``expiresIn``: a number of seconds, or a duration such as ``"1h"``, ``"15m"``.

    ``ValueError`` for anything else, including what ``int()`` itself would
    choke on differently (``inf`` from a JSON ``1e999`` raises ``OverflowError``,
    a list ``TypeError``): the caller maps one exception to one protocol error.
    """
    if isinstance(value, bool):
        raise ValueError("boolean")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a finite number")
    if isinstance(value, int | float):
        seconds = int(value)
    elif isinstance(value, str) and value.strip() and len(value) <= 64:
        m = re.match(_DURATION, value.lower())
        if not m or not any(m.groups()):
            raise ValueError("unparsable duration")
        d, h, mi, s = (int(g) if g else 0 for g in m.groups())
        seconds = d * 86400 + h * 3600 + mi * 60 + s
    else:
        raise ValueError("missing")
    return seconds


def printable_ascii(value: str) -> bool:
    """Whether an opaque token is visible ASCII only (``!`` to ``~``).

    Opaque tokens (JWE compact, OAuth access tokens) are base64url and dots.
    Anything else is refused before it reaches a page: whitespace and control
    characters, and non-ASCII (a lone surrogate from a JSON ``\\ud800`` cannot
    even be encoded into the page's UTF-8).
    """
    return value.isascii() and all(0x21 <= ord(c) <= 0x7E for c in value)


def error_code(body: bytes) -> str | None:
    """Toucan's ``code`` from its ``{"code": "UPPER_SNAKE", "message": "..."}`` envelope.

    Only a short upper-snake identifier is kept: it is safe to log and to
    show. The free-text ``message`` is never read out (not ours to echo).
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) and re.match(_ERROR_CODE, code) else None


def error_for_status(status: int, body: bytes, host: str) -> UpstreamError:
    """A permanent 4xx is :class:`UpstreamRejected`; anything else stays transient."""
    if 400 <= status < 500 and status not in TRANSIENT_4XX:
        code = error_code(body)
        hint = hints.token_api_refused(status, code)
        log.warning(
            "Toucan token API at %s refused the request: HTTP %s, code %s%s",
            host,
            status,
            code,
            f"; {hint}" if hint else "",
        )
        named = f" ({code})" if code else ""
        return UpstreamRejected(
            hints.with_hint(f"Toucan token API at {host} refused the request: HTTP {status}{named}", hint),
            upstream_code=code,
            status=status,
        )
    retry_after = 5 if status in TRANSIENT_4XX or status >= 500 else None
    return UpstreamError(f"Toucan token API at {host} answered HTTP {status}", retry_after=retry_after)


def parse_response(status: int, body: bytes, host: str) -> tuple[str, int]:
    """Return ``(token, lifetime_seconds)`` or raise :class:`UpstreamError`.

    A 4xx other than 408/429 is :class:`UpstreamRejected` (permanent: a
    wrong key, no subscription), carrying Toucan's error ``code``.

    The token is never decoded: Toucan encrypts it, and the host has no
    business reading it. Its lifetime comes from ``expiresIn`` alone.
    """
    if status != 200:
        raise error_for_status(status, body, host)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: a pathologically nested body
        raise UpstreamProtocolError(f"Toucan token API at {host} sent a body that is not JSON") from None
    if not isinstance(data, dict):
        raise UpstreamProtocolError(f"Toucan token API at {host} sent an unexpected JSON shape")
    token = data.get("token")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise UpstreamProtocolError(f"Toucan token API at {host} sent no usable token")
    if not printable_ascii(token):
        raise UpstreamProtocolError(f"Toucan token API at {host} sent a malformed token")
    try:
        lifetime = parse_expires_in(data.get("expiresIn"))
    except ValueError:
        raise UpstreamProtocolError(f"Toucan token API at {host} sent an unparsable expiresIn") from None
    if lifetime <= 0:
        raise UpstreamProtocolError(f"Toucan token API at {host} sent a token that is already expired")
    if lifetime > MAX_UPSTREAM_LIFETIME:
        raise UpstreamProtocolError(
            f"Toucan token API at {host} sent a lifetime above {MAX_UPSTREAM_LIFETIME} s"
        )
    return token, lifetime
