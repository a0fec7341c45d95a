"""``TOUCAN_*`` settings, read and validated once at ``init_app``.

Every property of :class:`ToucanConfig` is computed when the extension is
attached, so a misconfigured app fails at start-up with a message that names
the setting, not at the first request. Error messages never repeat a secret's
value.
"""

from __future__ import annotations

import importlib.util
import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from .exceptions import ConfigurationError
from .keys import KeySet, load_key_set
from .schema import DEFAULT_MAX_LENGTH, AttributeSchema, schema_from_settings

MODES = ("api", "signed")

DEFAULTS: dict[str, Any] = {
    "TOUCAN_MODE": "api",
    "TOUCAN_BASE_URL": None,
    "TOUCAN_API_KEY": None,
    "TOUCAN_TOKEN_PATH": "/embed/generate-token",
    "TOUCAN_EMBED_SCRIPT_URL": None,  # default: {base}/embed/embed.js
    "TOUCAN_SERVER_URL": None,  # default: TOUCAN_BASE_URL + "/api" (the API root, as Toucan documents it)
    "TOUCAN_USER_ROLE": "explorer",
    "TOUCAN_SIGNING_KEY": None,
    "TOUCAN_SIGNING_KEY_ID": None,
    "TOUCAN_SIGNING_ALGORITHM": None,  # default: from the key (RS256 for RSA)
    "TOUCAN_SIGNING_KEY_NEXT": None,
    "TOUCAN_SIGNING_KEY_FALLBACKS": (),
    "TOUCAN_ISSUER": None,
    "TOUCAN_AUDIENCE": None,
    "TOUCAN_WORKSPACE_ID": None,
    "TOUCAN_EXCHANGE_URL": None,
    "TOUCAN_TOKEN_TTL": None,  # signed mode: 300
    "TOUCAN_TOKEN_MAX_TTL": 3600,
    "TOUCAN_REFRESH_MARGIN": 60,
    "TOUCAN_REQUIRED_ATTRIBUTES": ("organization_id",),
    "TOUCAN_URL_PREFIX": "/toucan",
    "TOUCAN_OAUTH_CLIENT": None,
    "TOUCAN_LOGIN_REDIRECT": "/",
    "TOUCAN_LOGOUT_REDIRECT": "/",
    "TOUCAN_SESSION_CLAIMS": None,
    "TOUCAN_FETCH_USERINFO": True,  # None: every identity claim but protocol ones
    "TOUCAN_SESSION_LIFETIME": None,  # default: PERMANENT_SESSION_LIFETIME
    "TOUCAN_HTTP_CONNECT_TIMEOUT": 3.0,
    "TOUCAN_HTTP_DEADLINE": 10.0,
    "TOUCAN_HTTP_RETRIES": 2,
    "TOUCAN_HTTP_MAX_RESPONSE_BYTES": 64 * 1024,
    "TOUCAN_STORE": "memory",
    "TOUCAN_RATE_LIMIT": "30/minute",
    "TOUCAN_CSRF_HEADER": "X-Toucan-CSRF",
    "TOUCAN_CSRF_MAX_AGE": None,  # default: the session lifetime
    "TOUCAN_PLACEHOLDER_TEMPLATE": "toucan/placeholder.html",
    "TOUCAN_ERROR_HANDLERS": True,
    # classic profile (self-hosted Toucan, docs-v3): the RFC 7523 exchange's client
    "TOUCAN_EXCHANGE_CLIENT_ID": "toucan-embed-client",
    "TOUCAN_EXCHANGE_CLIENT_SECRET": None,  # required with TOUCAN_EXCHANGE_URL; never shown
    "TOUCAN_EXCHANGE_AUTH_METHOD": "client_secret_basic",  # or "client_secret_post"
    "TOUCAN_EXCHANGE_SCOPE": "embed",
    "TOUCAN_ASSERTION_SUBJECT": None,  # default: TOUCAN_EXCHANGE_CLIENT_ID
    # transport: idle-read timeout, outbound proxy, private CA, environment proxies.
    "TOUCAN_HTTP_READ_TIMEOUT": 5.0,
    "TOUCAN_HTTP_PROXY": None,
    "TOUCAN_HTTP_CA_BUNDLE": None,  # default: certifi's bundle (what requests uses)
    "TOUCAN_HTTP_TRUST_ENV": False,
    # store: Redis socket timeouts and the circuit breaker (see store.py, docs/deployment.md)
    "TOUCAN_STORE_CONNECT_TIMEOUT": 0.5,
    "TOUCAN_STORE_TIMEOUT": 0.5,
    "TOUCAN_STORE_BREAKER_FAILURES": 3,
    "TOUCAN_STORE_BREAKER_COOLDOWN": 2.0,
    # -- mcp (bring your own chat) --
    "TOUCAN_ASSISTANT_ROUTE": False,  # POST {prefix}/assistant/ask for a host chat
    # attribute schema (schema area): declared types, per-value length cap
    "TOUCAN_ATTRIBUTES": None,  # None: any attribute name; values are checked all the same
    "TOUCAN_ATTRIBUTE_MAX_LENGTH": DEFAULT_MAX_LENGTH,
}

#: The client authentication methods of the classic exchange (Authlib's names).
EXCHANGE_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


def _positive_number(name: str, value: Any, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigurationError(f"{name} must be {kind} (seconds)")
    if integer and not isinstance(value, int):
        raise ConfigurationError(f"{name} must be a positive integer (seconds)")
    return value


def _http_url(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} is required")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{name} must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise ConfigurationError(f"{name} must not carry credentials")
    return value.rstrip("/")


def _classic_settings(get: Callable[[str], Any], exchange_url: str | None) -> dict[str, Any]:
    """The classic profile's exchange client (docs-v3 "Embed SDK authentication").

    The client secret is required only when there is an exchange to send it
    to; errors name the setting, never its value.
    """
    names = ("TOUCAN_EXCHANGE_CLIENT_ID", "TOUCAN_EXCHANGE_SCOPE")
    client_id, scope = (get(n) for n in names)
    for name, value in zip(names, (client_id, scope), strict=True):
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{name} must be a non-empty string")
    subject = get("TOUCAN_ASSERTION_SUBJECT")
    if subject is None:
        subject = client_id
    if not isinstance(subject, str) or not subject.strip():
        raise ConfigurationError("TOUCAN_ASSERTION_SUBJECT must be a non-empty string")
    method = get("TOUCAN_EXCHANGE_AUTH_METHOD")
    if method not in EXCHANGE_AUTH_METHODS:
        allowed = ", ".join(EXCHANGE_AUTH_METHODS)
        raise ConfigurationError(f"TOUCAN_EXCHANGE_AUTH_METHOD must be one of {allowed}")
    secret = get("TOUCAN_EXCHANGE_CLIENT_SECRET")
    if exchange_url is not None:
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigurationError(
                "TOUCAN_EXCHANGE_CLIENT_SECRET is required when TOUCAN_EXCHANGE_URL is set"
            )
        secret = secret.strip()  # secrets read from files often end in a newline
        if not all(0x20 <= ord(c) <= 0x7E for c in secret):
            raise ConfigurationError("TOUCAN_EXCHANGE_CLIENT_SECRET contains control or non-ASCII characters")
    return {
        "exchange_client_id": client_id,
        "exchange_client_secret": secret if exchange_url is not None else None,
        "exchange_auth_method": method,
        "exchange_scope": scope,
        "assertion_subject": subject,
    }


def _transport_settings(get: Callable[[str], Any]) -> dict[str, Any]:
    """``TOUCAN_HTTP_READ_TIMEOUT`` / ``_PROXY`` / ``_CA_BUNDLE`` / ``_TRUST_ENV``, validated."""
    trust_env = get("TOUCAN_HTTP_TRUST_ENV")
    if not isinstance(trust_env, bool):
        raise ConfigurationError("TOUCAN_HTTP_TRUST_ENV must be True or False")
    return {
        "read_timeout": _positive_number("TOUCAN_HTTP_READ_TIMEOUT", get("TOUCAN_HTTP_READ_TIMEOUT")),
        "http_proxy": _proxy_url(get("TOUCAN_HTTP_PROXY")),
        "ca_bundle": _ca_bundle(get("TOUCAN_HTTP_CA_BUNDLE")),
        "trust_env": trust_env,
    }


def _proxy_url(value: Any) -> str | None:
    """An ``http://`` / ``https://`` proxy URL; credentials allowed, never repeated in an error."""
    if value is None or value == "":
        return None
    name = "TOUCAN_HTTP_PROXY"
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a URL string such as 'http://proxy.internal:3128'")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a port that is not a number
    except ValueError:
        raise ConfigurationError(f"{name} is not a valid URL (bad port or host)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name} must be an http:// or https:// URL with a host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(f"{name} must be scheme://[user:password@]host[:port], without a path")
    return value


def _ca_bundle(value: Any) -> str | None:
    """A PEM file (or an OpenSSL hashed directory) that ssl can load."""
    if value is None or value == "":
        return None
    name = "TOUCAN_HTTP_CA_BUNDLE"
    if not isinstance(value, str | os.PathLike):
        raise ConfigurationError(f"{name} must be the path of a PEM file of CA certificates")
    path = os.fspath(value)
    if not os.path.exists(path):
        raise ConfigurationError(f"{name}: {path} does not exist")
    try:
        if os.path.isdir(path):
            ssl.create_default_context(capath=path)
        else:
            ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError):
        raise ConfigurationError(f"{name}: {path} is not a readable PEM bundle of CA certificates") from None
    return str(path)


def _assistant_route(value: Any) -> bool:
    """``TOUCAN_ASSISTANT_ROUTE``: a bool; when on, the ``mcp`` extra must be installed."""
    if not isinstance(value, bool):
        raise ConfigurationError("TOUCAN_ASSISTANT_ROUTE must be True or False")
    if value and importlib.util.find_spec("mcp") is None:  # found, not imported
        raise ConfigurationError("TOUCAN_ASSISTANT_ROUTE needs the MCP SDK: pip install 'flask-toucan[mcp]'")
    return value


def _attribute_schema(get: Any, required: tuple[str, ...]) -> AttributeSchema:
    """``TOUCAN_ATTRIBUTES`` and ``TOUCAN_ATTRIBUTE_MAX_LENGTH`` (see :mod:`flask_toucan.schema`)."""
    return schema_from_settings(get("TOUCAN_ATTRIBUTES"), get("TOUCAN_ATTRIBUTE_MAX_LENGTH"), required)


@dataclass(frozen=True, repr=False)
class ToucanConfig:
    """The validated settings. Secrets are kept but never shown by ``repr``."""

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
    # classic profile (see _classic_settings); the secret is never part of a repr
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
    attribute_schema: AttributeSchema = field(default_factory=AttributeSchema)

    def __repr__(self) -> str:
        return f"ToucanConfig(mode={self.mode!r}, base_url={self.base_url!r})"

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> ToucanConfig:
        def get(key: str) -> Any:
            return config.get(key, DEFAULTS[key])

        mode = get("TOUCAN_MODE")
        if mode not in MODES:
            raise ConfigurationError(f"TOUCAN_MODE must be one of {', '.join(MODES)}")

        base_url = get("TOUCAN_BASE_URL")
        if base_url is not None or mode == "api":
            base_url = _http_url("TOUCAN_BASE_URL", base_url)

        api_key = get("TOUCAN_API_KEY")
        token_url = None
        if mode == "api":
            if not isinstance(api_key, str) or not api_key.strip():
                raise ConfigurationError("TOUCAN_API_KEY is required when TOUCAN_MODE is 'api'")
            # Keys read from files often end in a newline; an HTTP client would then
            # refuse the header and quote it in its error. Strip, then insist on
            # printable ASCII (the message never repeats the value).
            api_key = api_key.strip()
            if not all(0x21 <= ord(c) <= 0x7E for c in api_key):
                raise ConfigurationError("TOUCAN_API_KEY contains spaces, control or non-ASCII characters")
            path = get("TOUCAN_TOKEN_PATH")
            if not isinstance(path, str) or not path.startswith("/"):
                raise ConfigurationError("TOUCAN_TOKEN_PATH must be a path starting with '/'")
            token_url = f"{base_url}{path}"

        max_ttl = int(_positive_number("TOUCAN_TOKEN_MAX_TTL", get("TOUCAN_TOKEN_MAX_TTL"), integer=True))
        ttl_value = get("TOUCAN_TOKEN_TTL")
        ttl = 300 if ttl_value is None else int(_positive_number("TOUCAN_TOKEN_TTL", ttl_value, integer=True))
        if ttl > max_ttl:
            raise ConfigurationError(f"TOUCAN_TOKEN_TTL ({ttl}) is above TOUCAN_TOKEN_MAX_TTL ({max_ttl})")

        keys = None
        issuer = get("TOUCAN_ISSUER")
        audience = get("TOUCAN_AUDIENCE")
        exchange_url = get("TOUCAN_EXCHANGE_URL")
        if mode == "signed":
            if get("TOUCAN_SIGNING_KEY") in (None, ""):
                raise ConfigurationError("TOUCAN_SIGNING_KEY is required when TOUCAN_MODE is 'signed'")
            algorithm = get("TOUCAN_SIGNING_ALGORITHM")
            fallbacks = get("TOUCAN_SIGNING_KEY_FALLBACKS") or ()
            if isinstance(fallbacks, str | bytes):
                fallbacks = (fallbacks,)
            keys = load_key_set(
                get("TOUCAN_SIGNING_KEY"),
                algorithm=algorithm,
                kid=get("TOUCAN_SIGNING_KEY_ID"),
                next_key=get("TOUCAN_SIGNING_KEY_NEXT"),
                fallbacks=fallbacks,
            )
            if exchange_url is not None:
                exchange_url = _http_url("TOUCAN_EXCHANGE_URL", exchange_url)
                if audience in (None, ""):
                    audience = exchange_url  # docs-v3: aud is the OAuth token endpoint
            for name, value in (("TOUCAN_ISSUER", issuer), ("TOUCAN_AUDIENCE", audience)):
                if not isinstance(value, str) or not value:
                    raise ConfigurationError(f"{name} is required when TOUCAN_MODE is 'signed'")

        required = get("TOUCAN_REQUIRED_ATTRIBUTES")
        if isinstance(required, str):
            required = (required,)
        if not isinstance(required, Sequence) or not all(isinstance(a, str) for a in required):
            raise ConfigurationError("TOUCAN_REQUIRED_ATTRIBUTES must be a list of attribute names")

        prefix = get("TOUCAN_URL_PREFIX")
        if not isinstance(prefix, str) or not prefix.startswith("/") or prefix.endswith("/"):
            raise ConfigurationError("TOUCAN_URL_PREFIX must start with '/' and not end with one")

        lifetime = get("TOUCAN_SESSION_LIFETIME")
        if lifetime is None:
            permanent = config.get("PERMANENT_SESSION_LIFETIME") or 31 * 24 * 3600
            if isinstance(permanent, timedelta):
                permanent = permanent.total_seconds()
            lifetime = int(permanent)
        lifetime = int(_positive_number("TOUCAN_SESSION_LIFETIME", lifetime, integer=True))
        csrf_max_age = get("TOUCAN_CSRF_MAX_AGE") or lifetime

        retries = get("TOUCAN_HTTP_RETRIES")
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 5:
            raise ConfigurationError("TOUCAN_HTTP_RETRIES must be an integer from 0 to 5")

        transport = _transport_settings(get)
        session_claims = get("TOUCAN_SESSION_CLAIMS")
        script = get("TOUCAN_EMBED_SCRIPT_URL")
        server = get("TOUCAN_SERVER_URL")
        return cls(
            **_store_settings(get),
            mode=mode,
            base_url=base_url,
            api_key=api_key if mode == "api" else None,
            token_url=token_url,
            embed_script_url=_http_url("TOUCAN_EMBED_SCRIPT_URL", script)
            if script
            else (f"{base_url}/embed/embed.js" if base_url else None),
            server_url=_http_url("TOUCAN_SERVER_URL", server)
            if server
            else (f"{base_url}/api" if base_url else None),
            user_role=str(get("TOUCAN_USER_ROLE")),
            keys=keys,
            issuer=issuer,
            audience=audience,
            workspace_id=get("TOUCAN_WORKSPACE_ID"),
            exchange_url=exchange_url if mode == "signed" else None,
            token_ttl=ttl,
            max_ttl=max_ttl,
            refresh_margin=_positive_number("TOUCAN_REFRESH_MARGIN", get("TOUCAN_REFRESH_MARGIN")),
            required_attributes=tuple(required),
            url_prefix=prefix,
            oauth_client=get("TOUCAN_OAUTH_CLIENT"),
            login_redirect=get("TOUCAN_LOGIN_REDIRECT"),
            logout_redirect=get("TOUCAN_LOGOUT_REDIRECT"),
            session_claims=tuple(session_claims) if session_claims is not None else None,
            fetch_userinfo=bool(get("TOUCAN_FETCH_USERINFO")),
            session_lifetime=lifetime,
            connect_timeout=_positive_number(
                "TOUCAN_HTTP_CONNECT_TIMEOUT", get("TOUCAN_HTTP_CONNECT_TIMEOUT")
            ),
            deadline=_positive_number("TOUCAN_HTTP_DEADLINE", get("TOUCAN_HTTP_DEADLINE")),
            retries=retries,
            max_response_bytes=int(
                _positive_number(
                    "TOUCAN_HTTP_MAX_RESPONSE_BYTES", get("TOUCAN_HTTP_MAX_RESPONSE_BYTES"), integer=True
                )
            ),
            store=get("TOUCAN_STORE"),
            rate_limit=get("TOUCAN_RATE_LIMIT"),
            csrf_header=get("TOUCAN_CSRF_HEADER"),
            csrf_max_age=int(csrf_max_age),
            placeholder_template=get("TOUCAN_PLACEHOLDER_TEMPLATE"),
            error_handlers=bool(get("TOUCAN_ERROR_HANDLERS")),
            **_classic_settings(get, exchange_url if mode == "signed" else None),
            **transport,
            assistant_route=_assistant_route(get("TOUCAN_ASSISTANT_ROUTE")),
            attribute_schema=_attribute_schema(get, tuple(required)),
        )

    def margin_for(self, lifetime: float) -> float:
        """How long before expiry a token stops being served from cache.

        A quarter of the lifetime at most, so very short lifetimes (tests,
        aggressive deployments) still get served at all.
        """
        return min(self.refresh_margin, lifetime / 4)


def _store_settings(get: Any) -> dict[str, Any]:
    """The store's Redis timeouts and circuit breaker (area: store)."""
    failures = get("TOUCAN_STORE_BREAKER_FAILURES")
    if isinstance(failures, bool) or not isinstance(failures, int) or not 1 <= failures <= 1000:
        raise ConfigurationError("TOUCAN_STORE_BREAKER_FAILURES must be an integer from 1 to 1000")
    return {
        "store_connect_timeout": _positive_number(
            "TOUCAN_STORE_CONNECT_TIMEOUT", get("TOUCAN_STORE_CONNECT_TIMEOUT")
        ),
        "store_timeout": _positive_number("TOUCAN_STORE_TIMEOUT", get("TOUCAN_STORE_TIMEOUT")),
        "store_breaker_failures": failures,
        "store_breaker_cooldown": _positive_number(
            "TOUCAN_STORE_BREAKER_COOLDOWN", get("TOUCAN_STORE_BREAKER_COOLDOWN")
        ),
    }
