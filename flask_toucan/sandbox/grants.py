"""What a token grants, and how a request body becomes one (strictly).

Both doors into the sandbox end in a :class:`Grant`: the token API's JSON body
(``api`` mode) and the ``embed_context`` of a host-signed JWT (the classic
profile, docs-v3). Validation is strict on purpose: an unknown field, a wrong type or an
undeclared attribute is a :class:`RequestInvalid` naming the field, never a
token minted on a guess.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: The permission flags Toucan documents, per resource.
PERMISSION_FLAGS: dict[str, tuple[str, ...]] = {
    "dashboard": ("can_view", "can_edit"),
    "chart": ("can_view", "can_edit"),
    "database": ("can_view", "can_edit"),
    "ai": ("can_query",),
}
MAX_STRING = 256
MAX_LIST = 64


class RequestInvalid(Exception):
    """A body field is missing, unknown or of the wrong type."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Grant:
    """The decrypted content of an embed token."""

    distinct_id: str
    role: str
    attributes: dict[str, Any]
    permissions: dict[str, dict[str, bool]]
    issued_at: int
    expires_at: int
    jti: str = field(default_factory=lambda: uuid.uuid4().hex)
    source: str = "api"  # "api", "exchange" or "direct"

    def allows(self, resource: str, flag: str) -> bool:
        return self.permissions.get(resource, {}).get(flag) is True

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) >= self.expires_at

    def payload(self) -> dict[str, Any]:
        return {
            "user": {"distinctId": self.distinct_id, "role": self.role},
            "attributes": self.attributes,
            "permissions": self.permissions,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "jti": self.jti,
            "src": self.source,
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Grant:
        return cls(
            distinct_id=str(data["user"]["distinctId"]),
            role=str(data["user"]["role"]),
            attributes=dict(data["attributes"]),
            permissions={k: dict(v) for k, v in data["permissions"].items()},
            issued_at=int(data["iat"]),
            expires_at=int(data["exp"]),
            jti=str(data["jti"]),
            source=str(data.get("src", "api")),
        )

    def introspection(self, now: float | None = None) -> dict[str, Any]:
        """What Toucan's token introspection tool shows: user, attributes, permissions, expiry."""
        left = int(self.expires_at - (now if now is not None else time.time()))
        return {
            "active": left > 0,
            "user": {"distinctId": self.distinct_id, "role": self.role},
            "attributes": self.attributes,
            "permissions": self.permissions,
            "issued_at": datetime.fromtimestamp(self.issued_at, UTC).isoformat(),
            "expires_at": datetime.fromtimestamp(self.expires_at, UTC).isoformat(),
            "expires_in": max(left, 0),
            "source": self.source,
        }


def _obj(value: Any, path: str, allowed: Sequence[str], required: Sequence[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestInvalid(path or "body", f"{path or 'the body'} must be a JSON object")
    for key in value:
        if key not in allowed:
            name = f"{path}.{key}" if path else str(key)
            raise RequestInvalid(name, f"{name} is not a known field")
    for key in required:
        if key not in value:
            name = f"{path}.{key}" if path else key
            raise RequestInvalid(name, f"{name} is required")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_STRING:
        raise RequestInvalid(path, f"{path} must be a non-empty string of at most {MAX_STRING} characters")
    return value


def check_attribute(name: str, value: Any, kind: str, path: str) -> Any:
    """``value`` if it fits the declared ``kind``, else :class:`RequestInvalid`."""

    def scalar(v: Any, k: str, where: str) -> Any:
        ok = {
            "string": isinstance(v, str) and len(v) <= MAX_STRING,
            "number": isinstance(v, int | float) and not isinstance(v, bool),
            "boolean": isinstance(v, bool),
        }[k]
        if not ok:
            raise RequestInvalid(where, f"{where} must be a {k} (declared type of {name!r})")
        return v

    if kind.startswith("list["):
        inner = kind[5:-1]
        if not isinstance(value, list) or len(value) > MAX_LIST:
            raise RequestInvalid(path, f"{path} must be a list of {inner} (at most {MAX_LIST})")
        return [scalar(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
    return scalar(value, kind, path)


def check_attributes(value: Any, declared: Mapping[str, str], path: str) -> dict[str, Any]:
    attrs = _obj(value, path, list(declared))  # undeclared names are "not a known field"
    return {name: check_attribute(name, v, declared[name], f"{path}.{name}") for name, v in attrs.items()}


def check_permissions(value: Any, path: str = "permissions") -> dict[str, dict[str, bool]]:
    perms = _obj(value, path, list(PERMISSION_FLAGS))
    out: dict[str, dict[str, bool]] = {}
    for resource, flags in perms.items():
        flags = _obj(flags, f"{path}.{resource}", PERMISSION_FLAGS[resource])
        for flag, v in flags.items():
            if not isinstance(v, bool):
                raise RequestInvalid(
                    f"{path}.{resource}.{flag}", f"{path}.{resource}.{flag} must be a boolean"
                )
        out[resource] = dict(flags)
    return out


def grant_from_request(
    body: Any, *, declared: Mapping[str, str], roles: Sequence[str], lifetime: int, now: float | None = None
) -> Grant:
    """Validate a token API body (see ``docs/sandbox.md``) and build the grant."""
    data = _obj(body, "", ("user", "permissions"), required=("user",))
    user = _obj(data["user"], "user", ("distinctId", "role", "attributes"), required=("distinctId",))
    distinct_id = _string(user["distinctId"], "user.distinctId")
    role = user.get("role", roles[0] if roles else "explorer")
    if not isinstance(role, str) or role not in roles:
        raise RequestInvalid("user.role", f"user.role must be one of {', '.join(roles)}")
    attrs = check_attributes(user.get("attributes", {}), declared, "user.attributes")
    perms = check_permissions(data.get("permissions", {}))
    issued = int(now if now is not None else time.time())
    return Grant(distinct_id, role, attrs, perms, issued, issued + lifetime, source="api")


#: Toucan's limit on ``embed_context`` (compact JSON bytes).
MAX_EMBED_CONTEXT_BYTES = 3584
CLASSIC_ROLES = ("USER", "ADMIN")
#: The sandbox's own app id in classic ``privileges`` (its dashboards, charts and rows).
SANDBOX_APP = "sandbox"
#: What a classic privilege on the sandbox app grants (our choice; docs-v3 lists none).
CLASSIC_PRIVILEGES: dict[str, dict[str, dict[str, bool]]] = {
    "view": {"dashboard": {"can_view": True}, "chart": {"can_view": True}, "database": {"can_view": True}},
    "contribute": {"dashboard": {"can_edit": True}, "chart": {"can_edit": True}},
    "query": {"ai": {"can_query": True}},
}
ADMIN_PERMISSIONS = {resource: dict.fromkeys(flags, True) for resource, flags in PERMISSION_FLAGS.items()}


def _names(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise RequestInvalid(path, f"{path} must be a list of strings (at most {MAX_LIST})")
    return [_string(v, f"{path}[{i}]") for i, v in enumerate(value)]


def _privileges(value: Any, path: str) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise RequestInvalid(path, f"{path} must be an object of app id -> list of privilege names")
    return {_string(app, path): _names(names, f"{path}.{app}") for app, names in value.items()}


def _secrets(value: Any, path: str) -> None:
    """Checked for shape only: the sandbox never keeps, shows or logs them."""
    if not isinstance(value, dict) or not all(
        isinstance(v, str | int | float | bool) for v in value.values()
    ):
        raise RequestInvalid(path, f"{path} must be an object of scalar values")


def classic_permissions(roles: list[str], privileges: Mapping[str, list[str]]) -> dict[str, dict[str, bool]]:
    """``ADMIN`` grants everything; a ``USER`` what its privileges on :data:`SANDBOX_APP` say."""
    if "ADMIN" in roles:
        return {r: dict(f) for r, f in ADMIN_PERMISSIONS.items()}
    out: dict[str, dict[str, bool]] = {}
    for name in privileges.get(SANDBOX_APP, []):
        for resource, flags in CLASSIC_PRIVILEGES.get(name, {}).items():
            out.setdefault(resource, {}).update(flags)
    return out


def grant_from_claims(
    claims: Mapping[str, Any],
    *,
    declared: Mapping[str, str],
    lifetime: int,
    source: str,
    now: float | None = None,
) -> Grant:
    """Build the grant a verified classic assertion carries (its docs-v3 ``embed_context``).

    ``roles`` (``USER``/``ADMIN``) and ``privileges`` (app id -> names) decide
    the permissions; ``attributes`` (checked against the declared ones) plus
    ``roles`` and ``groups`` (when declared) are what RLS sees.
    """
    raw = claims.get("embed_context")
    size = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_EMBED_CONTEXT_BYTES:
        raise RequestInvalid(
            "embed_context", f"embed_context is {size} bytes, above the {MAX_EMBED_CONTEXT_BYTES}-byte limit"
        )
    ctx = _obj(
        raw,
        "embed_context",
        ("username", "workspace_id", "roles", "privileges", "groups", "attributes", "secrets"),
        required=("username", "roles"),
    )
    username = _string(ctx["username"], "embed_context.username")
    if ctx.get("workspace_id") is not None:
        _string(ctx["workspace_id"], "embed_context.workspace_id")
    roles = _names(ctx["roles"], "embed_context.roles")
    if not roles or not set(roles) <= set(CLASSIC_ROLES):
        raise RequestInvalid("embed_context.roles", "embed_context.roles must hold USER and/or ADMIN")
    privileges = _privileges(ctx.get("privileges", {}), "embed_context.privileges")
    groups = _names(ctx.get("groups", []), "embed_context.groups")
    _secrets(ctx.get("secrets", {}), "embed_context.secrets")
    attrs = check_attributes(ctx.get("attributes", {}), declared, "embed_context.attributes")
    for name, value in (("roles", roles), ("groups", groups)):
        if name in declared:
            attrs[name] = check_attribute(name, value, declared[name], f"embed_context.{name}")
    perms = classic_permissions(roles, privileges)
    role = "ADMIN" if "ADMIN" in roles else "USER"
    if source == "direct":  # the host's own token, used as is: its own expiry and jti
        return Grant(
            username, role, attrs, perms, int(claims["iat"]), int(claims["exp"]), str(claims["jti"]), source
        )
    issued = int(now if now is not None else time.time())
    return Grant(username, role, attrs, perms, issued, issued + lifetime, source=source)
