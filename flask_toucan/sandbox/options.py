"""Sandbox settings: one frozen dataclass, validated once at start-up.

Every option of :func:`create_app`, ``python -m flask_toucan.sandbox`` and
``flask toucan sandbox`` lands here, so there is one place that says what a
setting means and what its default is (``docs/sandbox.md`` mirrors it).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError
from .data import ORGANIZATIONS
from .faults import check_reject
from .rls import DEFAULT_RULES, RuleNode
from .tenants import SalesRow, Tenant, parse_sales, parse_tenants

#: Attribute name -> type. Types: ``string``, ``number``, ``boolean``,
#: ``list[string]``, ``list[number]``. What Toucan calls "declared token attributes".
DEFAULT_ATTRIBUTES: dict[str, str] = {
    "organization_id": "string",
    "region": "string",
    "roles": "list[string]",
    "groups": "list[string]",
}
ATTRIBUTE_TYPES = ("string", "number", "boolean", "list[string]", "list[number]")

#: The ``user.role`` values the token API accepts.
DEFAULT_ROLES = ("explorer", "viewer", "editor")

#: When no ``--origin`` is given: any port on the loopback names (local development).
DEFAULT_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*")

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(:(\d{1,5}|\*))?$")
MAX_LIFETIME = 24 * 3600
SECRETS = ("api_key", "exchange_client_secret")
_REALM = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True, repr=False)
class SandboxOptions:
    """What one sandbox instance is told at start-up (see ``docs/sandbox.md``)."""

    api_key: str = ""  # empty: a random one is generated
    token_lifetime: int = 3600
    origins: tuple[str, ...] = DEFAULT_ORIGINS
    # None: a file in the temp directory named after the data set, created once and
    # shared by every sandbox of that data set (kept after stop(): it is a cache).
    data_file: str | None = None
    host_jwks_url: str | None = None
    issuer: str | None = None  # default: the origin of host_jwks_url
    audience: str = "toucan-sandbox"
    jwks_cooldown: float = 30.0
    attributes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTES))
    rules: Mapping[str, RuleNode] = field(default_factory=lambda: dict(DEFAULT_RULES))
    roles: tuple[str, ...] = DEFAULT_ROLES
    # Classic profile: the realm token endpoint's tenant and its one embed client.
    tenant: str = "sandbox"
    exchange_client_id: str = "toucan-embed-client"
    exchange_client_secret: str = ""  # empty: a random one is generated
    # Fault injection (also settable at run time, see faults.py).
    latency_ms: int = 0
    fail_rate: float = 0.0
    fail_next: int = 0
    rate_limit_next: int = 0
    lose_next: int = 0  # served, then the answer replaced by a 504 (a proxy that lost it)
    retry_after: int = 1
    fault_seed: int = 0
    reject: Mapping[str, Any] | None = None  # {"status": 403, "code": "NO_ACTIVE_SUBSCRIPTION"}
    # Your own data set (see tenants.py): organisations as (id, name) pairs, and
    # optionally the exact sales rows; None: the sample organisations / sample rows.
    tenants: tuple[Tenant, ...] | None = None
    sales: tuple[SalesRow, ...] | None = None

    def __repr__(self) -> str:  # secrets never appear in a repr or a log line
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name not in SECRETS
        )
        return f"SandboxOptions({shown})"

    @classmethod
    def build(cls, **options: Any) -> SandboxOptions:
        """Validate ``options`` (keyword names as in the dataclass) and fill defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigurationError(f"unknown sandbox option(s): {', '.join(unknown)}")
        values = {k: v for k, v in options.items() if v is not None}
        for name in SECRETS:
            if not values.get(name):
                values[name] = secrets.token_urlsafe(24)
        if "origins" in values:
            values["origins"] = tuple(values["origins"]) or DEFAULT_ORIGINS
        if "roles" in values:
            values["roles"] = tuple(values["roles"])
        if "tenants" in values:
            values["tenants"] = parse_tenants(values["tenants"])
        if "sales" in values:
            tenant_ids = [t[0] for t in values.get("tenants") or ORGANIZATIONS]
            values["sales"] = parse_sales(values["sales"], tenant_ids)
        opts = cls(**values)
        opts._check()
        if opts.host_jwks_url and not opts.issuer:
            parts = urlsplit(opts.host_jwks_url)
            object.__setattr__(opts, "issuer", f"{parts.scheme}://{parts.netloc}")
        return opts

    def _check(self) -> None:
        if not isinstance(self.token_lifetime, int) or not 1 <= self.token_lifetime <= MAX_LIFETIME:
            raise ConfigurationError(f"token_lifetime must be 1..{MAX_LIFETIME} seconds")
        for origin in self.origins:
            if not _ORIGIN.match(origin):
                raise ConfigurationError(f"origin {origin!r} is not scheme://host[:port] (port may be '*')")
        if self.host_jwks_url is not None:
            parts = urlsplit(self.host_jwks_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigurationError("host_jwks_url must be an http(s) URL")
        for name, kind in self.attributes.items():
            if kind not in ATTRIBUTE_TYPES:
                raise ConfigurationError(f"attribute {name!r}: type {kind!r} is not one of {ATTRIBUTE_TYPES}")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ConfigurationError("fail_rate must be between 0 and 1")
        for name in ("latency_ms", "fail_next", "rate_limit_next", "lose_next", "retry_after"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must not be negative")
        if not _REALM.match(self.tenant):
            raise ConfigurationError("tenant must be 1-64 letters, digits, '.', '_' or '-'")
        if not self.exchange_client_id or not isinstance(self.exchange_client_id, str):
            raise ConfigurationError("exchange_client_id must be a non-empty string")
        try:
            check_reject(dict(self.reject) if self.reject is not None else None)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if self.jwks_cooldown < 0:
            raise ConfigurationError("jwks_cooldown must not be negative")


def origin_allowed(origin: str, allowed: Sequence[str]) -> bool:
    """Exact match, or ``scheme://host:*`` matching any port of that host."""
    for pattern in allowed:
        if pattern == origin:
            return True
        if pattern.endswith(":*"):
            prefix = pattern[:-1]  # "http://127.0.0.1:"
            rest = origin[len(prefix) :]
            if origin.startswith(prefix) and rest.isdigit() and len(rest) <= 5:
                return True
            if origin == prefix[:-1]:  # the default port
                return True
    return False
