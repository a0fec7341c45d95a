"""Per-app state: what ``init_app`` builds once and every Flask-layer module reads.

The lowest module of the Flask layer (see docs/architecture.md): views,
components, identity, the CLI and the facade all reach the app's config, store
and token service through :func:`get_state`, so none of them imports another
to get at it, and there is no import cycle to dodge.

:class:`Hooks` holds the callbacks an app registers with decorators on the
:class:`~flask_toucan.Toucan` facade (CSP nonce loader, claims loader). One
``Hooks`` object is shared by every app the facade serves, so a decorator used
after ``init_app`` still takes effect, like Flask-Login's ``user_loader``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from flask import current_app, g, has_request_context, request

from .config import ToucanConfig
from .http import Transport
from .mappers import MapperRegistry
from .minting import TokenService
from .ratelimit import RateLimit
from .store import SessionRegistry
from .user import ToucanUser

#: Session keys (Flask's signed cookie session). Only these two are ever written.
SESSION_USER = "_toucan_user"
SESSION_ID = "_toucan_sid"
#: The issuer of identities logged in without one (``toucan.login_user({"sub": ...})``).
DEFAULT_ISSUER = "local"
#: The ``app.extensions`` key.
EXTENSION_KEY = "toucan"

#: ``claims_loader``: the identity claims of the app's own logged-in user, or ``None``.
ClaimsLoader = Callable[[], Mapping[str, Any] | None]
NonceLoader = Callable[[], str | None]


def default_nonce_loader() -> str | None:
    """Find a CSP nonce where common CSP helpers put it (Flask-Talisman, ``g.csp_nonce``)."""
    # The request object itself: a missing attribute looked up through the proxy costs a few µs.
    return nonce_in(request._get_current_object(), g)  # type: ignore[attr-defined]


def nonce_in(req: Any, memo: Any) -> str | None:
    """:func:`default_nonce_loader` given the request and ``g`` objects (the kit has them at hand)."""
    nonce = getattr(req, "csp_nonce", None) or memo.get("csp_nonce")
    return nonce if isinstance(nonce, str) and nonce else None


class Hooks:
    """Callback slots, each filled with a default so call sites never check for ``None``
    (except ``claims_loader``, whose absence means "toucan's own login only")."""

    def __init__(self) -> None:
        self.nonce_loader: NonceLoader = default_nonce_loader
        self.claims_loader: ClaimsLoader | None = None

    def csp_nonce(self) -> str | None:
        return self.nonce_loader() if has_request_context() else None


class ToucanState:
    """Everything one app needs, built once at ``init_app``.

    A plain class (not a dataclass: its generated ``__init__`` costs about
    half a millisecond at import, bench row 7b); compared by identity.
    """

    def __init__(
        self,
        *,
        config: ToucanConfig,
        oauth: Any,
        oauth_client: Any,
        transport: Transport,
        store: Any,
        sessions: SessionRegistry,
        service: TokenService,
        limiter: RateLimit | None,
        mappers: MapperRegistry,
        hooks: Hooks,
        manager: Any = None,
    ) -> None:
        self.config = config
        self.oauth = oauth
        #: The Authlib client resolved (and given PKCE S256) at ``init_app``; ``None`` without ``oauth``.
        self.oauth_client = oauth_client
        self.transport = transport
        self.store = store
        self.sessions = sessions
        self.service = service
        #: ``TOUCAN_RATE_LIMIT`` parsed (``None``: off); counted in :attr:`store`.
        self.limiter = limiter
        self.mappers = mappers
        self.hooks = hooks
        #: The :class:`~flask_toucan.Toucan` facade that owns this state (for host code and
        #: tests: ``app.extensions["toucan"].manager``); the package itself never goes through it.
        self.manager = manager

    def __repr__(self) -> str:
        return f"ToucanState(config={self.config!r})"


def get_state() -> ToucanState:
    """The current app's flask-toucan state (raises a clear error when not initialised)."""
    try:
        state: ToucanState = current_app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "flask-toucan is not initialised on this app: call Toucan(app) or toucan.init_app(app)"
        ) from None
    return state


def subject_key(user: ToucanUser) -> str:
    """The store key of an identity: (issuer, subject), never the email."""
    return _subject_key(user.issuer, user.subject)


@lru_cache(maxsize=4096, typed=True)
def _subject_key(issuer: str, subject: str) -> str:
    """``json.dumps`` of the (issuer, subject) pair: a pure function, memoised (every request's
    login record check needs it; bounded). ``typed``: ``1``, ``1.0`` and ``True`` are different
    JSON, never one entry."""
    return json.dumps([issuer, subject])
