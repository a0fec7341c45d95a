"""The :class:`Toucan` extension object.

Like Flask-Login's manager, one :class:`Toucan` holds the callbacks (attribute
and permission mappers, the CSP nonce loader) and may serve several apps; all
per-app state (validated config, HTTP pool, store, token service) lives in
``app.extensions["toucan"]``, created once by :meth:`Toucan.init_app`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, g, has_request_context, request, session
from limits import parse as parse_rate
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from . import csrf, signals
from .cache import TokenCache
from .config import ToucanConfig
from .exceptions import (
    AuthenticationRequired,
    ConfigurationError,
    LoginError,
    StoreUnavailable,
    ToucanError,
)
from .http import Transport, make_transport
from .mappers import (
    AttributeMapper,
    BulkMapper,
    ClassicMapper,
    MapperRegistry,
    Permissions,
    PermissionsMapper,
    check_subset,
    normalize_permissions,
    permissions_for_kind,
)
from .minting import MintRequest, TokenService, make_service
from .store import (
    CircuitBreaker,
    GuardedLimiter,
    SessionRegistry,
    limits_storage_options,
    limits_storage_uri,
    make_store,
    store_kind,
)
from .tokens import EmbedToken
from .user import MAX_SESSION_CLAIMS_BYTES, PROTOCOL_CLAIMS, ToucanUser

if TYPE_CHECKING:
    from .assistant import AssistantSession
    from .headless import HeadlessClient

log = logging.getLogger("flask_toucan")

SESSION_USER = "_toucan_user"
SESSION_ID = "_toucan_sid"
DEFAULT_ISSUER = "local"

PACKAGE_DIR = Path(__file__).resolve().parent


def _template_folder() -> str:
    """``templates/`` inside the wheel; the repo's top-level one in editable installs."""
    inside = PACKAGE_DIR / "templates"
    return str(inside if inside.is_dir() else PACKAGE_DIR.parent / "templates")


@dataclass
class ToucanState:
    """Everything one app needs, built once at ``init_app``."""

    manager: Toucan
    config: ToucanConfig
    oauth: Any
    transport: Transport
    store: Any
    sessions: SessionRegistry
    service: TokenService
    limiter: GuardedLimiter | None
    rate: Any

    def __repr__(self) -> str:
        return f"ToucanState(config={self.config!r})"


def _state() -> ToucanState:
    try:
        state: ToucanState = current_app.extensions["toucan"]
    except KeyError:
        raise RuntimeError(
            "flask-toucan is not initialised on this app: call Toucan(app) or toucan.init_app(app)"
        ) from None
    return state


def default_nonce_loader() -> str | None:
    """Find a CSP nonce where common CSP helpers put it (Flask-Talisman, ``g.csp_nonce``)."""
    nonce = getattr(request, "csp_nonce", None) or g.get("csp_nonce")
    return nonce if isinstance(nonce, str) and nonce else None


class Toucan:
    """Embed Toucan components with short-lived, tenant-scoped tokens.

    ``Toucan(app, oauth=oauth)`` or ``toucan = Toucan(); toucan.init_app(app, oauth=oauth)``.
    """

    def __init__(self, app: Flask | None = None, *, oauth: Any = None) -> None:
        self.mappers = MapperRegistry()
        self._oauth = oauth
        self._nonce_loader: Callable[[], str | None] = default_nonce_loader
        if app is not None:
            self.init_app(app, oauth=oauth)

    # ------------------------------------------------------------------ setup
    def init_app(self, app: Flask, *, oauth: Any = None) -> None:
        if "toucan" in app.extensions:
            raise ConfigurationError("flask-toucan is already initialised on this app")
        if not app.secret_key:
            raise ConfigurationError(
                "SECRET_KEY is required: flask-toucan keeps the login in the session "
                "and signs CSRF tokens with it"
            )
        config = ToucanConfig.from_mapping(app.config)
        transport = make_transport(config)
        store, limiter, rate = _build_store(config)
        app.extensions["toucan"] = ToucanState(
            manager=self,
            config=config,
            oauth=oauth if oauth is not None else self._oauth,
            transport=transport,
            store=store,
            sessions=SessionRegistry(store, config.session_lifetime),
            service=make_service(config, transport, TokenCache(store, config.margin_for)),
            limiter=limiter,
            rate=rate,
        )
        from . import components, views
        from .cli import toucan_cli
        from .degrade import handle_store_unavailable

        blueprint = views.create_blueprint(config, _template_folder())
        # Pages and login views get an HTML 503, the refresh endpoint JSON (degrade.py).
        blueprint.register_error_handler(StoreUnavailable, handle_store_unavailable)
        if config.assistant_route:
            from . import assistant_views

            assistant_views.add_routes(blueprint)
        app.register_blueprint(blueprint)
        if config.error_handlers:
            app.register_error_handler(ToucanError, views.handle_error)
            app.register_error_handler(StoreUnavailable, handle_store_unavailable)
        components.init_app(app)
        app.cli.add_command(toucan_cli)

    # -------------------------------------------------------------- callbacks
    def attribute(self, name: str, *, many: bool = False) -> Callable[[AttributeMapper], AttributeMapper]:
        """Register a mapper from the user's claims to one token attribute.

        ``many=True`` declares a list-valued attribute (e.g. ``groups``).
        """

        def decorator(fn: AttributeMapper) -> AttributeMapper:
            self.mappers.add_attribute(name, fn, many=many)
            return fn

        return decorator

    def attributes(self, fn: BulkMapper) -> BulkMapper:
        """Register a bulk mapper returning a dict of attributes."""
        self.mappers.add_bulk(fn)
        return fn

    def permissions(self, fn: PermissionsMapper) -> PermissionsMapper:
        """Register the function deciding a user's permissions object.

        The default grants ``dashboard.can_view`` and nothing else.
        """
        self.mappers.permissions_mapper = fn
        return fn

    # Classic profile (signed mode): the rest of embed_context. Each slot has a
    # default in mappers.py (roles ["USER"], no privileges, groups or secrets).
    def roles(self, fn: ClassicMapper) -> ClassicMapper:
        """Register the user's ``embed_context.roles``: ``"USER"`` and/or ``"ADMIN"``."""
        self.mappers.roles_mapper = fn
        return fn

    def privileges(self, fn: ClassicMapper) -> ClassicMapper:
        """Register ``embed_context.privileges``: app id -> list of privilege names."""
        self.mappers.privileges_mapper = fn
        return fn

    def groups(self, fn: ClassicMapper) -> ClassicMapper:
        """Register ``embed_context.groups`` (a list of group names)."""
        self.mappers.groups_mapper = fn
        return fn

    def secrets(self, fn: ClassicMapper) -> ClassicMapper:
        """Register ``embed_context.secrets`` (never logged or shown; needs the exchange)."""
        self.mappers.secrets_mapper = fn
        return fn

    def csp_nonce_loader(self, fn: Callable[[], str | None]) -> Callable[[], str | None]:
        """Register where the current request's CSP nonce comes from."""
        self._nonce_loader = fn
        return fn

    def csp_nonce(self) -> str | None:
        return self._nonce_loader() if has_request_context() else None

    # --------------------------------------------------------------- identity
    def login_user(self, claims: Mapping[str, Any], *, issuer: str | None = None) -> ToucanUser:
        """Log a user in from identity claims (``sub`` required; ``iss`` or ``issuer``).

        Clears and rotates the session (no fixation), opens a server-side
        session record, and keeps only a small set of claims.
        """
        state = _state()
        subject = claims.get("sub")
        iss = issuer or claims.get("iss") or DEFAULT_ISSUER
        if not isinstance(subject, str) or not subject:
            raise LoginError("the identity has no 'sub' claim")
        if not isinstance(iss, str):
            raise LoginError("the identity's issuer is not a string")
        keep = state.config.session_claims
        kept = {
            k: v for k, v in claims.items() if (k in keep if keep is not None else k not in PROTOCOL_CLAIMS)
        }
        if len(json.dumps(kept, default=str)) > MAX_SESSION_CLAIMS_BYTES:
            raise LoginError(
                "the identity's claims are too large for the session; "
                "list the ones mappers need in TOUCAN_SESSION_CLAIMS"
            )
        user = ToucanUser(iss, subject, kept)
        old_sid = session.get(SESSION_ID)
        state.sessions.close(old_sid)
        session.clear()
        sid = state.sessions.open(_subject_key(user))
        session[SESSION_ID] = sid
        session[SESSION_USER] = user.to_session()
        g._toucan_user = user
        g.pop("_toucan_tokens", None)
        signals.user_logged_in.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]
        return user

    def logout_user(self) -> None:
        """End the login: the server-side record goes, so replayed cookies stop working."""
        state = _state()
        user = self.current_user
        state.sessions.close(session.get(SESSION_ID))
        session.pop(SESSION_ID, None)
        session.pop(SESSION_USER, None)
        g._toucan_user = None
        g.pop("_toucan_tokens", None)
        signals.user_logged_out.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]

    @property
    def current_user(self) -> ToucanUser | None:
        """The logged-in user, or ``None`` (also after logout, even with an old cookie).

        Raises :class:`StoreUnavailable` when the session record cannot be read
        (the store is down): neither "logged in" (fail closed) nor "logged out"
        (which would send the user to a login that cannot work, and end the
        page's refresh loop with a 401). Component macros turn it into the
        ``unavailable`` placeholder, the refresh endpoint into a 503 with
        ``Retry-After``, any other view into an HTML 503 page. One attempt per
        request: the failure is remembered on ``g``.
        """
        if not has_request_context():
            return None
        if "_toucan_user" in g:
            cached: ToucanUser | None = g._toucan_user
            return cached
        if "_toucan_user_error" in g:
            raise g._toucan_user_error
        user = ToucanUser.from_session(session.get(SESSION_USER))
        try:
            if user is not None and not _state().sessions.is_active(
                session.get(SESSION_ID), _subject_key(user)
            ):
                user = None
        except StoreUnavailable as exc:
            g._toucan_user_error = exc
            raise
        g._toucan_user = user
        return user

    # ----------------------------------------------------------------- tokens
    def issue_token(
        self,
        user: ToucanUser | None = None,
        permissions: Mapping[str, Mapping[str, bool]] | None = None,
        *,
        kind: str | None = None,
    ) -> EmbedToken:
        """Mint (or serve from cache) a token for ``user`` (default: the current user).

        ``kind`` (``"dashboard"``, ``"chart"``, ``"assistant"``) narrows the token
        to what that component needs; ``permissions`` asks for an explicit set,
        which must lie within what the permissions mapper grants. Raises
        :class:`AuthenticationRequired`, :class:`PermissionDenied`,
        :class:`AttributeMappingError` or :class:`UpstreamError`; never returns
        a token built on partial data.
        """
        user = user if user is not None else self.current_user
        if user is None:
            raise AuthenticationRequired("log in to get a token")
        if kind is not None and permissions is not None:
            raise TypeError("pass either kind or permissions, not both")
        granted = self.mappers.map_permissions(user)
        perms: Permissions
        if kind is not None:
            perms = permissions_for_kind(granted, kind)
        elif permissions is not None:
            perms = normalize_permissions(permissions, source="permissions")
            check_subset(perms, granted)
        else:
            perms = granted
        return self._issue_checked(user, perms)

    def _issue_checked(self, user: ToucanUser, perms: Permissions) -> EmbedToken:
        """Mint for permissions already checked against the user's grants.

        One token per request per permission set (memoised on ``g``), then the
        cache across requests until near expiry.
        """
        state = _state()
        memo: dict[Any, EmbedToken] | None = None
        memo_key = (user.id, tuple(sorted((r, tuple(sorted(f))) for r, f in perms.items())))
        # Memoised for the request's own user only: an explicit user object may
        # carry other claims (impersonation, tests) under the same identity.
        if has_request_context() and user is g.get("_toucan_user"):
            memo = g.setdefault("_toucan_tokens", {})
            hit = memo.get(memo_key)
            if hit is not None and not hit.expired:
                return hit

        config = state.config
        attributes = self.mappers.map_attributes(user, config.required_attributes, config.attribute_schema)
        classic = self.mappers.map_classic(user) if config.mode == "signed" else None
        token, cached = state.service.issue(MintRequest(user, attributes, perms, classic))
        if memo is not None:
            memo[memo_key] = token
        signals.token_issued.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user=user,
            token=token,
            cached=cached,
        )
        return token

    def can(self, kind: str, user: ToucanUser | None = None) -> bool:
        """Whether ``user`` (default: current) may have a token for a component ``kind``.

        ``False`` too while the store is down (no token can be had then).
        """
        try:
            user = user if user is not None else self.current_user
            if user is None:
                return False
            permissions_for_kind(self.mappers.map_permissions(user), kind)
        except ToucanError:
            return False
        return True

    def assistant(self, user: ToucanUser | None = None) -> AssistantSession:
        """An MCP session with Toucan's assistant for ``user`` (default: current); see assistant.py.

        Checks ``ai.can_query`` first: a user without it gets :class:`PermissionDenied`
        and no token is minted. Use it as a context manager (``with toucan.assistant() as a``).
        Needs the ``mcp`` extra.
        """
        from .assistant import AssistantSession, ThreadRegistry

        user = user if user is not None else self.current_user
        if user is None:
            raise AuthenticationRequired("log in to use the assistant")
        permissions_for_kind(self.mappers.map_permissions(user), "assistant")
        state = _state()
        if state.config.server_url is None:
            raise ConfigurationError("the assistant needs TOUCAN_SERVER_URL (or TOUCAN_BASE_URL)")
        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def mint() -> EmbedToken:
            with app.app_context():
                return self.issue_token(user, kind="assistant")

        return AssistantSession(
            f"{state.config.server_url}/mcp",
            mint,
            threads=ThreadRegistry(state.store, _subject_key(user), state.config.session_lifetime),
            deadline=state.config.deadline,
            connect_timeout=state.config.connect_timeout,
            refresh_margin=state.config.refresh_margin,
            proxy=state.config.http_proxy,
            ca_bundle=state.config.ca_bundle,
            trust_env=state.config.trust_env,
        )

    @property
    def api(self) -> HeadlessClient:
        """The headless REST API as the current user: ``toucan.api.dashboard(id)`` / ``.chart(id)``."""
        from .headless import HeadlessClient

        state = _state()
        if state.config.server_url is None:
            raise ConfigurationError("the headless API needs TOUCAN_SERVER_URL (or TOUCAN_BASE_URL)")
        return HeadlessClient(
            state.transport, state.config.server_url, lambda kind: self.issue_token(kind=kind)
        )

    def csrf_token(self) -> str:
        """The CSRF token for this session (send it in ``TOUCAN_CSRF_HEADER``)."""
        sid = session.get(SESSION_ID)
        if not isinstance(sid, str):
            raise AuthenticationRequired("no session: log in first")
        if "_toucan_csrf" not in g:
            g._toucan_csrf = csrf.make_token(current_app, sid)
        token: str = g._toucan_csrf
        return token

    def jwks(self) -> dict[str, Any]:
        """The public keys of ``signed`` mode (current, next, fallbacks)."""
        keys = _state().config.keys
        if keys is None or keys.current.is_hmac:
            return {"keys": []}
        return keys.jwks()


def _build_store(config: ToucanConfig) -> tuple[Any, GuardedLimiter | None, Any]:
    """The guarded store, and the refresh endpoint's rate limiter sharing its breaker."""
    breaker = CircuitBreaker(
        store_kind(config.store),
        failures=config.store_breaker_failures,
        cooldown=config.store_breaker_cooldown,
    )
    store = make_store(
        config.store,
        connect_timeout=config.store_connect_timeout,
        timeout=config.store_timeout,
        breaker=breaker,
    )
    if not config.rate_limit:
        return store, None, None
    try:
        rate = parse_rate(config.rate_limit)
    except ValueError:
        raise ConfigurationError(
            "TOUCAN_RATE_LIMIT must look like '30/minute' (or be None to disable)"
        ) from None
    options = limits_storage_options(config.store, config.store_connect_timeout, config.store_timeout)
    storage = storage_from_string(limits_storage_uri(config.store), **options)
    return store, GuardedLimiter(MovingWindowRateLimiter(storage), store.breaker), rate


def _subject_key(user: ToucanUser) -> str:
    return json.dumps(list(user.id))


def get_state() -> ToucanState:
    """The current app's flask-toucan state (for the views, templates and CLI)."""
    return _state()
