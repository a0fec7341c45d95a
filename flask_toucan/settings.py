"""The ``TOUCAN_*`` settings as one table: key, default, parser, one-line doc.

The table drives everything a setting needs:

* validation: :func:`parse` runs each row's parser in table order (a parser
  may read settings parsed before it through the :class:`Context`) and
  returns the fields of :class:`~flask_toucan.config.ToucanConfig`;
* defaults: :func:`apply_defaults` puts every default into ``app.config`` at
  ``init_app`` (``app.config.setdefault``), so an app sees what it runs with;
* docs: :mod:`flask_toucan.settings_docs` renders it as the Markdown table of
  docs/configuration.md and the README (``python -m flask_toucan.settings_docs
  --write`` rewrites both), and a test fails when they differ from the table.

Adding a setting is one row here (and a field of ``ToucanConfig`` when the
value is used as such). Error messages name the setting and never repeat a
secret's value. Core module: nothing here knows of Flask requests.
"""

from __future__ import annotations

import importlib.util
import os
import ssl
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from datetime import timedelta
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from .exceptions import ConfigurationError
from .realm import audience_required
from .schema import DEFAULT_MAX_LENGTH, schema_from_settings

MODES = ("api", "signed")
#: The client authentication methods of the classic exchange (Authlib's names).
EXCHANGE_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class Context:
    """What a parser sees: the raw settings (with defaults) and the values parsed so far."""

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self.mapping = mapping
        self.values: dict[str, Any] = {}

    def raw(self, key: str) -> Any:
        return self.mapping.get(key, DEFAULTS[key])

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


Parser = Callable[[Any, Context], Any]


class Setting(NamedTuple):
    """One row: ``parse(value, ctx)`` validates and returns what ``field`` of the config gets.

    ``field=None``: the value is read by another row's parser (e.g. the key id
    by the signing key's); ``shown`` is how the docs show a computed default.
    """

    key: str
    default: Any
    doc: str
    parse: Parser | None = None
    field: str | None = None
    shown: str | None = None

    def shown_default(self) -> str:
        if self.shown is not None:
            return self.shown
        value = self.default
        if isinstance(value, str):
            return f'`"{value}"`'
        if isinstance(value, tuple):
            return "`[" + ", ".join(f'"{v}"' for v in value) + "]`"
        return f"`{value!r}`"


# ------------------------------------------------------------------ helpers
def positive_number(name: str, value: Any, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigurationError(f"{name} must be {kind} (seconds)")
    if integer and not isinstance(value, int):
        raise ConfigurationError(f"{name} must be a positive integer (seconds)")
    return value


def http_url(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} is required")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{name} must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise ConfigurationError(f"{name} must not carry credentials")
    return value.rstrip("/")


def _signed(ctx: Context) -> bool:
    return bool(ctx["TOUCAN_MODE"] == "signed")


def _number(key: str) -> Parser:
    return lambda value, ctx: positive_number(key, value)


def _integer(key: str) -> Parser:
    return lambda value, ctx: int(positive_number(key, value, integer=True))


def _flag(key: str) -> Parser:
    def parse(value: Any, ctx: Context) -> bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{key} must be True or False")
        return value

    return parse


def _truthy(value: Any, ctx: Context) -> bool:
    return bool(value)


def _as_is(value: Any, ctx: Context) -> Any:
    return value


def _int_range(key: str, low: int, high: int) -> Parser:
    def parse(value: Any, ctx: Context) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigurationError(f"{key} must be an integer from {low} to {high}")
        return value

    return parse


def _non_empty(key: str) -> Parser:
    def parse(value: Any, ctx: Context) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{key} must be a non-empty string")
        return value

    return parse


# ------------------------------------------------------------------ parsers
def _mode(value: Any, ctx: Context) -> str:
    if value not in MODES:
        raise ConfigurationError(f"TOUCAN_MODE must be one of {', '.join(MODES)}")
    return str(value)


def _base_url(value: Any, ctx: Context) -> str | None:
    if value is not None or ctx["TOUCAN_MODE"] == "api":
        return http_url("TOUCAN_BASE_URL", value)
    return None


def _api_key(value: Any, ctx: Context) -> str | None:
    if ctx["TOUCAN_MODE"] != "api":
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("TOUCAN_API_KEY is required when TOUCAN_MODE is 'api'")
    # Keys read from files often end in a newline; an HTTP client would then
    # refuse the header and quote it in its error. Strip, then insist on
    # printable ASCII (the message never repeats the value).
    value = value.strip()
    if not all(0x21 <= ord(c) <= 0x7E for c in value):
        raise ConfigurationError("TOUCAN_API_KEY contains spaces, control or non-ASCII characters")
    return str(value)


def _token_url(value: Any, ctx: Context) -> str | None:
    """The token API's URL (api mode): base URL + ``TOUCAN_TOKEN_PATH``."""
    if ctx["TOUCAN_MODE"] != "api":
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigurationError("TOUCAN_TOKEN_PATH must be a path starting with '/'")
    return f"{ctx['TOUCAN_BASE_URL']}{value}"


def _below_base(key: str, suffix: str) -> Parser:
    def parse(value: Any, ctx: Context) -> str | None:
        if value:
            return http_url(key, value)
        base = ctx["TOUCAN_BASE_URL"]
        return f"{base}{suffix}" if base else None

    return parse


def _ttl(value: Any, ctx: Context) -> int:
    ttl = 300 if value is None else int(positive_number("TOUCAN_TOKEN_TTL", value, integer=True))
    max_ttl = ctx["TOUCAN_TOKEN_MAX_TTL"]
    if ttl > max_ttl:
        raise ConfigurationError(f"TOUCAN_TOKEN_TTL ({ttl}) is above TOUCAN_TOKEN_MAX_TTL ({max_ttl})")
    return ttl


def _signing_keys(value: Any, ctx: Context) -> Any:
    """The key set of signed mode: this key, its id and algorithm, the next and older keys."""
    if not _signed(ctx):
        return None
    if value in (None, ""):
        raise ConfigurationError("TOUCAN_SIGNING_KEY is required when TOUCAN_MODE is 'signed'")
    fallbacks = ctx.raw("TOUCAN_SIGNING_KEY_FALLBACKS") or ()
    if isinstance(fallbacks, str | bytes):
        fallbacks = (fallbacks,)
    from .keys import HMAC_ALGORITHMS, load_key_set  # signed mode only: api mode never loads keys

    algorithm = ctx.raw("TOUCAN_SIGNING_ALGORITHM")
    classic = ctx.raw("TOUCAN_EXCHANGE_URL") is not None
    if classic and algorithm in HMAC_ALGORITHMS:
        raise ConfigurationError(
            f"TOUCAN_SIGNING_ALGORITHM {algorithm} cannot be used with TOUCAN_EXCHANGE_URL: the "
            "exchange (Keycloak's JWT Authorization Grant) takes asymmetric algorithms only; "
            "use an RSA (RS512, as docs-v3's example), EC or Ed25519 key"
        )
    return load_key_set(
        value,
        algorithm=algorithm,
        kid=ctx.raw("TOUCAN_SIGNING_KEY_ID"),
        next_key=ctx.raw("TOUCAN_SIGNING_KEY_NEXT"),
        fallbacks=fallbacks,
        rsa_default="RS512" if classic else "RS256",  # docs-v3's example signs RS512
    )


def _exchange_url(value: Any, ctx: Context) -> str | None:
    if not _signed(ctx) or value is None:
        return None
    return http_url("TOUCAN_EXCHANGE_URL", value)


def _issuer(value: Any, ctx: Context) -> Any:
    if _signed(ctx) and (not isinstance(value, str) or not value):
        raise ConfigurationError("TOUCAN_ISSUER is required when TOUCAN_MODE is 'signed'")
    return value


def _audience(value: Any, ctx: Context) -> Any:
    """Required in signed mode, never guessed: a wrong ``aud`` fails every exchange (see :mod:`.realm`)."""
    if not _signed(ctx):
        return value
    if not isinstance(value, str) or not value.strip():
        if ctx["TOUCAN_EXCHANGE_URL"] is not None:
            raise ConfigurationError(audience_required(ctx["TOUCAN_EXCHANGE_URL"]))
        raise ConfigurationError("TOUCAN_AUDIENCE is required when TOUCAN_MODE is 'signed'")
    return value


def _assertion_subject(value: Any, ctx: Context) -> str:
    value = ctx["TOUCAN_EXCHANGE_CLIENT_ID"] if value is None else value
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("TOUCAN_ASSERTION_SUBJECT must be a non-empty string")
    return value


def _auth_method(value: Any, ctx: Context) -> str:
    if value not in EXCHANGE_AUTH_METHODS:
        allowed = ", ".join(EXCHANGE_AUTH_METHODS)
        raise ConfigurationError(f"TOUCAN_EXCHANGE_AUTH_METHOD must be one of {allowed}")
    return str(value)


def _client_secret(value: Any, ctx: Context) -> str | None:
    """Required only when there is an exchange to send it to; errors never show it."""
    if ctx["TOUCAN_EXCHANGE_URL"] is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("TOUCAN_EXCHANGE_CLIENT_SECRET is required when TOUCAN_EXCHANGE_URL is set")
    value = value.strip()  # secrets read from files often end in a newline
    if not all(0x20 <= ord(c) <= 0x7E for c in value):
        raise ConfigurationError("TOUCAN_EXCHANGE_CLIENT_SECRET contains control or non-ASCII characters")
    return str(value)


def _required(value: Any, ctx: Context) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not all(isinstance(a, str) for a in value):
        raise ConfigurationError("TOUCAN_REQUIRED_ATTRIBUTES must be a list of attribute names")
    return tuple(value)


def _attribute_schema(value: Any, ctx: Context) -> Any:
    """``TOUCAN_ATTRIBUTES`` with ``TOUCAN_ATTRIBUTE_MAX_LENGTH`` (see :mod:`flask_toucan.schema`)."""
    return schema_from_settings(ctx.raw("TOUCAN_ATTRIBUTES"), value, ctx["TOUCAN_REQUIRED_ATTRIBUTES"])


def _prefix(value: Any, ctx: Context) -> str:
    if not isinstance(value, str) or not value.startswith("/") or value.endswith("/"):
        raise ConfigurationError("TOUCAN_URL_PREFIX must start with '/' and not end with one")
    return value


def _session_claims(value: Any, ctx: Context) -> tuple[str, ...] | None:
    return tuple(value) if value is not None else None


#: ``TOUCAN_SESSION_LIFETIME``'s default: 12 hours (no longer Flask's 31-day
#: ``PERMANENT_SESSION_LIFETIME``: the login record mints the tenant's tokens).
DEFAULT_SESSION_LIFETIME = 12 * 3600


def _session_lifetime(value: Any, ctx: Context) -> int:
    if value is None:
        value = DEFAULT_SESSION_LIFETIME
    if isinstance(value, timedelta):
        value = int(value.total_seconds())
    return int(positive_number("TOUCAN_SESSION_LIFETIME", value, integer=True))


def _seconds_or_off(key: str) -> Parser:
    """Whole seconds, ``0`` (or ``None``) turning the check off."""

    def parse(value: Any, ctx: Context) -> int:
        if value is None or value == 0:
            return 0
        if isinstance(value, timedelta):
            value = int(value.total_seconds())
        return int(positive_number(key, value, integer=True))

    return parse


def _idp_revalidate(value: Any, ctx: Context) -> int | None:
    """``None``: the default (300 s when the provider issued a refresh token); ``0``: off."""
    if value is None:
        return None
    return int(_seconds_or_off("TOUCAN_IDP_REVALIDATE")(value, ctx))


def _csrf_max_age(value: Any, ctx: Context) -> int:
    return int(value or ctx["TOUCAN_SESSION_LIFETIME"])


def _proxy_url(value: Any, ctx: Context) -> str | None:
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


def _ca_bundle(value: Any, ctx: Context) -> str | None:
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


def _optional_number(key: str) -> Parser:
    return lambda value, ctx: None if value is None else positive_number(key, value)


def _store_ca_bundle(value: Any, ctx: Context) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigurationError("TOUCAN_STORE_CA_BUNDLE must be the path of a PEM CA file")
    return value


def _login_routes(value: Any, ctx: Context) -> bool | None:
    """``None`` (on when an OAuth registry is given), ``True`` (an OAuth registry required) or ``False``."""
    if value is not None and not isinstance(value, bool):
        raise ConfigurationError("TOUCAN_LOGIN_ROUTES must be None, True or False")
    return value


def _assistant_route(value: Any, ctx: Context) -> bool:
    """A bool; when on, the ``mcp`` extra must be installed."""
    if not isinstance(value, bool):
        raise ConfigurationError("TOUCAN_ASSISTANT_ROUTE must be True or False")
    if value and importlib.util.find_spec("mcp") is None:  # found, not imported
        raise ConfigurationError("TOUCAN_ASSISTANT_ROUTE needs the MCP SDK: pip install 'flask-toucan[mcp]'")
    return value


S = Setting
#: Every setting, in the order parsers run (a parser reads only rows above it).
SETTINGS: tuple[Setting, ...] = (
    # -- the Toucan instance
    S(
        "TOUCAN_MODE",
        "api",
        '`"api"`: tokens from Toucan\'s token API (Toucan AI); `"signed"`: the app signs JWTs itself (classic self-hosted Toucan, with `TOUCAN_EXCHANGE_URL`)',
        _mode,
        "mode",
    ),
    S(
        "TOUCAN_BASE_URL",
        None,
        "the Toucan instance, e.g. `https://acme.toucan.example`",
        _base_url,
        "base_url",
        "— (required in api mode)",
    ),
    S(
        "TOUCAN_API_KEY",
        None,
        "sent as `x-api-key`; never rendered, logged or put in an error",
        _api_key,
        "api_key",
        "— (required in api mode)",
    ),
    S(
        "TOUCAN_TOKEN_PATH",
        "/embed/generate-token",
        "path of the token API; `/api/generate-token` is the older documented path",
        _token_url,
        "token_url",
        "`/embed/generate-token`",
    ),
    S(
        "TOUCAN_EMBED_SCRIPT_URL",
        None,
        "the components' script",
        _below_base("TOUCAN_EMBED_SCRIPT_URL", "/embed/embed.js"),
        "embed_script_url",
        "`{base}/embed/embed.js`",
    ),
    S(
        "TOUCAN_SERVER_URL",
        None,
        "the components' `server-url`: the instance's API root, as Toucan documents it",
        _below_base("TOUCAN_SERVER_URL", "/api"),
        "server_url",
        '`TOUCAN_BASE_URL + "/api"`',
    ),
    S(
        "TOUCAN_USER_ROLE",
        "explorer",
        "the user's `role` in the token request",
        lambda v, ctx: str(v),
        "user_role",
    ),
    # -- token lifetimes
    S(
        "TOUCAN_TOKEN_MAX_TTL",
        3600,
        "upper bound: `TOUCAN_TOKEN_TTL` above it is refused; in api mode it caps how long a token is served",
        _integer("TOUCAN_TOKEN_MAX_TTL"),
        "max_ttl",
    ),
    S("TOUCAN_TOKEN_TTL", None, "lifetime of signed tokens, seconds", _ttl, "token_ttl", "`300`"),
    S(
        "TOUCAN_REFRESH_MARGIN",
        60,
        "a cached token stops being served this long before expiry (at most a quarter of its lifetime)",
        _number("TOUCAN_REFRESH_MARGIN"),
        "refresh_margin",
    ),
    # -- signed mode (classic self-hosted Toucan)
    S(
        "TOUCAN_SIGNING_KEY",
        None,
        "PEM text or a file path (RSA ≥ 2048 bits, P-256/384/521, Ed25519), or an HMAC secret ≥ 32 bytes with an explicit `HS*` algorithm",
        _signing_keys,
        "keys",
        "— (required in signed mode)",
    ),
    S("TOUCAN_SIGNING_KEY_ID", None, "the `kid`", shown="RFC 7638 thumbprint"),
    S(
        "TOUCAN_SIGNING_ALGORITHM",
        None,
        "must fit the key; `none` is never accepted; HMAC never mixes with asymmetric keys; `HS*` is refused with `TOUCAN_EXCHANGE_URL` (the exchange takes asymmetric algorithms only)",
        shown="from the key: RSA → RS512 with `TOUCAN_EXCHANGE_URL` (docs-v3's example), else RS256",
    ),
    S("TOUCAN_SIGNING_KEY_NEXT", None, "the next key, published in the JWKS before it signs"),
    S(
        "TOUCAN_SIGNING_KEY_FALLBACKS",
        (),
        "older keys (public halves suffice), still published so tokens they signed verify until they expire",
        shown="`[]`",
    ),
    S(
        "TOUCAN_EXCHANGE_URL",
        None,
        "classic profile: the realm token endpoint, `{instance}/api/auth/realms/{tenant}/protocol/openid-connect/token` (Toucan's `/api/auth` in front of Keycloak's `/realms/{realm}/protocol/openid-connect/token`; both accepted). Unset = signed-direct, which **no Toucan product accepts** (sandbox/tests only)",
        _exchange_url,
        "exchange_url",
    ),
    S(
        "TOUCAN_ISSUER",
        None,
        "`iss` of the assertion (Toucan's Embed settings)",
        _issuer,
        "issuer",
        "— (required in signed mode)",
    ),
    S(
        "TOUCAN_AUDIENCE",
        None,
        "`aud` of the assertion, one string, never guessed. docs-v3: `OAUTH_URL/TENANT_ID/oauth/oauth-token` from the admin interface (Embed settings); a Keycloak-based exchange: the realm issuer `{instance}/api/auth/realms/{tenant}` or the token endpoint (`TOUCAN_EXCHANGE_URL`)",
        _audience,
        "audience",
        "— (required in signed mode)",
    ),
    S("TOUCAN_WORKSPACE_ID", None, "`embed_context.workspace_id`", _as_is, "workspace_id"),
    S(
        "TOUCAN_EXCHANGE_CLIENT_ID",
        "toucan-embed-client",
        "the embed client of the exchange",
        _non_empty("TOUCAN_EXCHANGE_CLIENT_ID"),
        "exchange_client_id",
    ),
    S(
        "TOUCAN_EXCHANGE_SCOPE",
        "embed",
        "the `scope` of the token request",
        _non_empty("TOUCAN_EXCHANGE_SCOPE"),
        "exchange_scope",
    ),
    S(
        "TOUCAN_ASSERTION_SUBJECT",
        None,
        "the assertion's `sub` (the value shared in Toucan's Embed settings); the user goes in `embed_context.username`",
        _assertion_subject,
        "assertion_subject",
        "`TOUCAN_EXCHANGE_CLIENT_ID`",
    ),
    S(
        "TOUCAN_EXCHANGE_AUTH_METHOD",
        "client_secret_basic",
        'or `"client_secret_post"` (Authlib\'s client authentication)',
        _auth_method,
        "exchange_auth_method",
    ),
    S(
        "TOUCAN_EXCHANGE_CLIENT_SECRET",
        None,
        "the Embed Manager's client secret; stripped; never rendered, logged, printed or put in an error or repr",
        _client_secret,
        "exchange_client_secret",
        "— (required with `TOUCAN_EXCHANGE_URL`)",
    ),
    # -- identity, login and the blueprint
    S(
        "TOUCAN_REQUIRED_ATTRIBUTES",
        ("organization_id",),
        "attributes that must map to a value, or no token is minted",
        _required,
        "required_attributes",
    ),
    # attribute schema: declared types, per-value length cap (read together by the second row)
    S(
        "TOUCAN_ATTRIBUTES",
        None,
        'declared attribute types, `{name: type}` with type `str`, `int`, `float`, `bool`, `datetime`, `list[str]` (or Toucan\'s `Text`, `Integer`, `Float`, `Boolean`, `Datetime`; any case). Set: undeclared attributes are refused. See usage.md, "Declaring attribute types"',
    ),
    S(
        "TOUCAN_ATTRIBUTE_MAX_LENGTH",
        DEFAULT_MAX_LENGTH,
        "most characters in one attribute value (each list item too); with or without a schema",
        _attribute_schema,
        "attribute_schema",
    ),
    S("TOUCAN_URL_PREFIX", "/toucan", "the blueprint's prefix", _prefix, "url_prefix", "`/toucan`"),
    S(
        "TOUCAN_OAUTH_CLIENT",
        None,
        "name of the Authlib client to log in with (checked, and given PKCE S256, at `init_app`)",
        _as_is,
        "oauth_client",
        "the only registered client",
    ),
    S(
        "TOUCAN_LOGIN_ROUTES",
        None,
        "`True`: `{prefix}/login` and `/callback` drive the Authlib client, and `init_app` refuses to "
        "start without `oauth=`; `False`: the app logs users in itself (`toucan.login_user`), "
        "`flask toucan check` does not ask for `oauth=`",
        _login_routes,
        "login_routes",
        "`None` (on when `oauth=` is given)",
    ),
    S(
        "TOUCAN_LOGIN_REDIRECT",
        "/",
        "where to go after login when no safe `next` is given",
        _as_is,
        "login_redirect",
        "`/`",
    ),
    S(
        "TOUCAN_LOGOUT_REDIRECT",
        "/",
        "where to go after logout when no safe `next` is given",
        _as_is,
        "logout_redirect",
        "`/`",
    ),
    S(
        "TOUCAN_SESSION_CLAIMS",
        None,
        "which identity claims to keep in the session (it is a cookie: keep it small)",
        _session_claims,
        "session_claims",
        "`None` (all but protocol claims)",
    ),
    S(
        "TOUCAN_FETCH_USERINFO",
        True,
        "after login, add the provider's UserInfo claims (same `sub` required; id_token claims win)",
        _truthy,
        "fetch_userinfo",
    ),
    S(
        "TOUCAN_SESSION_LIFETIME",
        None,
        "seconds: absolute lifetime of the server-side login record (whatever the activity); checked on the record in the store",
        _session_lifetime,
        "session_lifetime",
        "`43200` (12 hours)",
    ),
    S(
        "TOUCAN_SESSION_IDLE_TIMEOUT",
        1800,
        "seconds without activity (a page rendering the kit, or the refresh script's ping after user interaction; not its timed refreshes) after which the login ends; `0` disables",
        _seconds_or_off("TOUCAN_SESSION_IDLE_TIMEOUT"),
        "session_idle_timeout",
    ),
    S(
        "TOUCAN_IDP_REVALIDATE",
        None,
        "seconds: at most this long between asking the identity provider (refresh-token grant) whether the login still stands; `invalid_grant` or another `sub` ends it; `0` disables",
        _idp_revalidate,
        "idp_revalidate",
        "`300` when the provider issued a refresh token",
    ),
    S("TOUCAN_CSRF_HEADER", "X-Toucan-CSRF", "header carrying the CSRF token", _as_is, "csrf_header"),
    S(
        "TOUCAN_CSRF_MAX_AGE",
        None,
        "seconds a CSRF token stays valid",
        _csrf_max_age,
        "csrf_max_age",
        "the session lifetime",
    ),
    # -- store and rate limit
    S(
        "TOUCAN_STORE",
        "memory",
        '`"memory"`, `"redis://…"` (also `rediss://`, `unix://`, `redis+sentinel://`, `redis+cluster://`), `"file:///path"`, or a `cachelib` cache: token cache and login records; use Redis with several workers',
        _as_is,
        "store",
    ),
    S(
        "TOUCAN_STORE_CONNECT_TIMEOUT",
        0.5,
        "seconds: Redis connect timeout (store, rate-limit counters included)",
        _number("TOUCAN_STORE_CONNECT_TIMEOUT"),
        "store_connect_timeout",
    ),
    S(
        "TOUCAN_STORE_TIMEOUT",
        0.5,
        "seconds: Redis read/write timeout (store, rate-limit counters included)",
        _number("TOUCAN_STORE_TIMEOUT"),
        "store_timeout",
    ),
    S(
        "TOUCAN_STORE_BREAKER_FAILURES",
        3,
        "consecutive store failures that open the circuit breaker (1 to 1000)",
        _int_range("TOUCAN_STORE_BREAKER_FAILURES", 1, 1000),
        "store_breaker_failures",
    ),
    S(
        "TOUCAN_STORE_BREAKER_COOLDOWN",
        2.0,
        "seconds the breaker stays open (store calls fail fast with 503) before one probe call",
        _number("TOUCAN_STORE_BREAKER_COOLDOWN"),
        "store_breaker_cooldown",
    ),
    # scale: in-process store capacities, the cross-worker lock, the Redis CA (docs/deployment.md)
    S(
        "TOUCAN_STORE_MAX_TOKENS",
        100_000,
        '`"memory"` store: cached tokens kept (LRU); about 3.3 KiB per user with its login',
        _integer("TOUCAN_STORE_MAX_TOKENS"),
        "store_max_tokens",
    ),
    S(
        "TOUCAN_STORE_MAX_SESSIONS",
        100_000,
        '`"memory"` store: login records kept, never pushed out by tokens; past it the oldest login is lost (warning logged)',
        _integer("TOUCAN_STORE_MAX_SESSIONS"),
        "store_max_sessions",
    ),
    S(
        "TOUCAN_STORE_NEAR_CACHE",
        10_000,
        "single-server Redis store: login records and tokens each worker keeps a copy of, kept true by Redis's invalidation messages (client tracking, Redis 6+); `0` reads Redis on every request",
        _int_range("TOUCAN_STORE_NEAR_CACHE", 0, 10_000_000),
        "store_near_cache",
    ),
    S(
        "TOUCAN_STORE_LOCK_TTL",
        None,
        "seconds: the Redis lock of the cross-worker single-flight (a dead holder's lock expires after it)",
        _optional_number("TOUCAN_STORE_LOCK_TTL"),
        "store_lock_ttl",
        "`TOUCAN_HTTP_DEADLINE`",
    ),
    S(
        "TOUCAN_STORE_CA_BUNDLE",
        None,
        "PEM CA file for a `rediss://` store",
        _store_ca_bundle,
        "store_ca_bundle",
        "`None` (the system's CAs)",
    ),
    S(
        "TOUCAN_RATE_LIMIT",
        "30/minute",
        'per-session limit of the refresh endpoint, a fixed window counted in the store (`limits` syntax, e.g. `"5/second;100/hour"`; `None` disables)',
        _as_is,
        "rate_limit",
    ),
    # -- outbound HTTP
    S(
        "TOUCAN_HTTP_CONNECT_TIMEOUT",
        3.0,
        "seconds to open a connection (TCP + TLS)",
        _number("TOUCAN_HTTP_CONNECT_TIMEOUT"),
        "connect_timeout",
    ),
    S(
        "TOUCAN_HTTP_READ_TIMEOUT",
        5.0,
        "idle-read timeout: the longest silence allowed while waiting for or reading the answer",
        _number("TOUCAN_HTTP_READ_TIMEOUT"),
        "read_timeout",
    ),
    S(
        "TOUCAN_HTTP_DEADLINE",
        10.0,
        "seconds for a whole upstream call: connect, every retry, back-off and the body",
        _number("TOUCAN_HTTP_DEADLINE"),
        "deadline",
    ),
    S(
        "TOUCAN_HTTP_RETRIES",
        2,
        "extra attempts on connection errors, 429, 502, 503, 504 (never on another 4xx)",
        _int_range("TOUCAN_HTTP_RETRIES", 0, 5),
        "retries",
    ),
    S(
        "TOUCAN_HTTP_MAX_RESPONSE_BYTES",
        64 * 1024,
        "bigger answers are refused, counted after gzip / deflate / br decoding",
        _integer("TOUCAN_HTTP_MAX_RESPONSE_BYTES"),
        "max_response_bytes",
    ),
    S(
        "TOUCAN_HTTP_PROXY",
        None,
        "`http://[user:password@]host:port` forward proxy for the token API and the exchange (http and https; https goes through `CONNECT`). Never shown in an error or by `flask toucan check`",
        _proxy_url,
        "http_proxy",
    ),
    S(
        "TOUCAN_HTTP_CA_BUNDLE",
        None,
        "path of a PEM file of CA certificates (or an OpenSSL hashed directory) to verify Toucan's TLS certificate: a self-hosted instance behind a private CA",
        _ca_bundle,
        "ca_bundle",
        "`None` (certifi's bundle)",
    ),
    S(
        "TOUCAN_HTTP_TRUST_ENV",
        False,
        "`True` lets `HTTP(S)_PROXY`, `NO_PROXY`, `REQUESTS_CA_BUNDLE` and `.netrc` apply; off by default so nothing in the environment redirects a secret-bearing call. `TOUCAN_HTTP_CA_BUNDLE` still wins when set",
        _flag("TOUCAN_HTTP_TRUST_ENV"),
        "trust_env",
    ),
    # -- pages
    S(
        "TOUCAN_PLACEHOLDER_TEMPLATE",
        "toucan/placeholder.html",
        "rendered instead of a component when there is no token",
        _as_is,
        "placeholder_template",
    ),
    S(
        "TOUCAN_ERROR_HANDLERS",
        True,
        "also register the JSON error handler on the app (not only the blueprint)",
        _truthy,
        "error_handlers",
    ),
    S(
        "TOUCAN_ASSISTANT_ROUTE",
        False,
        "add `POST {prefix}/assistant/ask` (the MCP assistant for a host chat; needs the `mcp` extra)",
        _assistant_route,
        "assistant_route",
    ),
    # -- ending logins from the provider's side (issue 20)
    S(
        "TOUCAN_BACKCHANNEL_LOGOUT",
        False,
        "add `POST {prefix}/backchannel-logout` (OIDC Back-Channel Logout 1.0; needs the OAuth client)",
        _truthy,
        "backchannel_logout",
    ),
    S(
        "TOUCAN_RP_INITIATED_LOGOUT",
        True,
        "`POST {prefix}/logout` also ends the provider's session at its `end_session_endpoint`",
        _truthy,
        "rp_initiated_logout",
    ),
    S(
        "TOUCAN_POST_LOGOUT_REDIRECT_URI",
        None,
        "the `post_logout_redirect_uri` registered at the provider (absolute URL)",
        _as_is,
        "post_logout_redirect_uri",
        "`{prefix}/logged-out` on this host",
    ),
)
del S

#: Every key's default (what ``app.config`` gets at ``init_app``).
DEFAULTS: dict[str, Any] = {s.key: s.default for s in SETTINGS}


def parse(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every setting of ``mapping`` in table order; the config's fields by name."""
    ctx = Context(mapping)
    fields: dict[str, Any] = {}
    for setting in SETTINGS:
        value = ctx.raw(setting.key)
        ctx.values[setting.key] = setting.parse(value, ctx) if setting.parse else value
        if setting.field is not None:
            fields[setting.field] = ctx.values[setting.key]
    return fields


def apply_defaults(config: MutableMapping[str, Any]) -> None:
    """``config.setdefault`` for every key: the defaults become visible in ``app.config``."""
    for setting in SETTINGS:
        config.setdefault(setting.key, setting.default)
