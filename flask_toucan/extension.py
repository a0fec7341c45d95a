"""The :class:`Toucan` extension object: the thin facade an app holds.

Like Flask-Login's manager, one :class:`Toucan` holds the callbacks (attribute
and permission mappers, the CSP nonce loader, the claims loader) and may serve
several apps. Everything per app (validated config, HTTP pool, store, token
service, the resolved OAuth client) lives in ``app.extensions["toucan"]``
(:mod:`flask_toucan.state`), built once by :meth:`Toucan.init_app`. The methods
users call delegate to the module that does the job: identity
(:mod:`~flask_toucan.identity`), issuing (:mod:`~flask_toucan.issuing`), CSRF
(:mod:`~flask_toucan.csrf`), the blueprint (:mod:`~flask_toucan.views`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, g

from . import (
    activity_views,
    backchannel,
    components,
    csrf,
    identity,
    issuing,
    oauth_client,
    preflight,
    signals,
    views,
)
from .cache import TokenCache
from .classic_embeds import embed as classic_embed
from .cli import toucan_cli
from .config import ToucanConfig
from .degrade import handle_store_unavailable
from .exceptions import (
    ConfigurationError,
    StoreUnavailable,
    ToucanError,
)
from .http import make_transport
from .mappers import (
    AttributeMapper,
    BulkMapper,
    ClassicMapper,
    MapperRegistry,
    PermissionsMapper,
)
from .minting import make_service
from .ratelimit import RateLimit
from .ratelimit import parse as parse_rate
from .result_renderer import result_renderer
from .settings import DEFAULTS, apply_defaults
from .state import EXTENSION_KEY, ClaimsLoader, Hooks, NonceLoader, ToucanState, get_state
from .store import (
    CircuitBreaker,
    SessionRegistry,
    make_store,
    store_kind,
)
from .tokens import EmbedToken
from .user import ToucanUser

if TYPE_CHECKING:
    from .assistant import AssistantSession
    from .headless import HeadlessClient

PACKAGE_DIR = Path(__file__).resolve().parent


def _template_folder() -> str:
    """``templates/`` inside the wheel; the repo's top-level one in editable installs."""
    inside = PACKAGE_DIR / "templates"
    return str(inside if inside.is_dir() else PACKAGE_DIR.parent / "templates")


class Toucan:
    """Embed Toucan components with short-lived, tenant-scoped tokens.

    ``Toucan(app, oauth=oauth)`` or ``toucan = Toucan(); toucan.init_app(app, oauth=oauth)``.
    """

    def __init__(self, app: Flask | None = None, *, oauth: Any = None) -> None:
        self.mappers = MapperRegistry()
        self.hooks = Hooks()
        self._oauth = oauth
        if app is not None:
            self.init_app(app, oauth=oauth)

    # ------------------------------------------------------------------ setup
    def init_app(self, app: Flask, *, oauth: Any = None) -> None:
        """Validate the ``TOUCAN_*`` settings, build this app's state, register the blueprint."""
        if EXTENSION_KEY in app.extensions:
            raise ConfigurationError("flask-toucan is already initialised on this app")
        preflight.check_app_config(app.config, DEFAULTS)  # typos, placeholder SECRET_KEY
        apply_defaults(app.config)  # every TOUCAN_* default visible in app.config
        config = ToucanConfig.from_mapping(app.config)
        oauth = oauth if oauth is not None else self._oauth
        app.extensions[EXTENSION_KEY] = _build_state(self, config, oauth)
        _register(app, config)

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

    def csp_nonce_loader(self, fn: NonceLoader) -> NonceLoader:
        """Register where the current request's CSP nonce comes from."""
        self.hooks.nonce_loader = fn
        return fn

    def claims_loader(self, fn: ClaimsLoader) -> ClaimsLoader:
        """Register the identity claims of the app's own logged-in user (Flask-Login).

        Called when there is no toucan login in the session; return ``None``
        when nobody is logged in. The claims need ``sub`` (and ``iss``, else
        ``"local"``): the user is keyed on (issuer, subject) like
        :meth:`login_user`. See docs/usage.md, "Apps with Flask-Login".
        """
        self.hooks.claims_loader = fn
        return fn

    def csp_nonce(self) -> str | None:
        return self.hooks.csp_nonce()

    # --------------------------------------------------------------- identity
    def login_user(self, claims: Mapping[str, Any], *, issuer: str | None = None) -> ToucanUser:
        """Log a user in from identity claims; see :func:`flask_toucan.identity.login_user`."""
        return identity.login_user(claims, issuer=issuer)

    def logout_user(self) -> None:
        """End the login; see :func:`flask_toucan.identity.logout_user`."""
        identity.logout_user()

    @property
    def current_user(self) -> ToucanUser | None:
        """The logged-in user or ``None``; see :func:`flask_toucan.identity.current_user`."""
        return identity.current_user()

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
        return issuing.issue_token(user, permissions, kind=kind)

    def issue_for(self, kind: str, user: ToucanUser | None = None) -> issuing.Issued:
        """The token a component ``kind`` needs and the permissions it carries (pre-checked)."""
        return issuing.issue_for(kind, user)

    def can(self, kind: str, user: ToucanUser | None = None) -> bool:
        """Whether ``user`` (default: current) may have a token for a component ``kind``.

        ``False`` too while the store is down (no token can be had then).
        """
        return issuing.can(kind, user)

    def assistant(self, user: ToucanUser | None = None) -> AssistantSession:
        """An MCP session with Toucan's assistant for ``user`` (default: current); see assistant.py.

        Checks ``ai.can_query`` first: a user without it gets :class:`PermissionDenied`
        and no token is minted. Use it as a context manager (``with toucan.assistant() as a``).
        Needs the ``mcp`` extra.
        """
        from . import assistant_views  # the MCP assistant: loaded on first use

        return assistant_views.session_for(user)

    @property
    def api(self) -> HeadlessClient:
        """The headless REST API as the current user: ``toucan.api.dashboard(id)`` / ``.chart(id)``."""
        state = get_state()
        if state.config.server_url is None:
            raise ConfigurationError("the headless API needs TOUCAN_SERVER_URL (or TOUCAN_BASE_URL)")
        from .headless import HeadlessClient  # loaded on first use

        return HeadlessClient(
            state.transport, state.config.server_url, lambda kind: issuing.issue_for(kind).token
        )

    def end_sessions(self, *, sub: str, issuer: str | None = None) -> int:
        """End every live login of ``sub`` (from ``issuer``, or any): the next request is anonymous.

        Returns how many logins were live. Works on every worker at once: the
        login records live in the store (see :mod:`flask_toucan.backchannel`).
        """
        return backchannel.end_sessions(sub=sub, issuer=issuer)

    def csrf_token(self) -> str:
        """The CSRF token for this session (send it in ``TOUCAN_CSRF_HEADER``)."""
        return csrf.session_token()

    def jwks(self) -> dict[str, Any]:
        """The public keys of ``signed`` mode (current, next, fallbacks)."""
        return views.public_jwks(get_state().config)


def _build_state(manager: Toucan, config: ToucanConfig, oauth: Any) -> ToucanState:
    transport = make_transport(config)
    store, limiter = _build_store(config)
    return ToucanState(
        config=config,
        oauth=oauth,
        oauth_client=oauth_client.resolve(oauth, config.oauth_client, required=config.login_routes is True),
        transport=transport,
        store=store,
        sessions=SessionRegistry(store, config.session_lifetime, config.session_idle_timeout),
        service=make_service(config, transport, TokenCache(store, config.margin_for)),
        limiter=limiter,
        mappers=manager.mappers,
        hooks=manager.hooks,
        manager=manager,
    )


def _register(app: Flask, config: ToucanConfig) -> None:
    """The blueprint, error handlers, template globals and CLI of one app."""
    blueprint = views.create_blueprint(config, _template_folder())
    # Pages and login views get an HTML 503, the refresh endpoint JSON (degrade.py).
    blueprint.register_error_handler(StoreUnavailable, handle_store_unavailable)
    activity_views.add_routes(blueprint)
    if config.assistant_route:  # opt-in (the `mcp` extra): its module loads only then
        from . import assistant_views

        assistant_views.add_routes(blueprint)
    if config.backchannel_logout:
        backchannel.add_routes(blueprint)
    app.register_blueprint(blueprint)
    signals.user_logged_in.connect(backchannel.record_login, sender=app, weak=False)
    if config.error_handlers:
        app.register_error_handler(ToucanError, views.handle_error)
        app.register_error_handler(StoreUnavailable, handle_store_unavailable)
    components.init_app(app)
    app.jinja_env.globals["_toucan_result_renderer"] = result_renderer
    app.jinja_env.globals["_toucan_embed"] = classic_embed
    identity.init_app(app)
    app.teardown_appcontext(release_request_objects)
    app.cli.add_command(toucan_cli)


#: What the kit keeps on ``g`` that points back at ``g`` (the page's ``Here`` holds ``g`` as its
#: memo): a reference cycle per request.
_CYCLIC_ON_G = ("_toucan_page",)


def release_request_objects(exc: BaseException | None = None) -> None:
    """Break the request's reference cycles through ``g`` when its context ends.

    The page object lives on ``g`` and refers back to it, so without this the
    whole request (environ, headers, session, page, tokens) survived as
    cyclic garbage until the garbage collector ran: about 36 container objects
    per request, a gen-0 collection every ~20 refreshes and, now and then, a
    full one. Dropped here, reference counting frees them at once.
    """
    pop = g.pop
    for name in _CYCLIC_ON_G:
        pop(name, None)


def _build_store(config: ToucanConfig) -> tuple[Any, RateLimit | None]:
    """The guarded store, and the refresh endpoint's rate limit (counted in that store)."""
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
        ca_bundle=config.store_ca_bundle,
        max_tokens=config.store_max_tokens,
        max_sessions=config.store_max_sessions,
        near_cache=config.store_near_cache,
    )
    if not config.rate_limit:
        return store, None
    try:
        limits = parse_rate(config.rate_limit)
    except ValueError:
        raise ConfigurationError(
            "TOUCAN_RATE_LIMIT must look like '30/minute' (or be None to disable)"
        ) from None
    return store, RateLimit(limits)
