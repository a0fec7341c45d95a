"""Attribute and permission mappers: user claims -> what goes into a token.

Mappers run every time a token is minted (not at login), so a tenant or role
change reaches the next token. Only what the mappers return goes into a token:
nothing from the request can add or override an attribute.

Fail closed: a required attribute that maps to ``None``, an empty value, a
non-scalar where a scalar is expected, or whose mapper raises, is an
:class:`AttributeMappingError` and no token is minted. So is any value that
:mod:`flask_toucan.schema` refuses (wrong declared type, control or bidi
characters, too long, not finite, over the size budget).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from . import schema
from .exceptions import AttributeMappingError, ConfigurationError, PermissionDenied
from .user import MissingClaim, ToucanUser

log = logging.getLogger("flask_toucan")

Scalar = str | int | float | bool
AttributeValue = Scalar | list[Scalar]
Permissions = dict[str, dict[str, bool]]

AttributeMapper = Callable[[ToucanUser], Any]
BulkMapper = Callable[[ToucanUser], Mapping[str, Any] | None]
PermissionsMapper = Callable[[ToucanUser], Mapping[str, Mapping[str, bool]]]
ClassicMapper = Callable[[ToucanUser], Any]

ATTRIBUTE_NAME = schema.ATTRIBUTE_NAME

#: The permission flags Toucan documents, per resource.
PERMISSION_FLAGS: dict[str, frozenset[str]] = {
    "dashboard": frozenset({"can_view", "can_edit"}),
    "chart": frozenset({"can_view", "can_edit"}),
    "database": frozenset({"can_view", "can_edit"}),
    "ai": frozenset({"can_query"}),
}

#: What each component kind needs, as (resource, flag) alternatives in order.
KINDS: dict[str, tuple[tuple[str, str], ...]] = {
    "dashboard": (("dashboard", "can_view"),),
    "chart": (("chart", "can_view"), ("dashboard", "can_view")),
    "assistant": (("ai", "can_query"),),
}


def default_permissions(user: ToucanUser) -> Permissions:
    """Least privilege: view dashboards, nothing else (no edit, no AI)."""
    return {"dashboard": {"can_view": True}}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


#: The ``embed_context.roles`` values self-hosted Toucan knows (ADMIN grants every app).
CLASSIC_ROLES = ("USER", "ADMIN")
MAX_CLASSIC_NAME = 256


def default_roles(user: ToucanUser) -> list[str]:
    """Classic profile: every user is a plain ``USER`` unless a mapper says otherwise."""
    return ["USER"]


def default_privileges(user: ToucanUser) -> dict[str, list[str]]:
    """Classic profile: no app privileges unless a mapper grants some (least privilege)."""
    return {}


def default_groups(user: ToucanUser) -> list[str]:
    """Classic profile: no groups (identity-provider groups are not forwarded by default)."""
    return []


def default_secrets(user: ToucanUser) -> dict[str, str]:
    return {}


@dataclass(frozen=True, repr=False, eq=False)
class ClassicContext:
    """What the classic mappers give for one user (``embed_context`` minus attributes).

    ``secrets`` are credentials for Toucan's data connectors: the repr hides
    them, and only :func:`flask_toucan.signing.build_claims` reads them.
    """

    roles: list[str] = field(default_factory=lambda: ["USER"])
    privileges: dict[str, list[str]] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    secrets: dict[str, Scalar] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"ClassicContext(roles={self.roles!r}, privileges={self.privileges!r}, groups={self.groups!r})"


def _names(value: Any, what: str) -> list[str]:
    """A list of non-empty strings (a single string is a list of one)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple | set | frozenset) or not all(
        isinstance(v, str) and v.strip() and len(v) <= MAX_CLASSIC_NAME for v in items
    ):
        raise AttributeMappingError(f"the {what} mapper must return a list of non-empty strings")
    return sorted(items) if isinstance(items, set | frozenset) else list(items)


def clean_roles(value: Any) -> list[str]:
    roles = _names(value, "roles")
    if not roles or not set(roles) <= set(CLASSIC_ROLES):
        raise AttributeMappingError("the roles mapper must return USER and/or ADMIN (and at least one)")
    return roles


def clean_privileges(value: Any) -> dict[str, list[str]]:
    """App id -> privilege names; never Toucan AI's ``{"dashboard": {"can_view": ...}}`` object."""
    if not isinstance(value, Mapping):
        raise AttributeMappingError("the privileges mapper must return a dict of app id -> privilege names")
    out: dict[str, list[str]] = {}
    for app_id, names in value.items():
        if not isinstance(app_id, str) or not app_id.strip() or len(app_id) > MAX_CLASSIC_NAME:
            raise AttributeMappingError("the privileges mapper returned an invalid app id")
        if isinstance(names, Mapping):
            raise AttributeMappingError(
                "the privileges mapper must list privilege names per app, not a permissions object"
            )
        out[app_id] = _names(names, "privileges")
    return out


def clean_secrets(value: Any) -> dict[str, Scalar]:
    """Scalar values under string names. Errors never quote a value."""
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and _is_scalar(v) for k, v in value.items()
    ):
        raise AttributeMappingError("the secrets mapper must return a dict of names to scalar values")
    return dict(value)


class MapperRegistry:
    """The mappers registered on one :class:`~flask_toucan.Toucan` object.

    Every slot starts filled with its default; the facade's decorators swap it.
    (A plain class: a dataclass would compile its methods at every start-up for nothing.)
    """

    def __init__(self) -> None:
        self.single: dict[str, tuple[AttributeMapper, bool]] = {}
        self.bulk: list[BulkMapper] = []
        self.permissions_mapper: PermissionsMapper = default_permissions
        # classic profile (embed_context)
        self.roles_mapper: ClassicMapper = default_roles
        self.privileges_mapper: ClassicMapper = default_privileges
        self.groups_mapper: ClassicMapper = default_groups
        self.secrets_mapper: ClassicMapper = default_secrets
        #: Checked attributes by raw mapper output, per schema (see :func:`_memo_key`).
        self._checked_memos: dict[
            int, tuple[schema.AttributeSchema, dict[Hashable, dict[str, AttributeValue]]]
        ] = {}

    # -- registration ------------------------------------------------------
    def add_attribute(self, name: str, fn: AttributeMapper, *, many: bool = False) -> None:
        if not re.match(ATTRIBUTE_NAME, name):
            raise ConfigurationError(f"attribute name {name!r} is not a plain identifier")
        self.single[name] = (fn, many)

    def add_bulk(self, fn: BulkMapper) -> None:
        self.bulk.append(fn)

    # -- evaluation --------------------------------------------------------
    def map_attributes(
        self,
        user: ToucanUser,
        required: Iterable[str],
        attribute_schema: schema.AttributeSchema = schema.NO_SCHEMA,
    ) -> dict[str, AttributeValue]:
        """Run every mapper; return clean, checked attributes or raise (never a partial result).

        Every value goes through :mod:`flask_toucan.schema` (declared type, control
        and bidi characters, length, finiteness, size budget) here, before either
        mode sends or signs anything.
        """
        required = tuple(required)
        raw, lists_ok = self._collect(user, required)
        memo = self._memo_for(attribute_schema)
        key = _memo_key(raw, self.single, required)
        if key is not None:
            hit = memo.get(key)
            if hit is not None:
                return {name: list(v) if type(v) is list else v for name, v in hit.items()}
        out = self._checked(raw, lists_ok, required, attribute_schema)
        if key is not None:
            if len(memo) >= _MAX_CHECKED:
                memo.clear()
            memo[key] = {name: list(v) if type(v) is list else v for name, v in out.items()}
        return out

    def _memo_for(
        self, attribute_schema: schema.AttributeSchema
    ) -> dict[Hashable, dict[str, AttributeValue]]:
        """The checked-attributes memo for one schema (a Toucan object may serve several apps)."""
        entry = self._checked_memos.get(id(attribute_schema))
        if entry is None or entry[0] is not attribute_schema:  # "is": an id outlives its object
            if len(self._checked_memos) >= 8:
                self._checked_memos.clear()
            entry = self._checked_memos[id(attribute_schema)] = (attribute_schema, {})
        return entry[1]

    def _checked(
        self,
        raw: dict[str, Any],
        lists_ok: set[str],
        required: tuple[str, ...],
        attribute_schema: schema.AttributeSchema,
    ) -> dict[str, AttributeValue]:
        """The mappers' raw values, cleaned and checked (or :class:`AttributeMappingError`)."""
        single = self.single
        untyped = attribute_schema.types is None
        out: dict[str, AttributeValue] = {}
        for name, value in raw.items():
            if not valid_name(name):
                raise AttributeMappingError("an attribute mapper returned an invalid attribute name")
            if _empty(value):
                continue
            if untyped and type(value) is str and not (name in single and single[name][1]):
                # The common case, what the general path below does to it: a plain text
                # value, no declared type, not a list: only the text checks apply.
                out[name] = schema.check_text(attribute_schema, name, value)
                continue
            kind = attribute_schema.declared(name)
            listy = kind == "list[str]"
            value = schema.prepare(name, value, kind)
            many = listy or (name in single and single[name][1])
            clean = _clean(name, value, many=many, lists_ok=listy or name in lists_ok)
            if clean is not None:
                out[name] = schema.check_value(attribute_schema, name, clean, required=name in required)
        for name in required:
            value = out.get(name)
            if value is None or (isinstance(value, list) and not value):
                raise AttributeMappingError(self._nothing_for(name))
        schema.check_size(attribute_schema, out)
        return out

    def _nothing_for(self, name: str) -> str:
        """Why a required attribute is empty: no mapper at all, or a mapper that gave nothing."""
        if name not in self.single and not self.bulk:
            return (
                f"no mapper registered for required attribute {name!r}: add "
                f"@toucan.attribute({name!r}) or remove it from TOUCAN_REQUIRED_ATTRIBUTES; "
                "no token was issued"
            )
        return (
            f"required attribute {name!r} has no value for this user (its mapper returned "
            "nothing); no token was issued"
        )

    def _collect(self, user: ToucanUser, required: tuple[str, ...]) -> tuple[dict[str, Any], set[str]]:
        """Raw mapper results, and the names a bulk mapper may give as lists."""
        raw: dict[str, Any] = {}
        lists_ok: set[str] = set()
        for fn in self.bulk:
            result = _call(fn, user, "attributes")
            if result is None:
                continue
            if not isinstance(result, Mapping):
                raise AttributeMappingError("a bulk attribute mapper must return a dict")
            raw.update(result)
            # A bulk mapper may return lists, except for required attributes.
            lists_ok.update(n for n in result if n not in required and n not in self.single)
        for name, (fn, _) in self.single.items():
            raw[name] = _call(fn, user, name)
        return raw, lists_ok

    def map_classic(self, user: ToucanUser) -> ClassicContext:
        """Roles, privileges, groups and secrets of the classic profile, checked."""
        if self._classic_defaults():
            # Our own constant defaults, valid by construction: what cleaning them would give.
            return ClassicContext(roles=["USER"], privileges={}, groups=[], secrets={})
        return ClassicContext(
            roles=clean_roles(_call(self.roles_mapper, user, "roles") or ["USER"]),
            privileges=clean_privileges(_call(self.privileges_mapper, user, "privileges") or {}),
            groups=_names(_call(self.groups_mapper, user, "groups") or [], "groups"),
            secrets=clean_secrets(_call(self.secrets_mapper, user, "secrets") or {}),
        )

    def _classic_defaults(self) -> bool:
        return (
            self.roles_mapper is default_roles
            and self.privileges_mapper is default_privileges
            and self.groups_mapper is default_groups
            and self.secrets_mapper is default_secrets
        )

    def map_permissions(self, user: ToucanUser) -> Permissions:
        granted = _call(self.permissions_mapper, user, "permissions")
        return normalize_permissions(granted, source="the permissions mapper")


#: Most memoised attribute sets per schema (cleared when full: a miss only costs the checks).
_MAX_CHECKED = 4096


def _memo_key(
    raw: Mapping[str, Any], single: Mapping[str, tuple[AttributeMapper, bool]], required: tuple[str, ...]
) -> Hashable | None:
    """What the checks of ``raw`` depend on, as a hashable key; ``None``: not memoisable.

    The mappers still run on every mint (a changed tenant reaches the next token);
    only the checks of their output are memoised, keyed by everything they read: each
    name, whether it is a ``many`` single mapper's, its value, and the required names
    (the schema picks the memo). Only text values and lists/tuples of text: their
    equality is exact, where ``1 == 1.0 == True`` and ``0.0 == -0.0`` are not the same
    attribute. Anything else is checked every time.
    """
    parts: list[Hashable] = [required]
    for name, value in raw.items():
        kind = type(value)
        if kind is list or kind is tuple:
            for item in value:  # a plain loop: a generator per value costs more than the check
                if type(item) is not str:
                    return None
            value = (kind, *value)
        elif kind is not str and value is not None:
            return None
        entry = single.get(name) if type(name) is str else None
        parts.append((name, None if entry is None else entry[1], value))
    return tuple(parts)


#: Attribute names already matched against :data:`ATTRIBUTE_NAME` (bounded: a bulk mapper's
#: names may come from data; past the bound a name is matched every time, as before).
_VALID_NAMES: set[str] = set()
_MAX_VALID_NAMES = 1024


def valid_name(name: object) -> bool:
    """``name`` is a plain identifier (:data:`ATTRIBUTE_NAME`); the regex runs once per name."""
    if name in _VALID_NAMES:
        return True
    if not isinstance(name, str) or not re.match(ATTRIBUTE_NAME, name):
        return False
    if len(_VALID_NAMES) < _MAX_VALID_NAMES:
        _VALID_NAMES.add(name)
    return True


def _call(fn: Callable[[ToucanUser], Any], user: ToucanUser, what: str) -> Any:
    try:
        return fn(user)
    except MissingClaim as exc:  # a claim the user does not have: "maps to nothing"
        log.info(
            "flask-toucan: the %s mapper reads claim %r, which this user does not have "
            "(does the login's scope ask for it?)",
            what,
            exc.claim[:64],
        )
        return None
    except LookupError as exc:  # not a claim: its key may be a value, so only the type is named
        log.info("flask-toucan: the %s mapper raised %s: maps to nothing", what, type(exc).__name__)
        return None
    except Exception as exc:
        log.warning("flask-toucan: the %s mapper raised %s", what, type(exc).__name__)
        raise AttributeMappingError(f"the mapper for {what!r} failed; no token was issued") from exc


def _clean(name: str, value: Any, *, many: bool, lists_ok: bool = False) -> AttributeValue | None:
    if _empty(value):
        return None
    if isinstance(value, list | tuple | set | frozenset):
        if not (many or lists_ok):
            raise AttributeMappingError(f"attribute {name!r} maps to a list where a single value is expected")
        items = [v for v in value if not _empty(v)]
        if not all(_is_scalar(v) for v in items):
            raise AttributeMappingError(f"attribute {name!r} holds a non-scalar item")
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if many:
        value = [value]
        if not _is_scalar(value[0]):
            raise AttributeMappingError(f"attribute {name!r} is not a scalar value")
        return cast(list[Scalar], value)
    if not _is_scalar(value):
        raise AttributeMappingError(f"attribute {name!r} is not a scalar value")
    return cast(Scalar, value)


def normalize_permissions(granted: Any, *, source: str) -> Permissions:
    """Check a permissions object against Toucan's documented shape; keep only ``True`` flags."""
    # ``type(...) is dict`` first: what mappers return, and an ABC isinstance check costs more.
    if type(granted) is not dict and not isinstance(granted, Mapping):
        raise PermissionDenied(f"{source} must return a dict of resources")
    out: Permissions = {}
    for resource, flags in granted.items():
        allowed = PERMISSION_FLAGS.get(resource)
        if allowed is None or (type(flags) is not dict and not isinstance(flags, Mapping)):
            raise PermissionDenied(f"{source} names an unknown resource {resource!r}")
        kept = {}
        for flag, value in flags.items():
            if flag not in allowed or not isinstance(value, bool):
                raise PermissionDenied(f"{source} has an invalid flag {resource}.{flag}")
            if value:
                kept[flag] = True
        if kept:
            out[resource] = kept
    return out


def permissions_for_kind(granted: Permissions, kind: str) -> Permissions:
    """The least a component of ``kind`` needs, if the user was granted it."""
    alternatives = KINDS.get(kind)
    if alternatives is None:
        raise PermissionDenied(f"unknown component kind {kind!r}")
    for resource, flag in alternatives:
        flags = granted.get(resource, {})
        if flags.get(flag):
            return {resource: dict(flags)}
    raise PermissionDenied(f"this user may not use the {kind} component")


def check_subset(requested: Permissions, granted: Permissions) -> None:
    for resource, flags in requested.items():
        for flag in flags:
            if not granted.get(resource, {}).get(flag):
                raise PermissionDenied(f"permission {resource}.{flag} is not granted to this user")
