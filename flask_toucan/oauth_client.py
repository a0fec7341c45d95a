"""The Authlib client the login views drive, resolved and checked once at ``init_app``.

Through Authlib's public API: ``oauth.create_client(name)`` (``None`` for an
unknown name) and the client's ``client_kwargs``. PKCE is switched on here,
once, by setting ``code_challenge_method: S256`` on the client (Authlib reads it
from ``client_kwargs`` on every authorize redirect and token request), never
changed during a request.
"""

from __future__ import annotations

from typing import Any

from .exceptions import ConfigurationError


def _default_name(oauth: Any) -> str:
    """The only registered client's name, when ``TOUCAN_OAUTH_CLIENT`` is unset.

    Authlib has no public way to list a registry's clients: this reads the
    registry's names (read only, once, at ``init_app``). Set
    ``TOUCAN_OAUTH_CLIENT`` and this is never called.
    """
    names = list(vars(oauth).get("_registry", {}))
    if not names:
        raise ConfigurationError(
            "the OAuth registry has no client: call oauth.register('idp', server_metadata_url=..., "
            "client_id=..., client_secret=..., client_kwargs={'scope': 'openid email profile'}) "
            "before Toucan(app, oauth=oauth)"
        )
    if len(names) != 1:
        raise ConfigurationError(
            f"TOUCAN_OAUTH_CLIENT must name the Authlib client to log in with ({len(names)} are "
            f"registered: {', '.join(sorted(map(str, names)))})"
        )
    return str(names[0])


def resolve(oauth: Any, name: str | None, *, required: bool = False) -> Any:
    """The named (or only) client, with PKCE S256 and ``openid`` in its scope; else a clear error.

    ``required`` (``TOUCAN_LOGIN_ROUTES = True``): no registry is a start-up error, not a
    500 at the first ``/login``.
    """
    if oauth is None:
        if required:
            raise ConfigurationError(
                "TOUCAN_LOGIN_ROUTES is on but no OAuth registry was given: pass "
                "Toucan(app, oauth=oauth) (Authlib's OAuth(app) and oauth.register(...)), or set "
                "TOUCAN_LOGIN_ROUTES = False when the app logs users in itself (toucan.login_user)"
            )
        return None
    if getattr(oauth, "app", True) is None:
        raise ConfigurationError(
            "the Authlib OAuth registry is not bound to the app: call OAuth(app) or "
            "oauth.init_app(app) before Toucan(app, oauth=oauth)"
        )
    if name is None:
        name = _default_name(oauth)
    client = oauth.create_client(name)
    if client is None:
        raise ConfigurationError(f"TOUCAN_OAUTH_CLIENT names no registered client ({name!r})")
    kwargs = client.client_kwargs
    method = kwargs.get("code_challenge_method")
    if method is None:
        kwargs["code_challenge_method"] = "S256"  # PKCE always; Authlib enables it per client
    elif method != "S256":
        raise ConfigurationError("the OAuth client must use PKCE with S256, not plain")
    if "openid" not in str(kwargs.get("scope", "")).split():
        raise ConfigurationError("the OAuth client's scope must include 'openid'")
    return client
