"""Which setting to look at when an upstream call fails: the "check X" end of an error.

An operator reading "HTTP 401, code UNAUTHORIZED" has to know the library to
guess that the API key is wrong; "check TOUCAN_API_KEY" says it. Each function
here maps what failed (the transport's ``what`` label, an HTTP status, the
upstream's error code) to the settings that decide it. Only setting names come
out of here, never a value. Core module: no Flask.
"""

from __future__ import annotations

#: What each outbound call's reachability depends on, by the transport's ``what`` label.
_WHERE = {
    "Toucan token API": "TOUCAN_BASE_URL / TOUCAN_HTTP_PROXY",
    "token exchange": "TOUCAN_EXCHANGE_URL / TOUCAN_HTTP_PROXY",
    "server-url": "TOUCAN_SERVER_URL (or TOUCAN_BASE_URL) / TOUCAN_HTTP_PROXY",
    "OIDC metadata": "the provider's server_metadata_url in oauth.register(...)",
}

#: Toucan codes that say "this key is not accepted" (the others, e.g. NO_ACTIVE_SUBSCRIPTION, do not).
_KEY_CODES = {None, "UNAUTHORIZED", "FORBIDDEN", "INVALID_API_KEY", "UNAUTHENTICATED"}


def unreachable(what: str) -> str:
    """``"check TOUCAN_BASE_URL / TOUCAN_HTTP_PROXY"`` for a call that got no answer."""
    where = _WHERE.get(what)
    if where is None and what.startswith("Toucan ") and what.endswith(" API"):  # headless API
        where = "TOUCAN_SERVER_URL / TOUCAN_HTTP_PROXY"
    return f"check {where or 'TOUCAN_HTTP_PROXY'}"


def token_api_refused(status: int, code: str | None) -> str:
    """The setting behind a permanent refusal of the token API (empty when no setting is)."""
    if status == 401 or (status == 403 and code in _KEY_CODES):
        return "check TOUCAN_API_KEY"
    if status in (404, 405):
        return "check TOUCAN_BASE_URL / TOUCAN_TOKEN_PATH"
    if status in (400, 422):
        return "check the attribute mappers, TOUCAN_ATTRIBUTES and TOUCAN_USER_ROLE"
    return ""


def exchange_refused(status: int, code: str | None) -> str:
    """The settings behind a refusal of the classic exchange (RFC 6749 / 7523 error codes)."""
    if code == "invalid_client" or status == 401:
        return "check TOUCAN_EXCHANGE_CLIENT_SECRET / TOUCAN_EXCHANGE_CLIENT_ID / TOUCAN_EXCHANGE_AUTH_METHOD"
    if code == "invalid_grant":
        return (
            "check TOUCAN_SIGNING_KEY (its public key uploaded to Toucan), TOUCAN_ISSUER, "
            "TOUCAN_AUDIENCE and TOUCAN_ASSERTION_SUBJECT"
        )
    if code == "invalid_scope":
        return "check TOUCAN_EXCHANGE_SCOPE"
    if status in (404, 405):
        return "check TOUCAN_EXCHANGE_URL"
    return ""


def with_hint(message: str, hint: str) -> str:
    """``message`` followed by ``: hint`` when there is one."""
    return f"{message}: {hint}" if hint else message
