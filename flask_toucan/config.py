"""``TOUCAN_*`` settings, read and validated once at ``init_app``.

:class:`ToucanConfig` is the validated, read-only result. What each key means,
its default and how it is validated is one row of the table in
:mod:`flask_toucan.settings`, so a misconfigured app fails at start-up with a
message that names the setting, not at the first request. Error messages never
repeat a secret's value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from . import settings
from .schema import NO_SCHEMA, AttributeSchema
from .settings import DEFAULTS, EXCHANGE_AUTH_METHODS, MODES

if TYPE_CHECKING:  # keys load with signed mode (settings.py), not in api mode
    from .keys import KeySet

__all__ = ["DEFAULTS", "EXCHANGE_AUTH_METHODS", "MODES", "ToucanConfig"]


class ToucanConfig:
    """The validated settings, read-only. Secrets are kept but never shown by ``repr``.

    A plain class, not a dataclass or a tuple. A frozen dataclass compiles a
    50-argument ``__init__`` and its guards when the module loads (~0.6 ms of
    every app's start-up, issue 11 item 8); a ``NamedTuple`` is as cheap but
    is a tuple: ``list(config)`` or ``json.dumps(config)`` would spill the API
    key and the client secret. This one is not iterable, not serialisable and
    refuses assignment. A new setting is an annotated field (with its default,
    if it has one) and a row of :mod:`flask_toucan.settings`.
    """

    #: The field names, in order (set below from the annotations).
    _fields: ClassVar[tuple[str, ...]] = ()

    mode: str
    base_url: str | None
    api_key: str | None
    token_url: str | None
    embed_script_url: str | None
    server_url: str | None
    user_role: str
    keys: KeySet | None
    issuer: str | None
    audience: str | None
    workspace_id: str | None
    exchange_url: str | None
    token_ttl: int
    max_ttl: int
    refresh_margin: float
    required_attributes: tuple[str, ...]
    url_prefix: str
    oauth_client: str | None
    login_redirect: str
    logout_redirect: str
    session_claims: tuple[str, ...] | None
    fetch_userinfo: bool
    session_lifetime: int
    session_idle_timeout: int = 1800
    #: ``None``: 300 s when the provider issued a refresh token; ``0``: off.
    idp_revalidate: int | None = None
    connect_timeout: float
    deadline: float
    retries: int
    max_response_bytes: int
    store: Any
    rate_limit: str | None
    csrf_header: str
    csrf_max_age: int
    placeholder_template: str
    error_handlers: bool
    # classic profile; the exchange secret is never part of a repr
    exchange_client_id: str = "toucan-embed-client"
    exchange_client_secret: str | None = None
    exchange_auth_method: str = "client_secret_basic"
    exchange_scope: str = "embed"
    assertion_subject: str = "toucan-embed-client"
    # transport
    read_timeout: float = 5.0
    http_proxy: str | None = None
    ca_bundle: str | None = None
    trust_env: bool = False
    store_connect_timeout: float = 0.5
    store_timeout: float = 0.5
    store_breaker_failures: int = 3
    store_breaker_cooldown: float = 2.0
    assistant_route: bool = False
    attribute_schema: AttributeSchema = NO_SCHEMA
    # scale: in-process store capacities, cross-worker lock, Redis TLS CA (settings.py rows)
    store_max_tokens: int = 100_000
    store_max_sessions: int = 100_000
    store_near_cache: int = 10_000
    store_lock_ttl: float | None = None
    store_ca_bundle: str | None = None
    # ending logins from the provider's side
    backchannel_logout: bool = False
    rp_initiated_logout: bool = True
    post_logout_redirect_uri: str | None = None
    # the login views (settings.py row): None = on when an OAuth registry is given
    login_routes: bool | None = None

    def __init__(self, **values: Any) -> None:
        unknown = values.keys() - set(self._fields)
        missing = [f for f in self._fields if f not in values and not hasattr(type(self), f)]
        if unknown or missing:
            raise TypeError(f"ToucanConfig: unknown fields {sorted(unknown)}, missing fields {missing}")
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("ToucanConfig is read-only: change app.config and call init_app again")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("ToucanConfig is read-only")

    def __repr__(self) -> str:
        return f"ToucanConfig(mode={self.mode!r}, base_url={self.base_url!r})"

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> ToucanConfig:
        """Validate ``config`` through the settings table (:mod:`flask_toucan.settings`)."""
        return cls(**settings.parse(config))

    def margin_for(self, lifetime: float) -> float:
        """How long before expiry a token stops being served from cache.

        A quarter of the lifetime at most, so very short lifetimes (tests,
        aggressive deployments) still get served at all.
        """
        return min(self.refresh_margin, lifetime / 4)


ToucanConfig._fields = tuple(name for name in ToucanConfig.__annotations__ if name != "_fields")
