"""The realm token endpoint of the classic profile's exchange, and the ``aud`` it takes.

Self-hosted Toucan runs its exchange on Keycloak. Keycloak 26 serves a realm's
token endpoint at ``/realms/{realm}/protocol/openid-connect/token``; Toucan
puts its authentication service under ``/api/auth``, so the same endpoint is
``{instance}/api/auth/realms/{tenant}/protocol/openid-connect/token``. Both
forms are accepted (and any other prefix a reverse proxy puts in front).

Keycloak's JWT Authorization Grant takes an assertion whose ``aud`` is one
string: the realm's issuer (``.../realms/{realm}``) or its token endpoint.
docs-v3 writes it ``OAUTH_URL/TENANT_ID/oauth/oauth-token`` and says to copy it
from the admin interface. Neither is guessed for the host: ``TOUCAN_AUDIENCE``
has no default in the classic profile, and this module only names the
candidates in the error that asks for it. Core module: no Flask.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: ``{prefix}/realms/{realm}/protocol/openid-connect/token`` (prefix ``""``, ``/api/auth``, ...).
_TOKEN_PATH = re.compile(r"^(?P<prefix>(?:/[^/]+)*?)/realms/(?P<realm>[^/]+)/protocol/openid-connect/token$")
TOKEN_SUFFIX = "/protocol/openid-connect/token"  # noqa: S105 - a URL path, not a secret


def realm_issuer(token_url: str) -> str | None:
    """The realm's issuer URL for a realm token endpoint URL; ``None`` for any other path."""
    parts = urlsplit(token_url)
    if not _TOKEN_PATH.match(parts.path):
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path[: -len(TOKEN_SUFFIX)]}"


def audience_required(exchange_url: str) -> str:
    """The message of the error raised when the classic profile has no ``TOUCAN_AUDIENCE``."""
    issuer = realm_issuer(exchange_url)
    keycloak = (
        f"the realm issuer ({issuer}) or the token endpoint ({exchange_url})"
        if issuer is not None
        else "the realm issuer ({instance}/api/auth/realms/{tenant}) or the token endpoint"
    )
    return (
        "TOUCAN_AUDIENCE is required with TOUCAN_EXCHANGE_URL (the classic profile): it is the "
        "assertion's `aud` and a wrong one makes every exchange fail, so there is no default. "
        "docs-v3 writes it `OAUTH_URL/TENANT_ID/oauth/oauth-token`, to copy from Toucan's admin "
        f"interface (Embed settings); a Keycloak-based exchange accepts {keycloak}"
    )
