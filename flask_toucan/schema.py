"""The attribute schema: which attributes a token may carry, of which type, within which limits.

Attributes are tenant keys: Toucan filters rows with them (RLS), and in signed
mode they are signed into a JWT that another system trusts. A value Toucan
cannot store (NaN, a 10,000-character string) makes the token API answer 400,
and a value with a line break or a bidi override can fool whoever reads a log
line or an admin screen that shows it. So every value is checked here, before
anything is sent upstream or signed:

* with ``TOUCAN_ATTRIBUTES`` set, each attribute must be declared and its value
  must have the declared type; undeclared attributes are refused;
* with or without it: strings hold no control or bidi characters and are at
  most ``TOUCAN_ATTRIBUTE_MAX_LENGTH`` characters, numbers are finite (integers
  within I-JSON's exactly representable range), lists hold at most
  :data:`MAX_LIST_ITEMS` items, and the whole attribute object fits in
  :data:`MAX_ATTRIBUTES_BYTES` bytes of compact JSON;
* without a schema, a *required* attribute (a tenant key) may not be a boolean.

Errors name the attribute and the rule, never the value: an attribute value
may be personal data, and error messages reach logs and JSON bodies.

Framework-neutral: no Flask import (mappers.py calls it, config.py parses the settings).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple, NoReturn

from .exceptions import AttributeMappingError, ConfigurationError

#: What an attribute may be called: a plain identifier, as RLS rules name it (a pattern
#: string: ``re`` compiles it on first use and caches it, so importing costs nothing).
ATTRIBUTE_NAME = r"\A[A-Za-z_][A-Za-z0-9_]{0,63}\Z"  # \Z: "$" would let "name\n" through

#: Canonical type names, in the order ``flask toucan check`` lists them.
TYPES = ("str", "int", "float", "bool", "datetime", "list[str]")

#: Accepted spellings (compared lower-case, without spaces), Toucan's Token
#: Attribute type names among them.
ALIASES: dict[str, str] = {
    **{t: t for t in TYPES},
    "text": "str",
    "string": "str",
    "integer": "int",
    "boolean": "bool",
    "list[text]": "list[str]",
}

DEFAULT_MAX_LENGTH = 256
#: The most items one list attribute (``groups``, a ``list[str]``) may hold.
MAX_LIST_ITEMS = 64
#: Budget for the whole attribute object, in UTF-8 bytes of compact JSON. The
#: classic profile caps the whole ``embed_context`` at 3.5 KB; 2 KB for the
#: attributes leaves room for the rest of it.
MAX_ATTRIBUTES_BYTES = 2048
#: I-JSON (RFC 7493): integers beyond 2**53 - 1 do not survive a JSON parser
#: that reads numbers as doubles (JavaScript, many SQL drivers).
MAX_SAFE_INTEGER = 2**53 - 1

#: Unicode categories refused in text: C0, DEL and C1 controls (CR, LF, TAB,
#: NUL, ESC...), the line and paragraph separators U+2028/U+2029 (line breaks
#: to a log reader or a JavaScript string), and lone surrogates (not encodable:
#: they would break the JSON sent upstream).
REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

#: Bidi controls that reorder what a reader sees: LRM, RLM, ALM, the
#: embeddings/overrides and the isolates.
BIDI_CONTROLS = frozenset({0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)})


class AttributeSchema(NamedTuple):
    """Declared types (``None``: no schema, only the value checks) and the value limits."""

    types: Mapping[str, str] | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    max_items: int = MAX_LIST_ITEMS
    max_bytes: int = MAX_ATTRIBUTES_BYTES

    def declared(self, name: str) -> str | None:
        """The declared type of ``name``; refuses an undeclared name when a schema is set."""
        if self.types is None:
            return None
        kind = self.types.get(name)
        if kind is None:
            raise AttributeMappingError(
                f"attribute {name!r} is not declared in TOUCAN_ATTRIBUTES; no token was issued"
            )
        return kind


NO_SCHEMA = AttributeSchema()


# -- settings (init_app) ----------------------------------------------------
def parse_type(name: str, kind: Any) -> str:
    """A type string (any accepted spelling) -> its canonical name, or ConfigurationError."""
    canonical = ALIASES.get(kind.lower().replace(" ", "")) if isinstance(kind, str) else None
    if canonical is None:
        raise ConfigurationError(
            f"TOUCAN_ATTRIBUTES[{name!r}] has an unknown type; use one of {', '.join(TYPES)} "
            "(or Toucan's Text, Integer, Float, Boolean, Datetime)"
        )
    return canonical


def schema_from_settings(types: Any, max_length: Any, required: tuple[str, ...]) -> AttributeSchema:
    """Validate ``TOUCAN_ATTRIBUTES`` / ``TOUCAN_ATTRIBUTE_MAX_LENGTH``; errors name the key."""
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ConfigurationError("TOUCAN_ATTRIBUTE_MAX_LENGTH must be a positive integer (characters)")
    if types is None:
        return AttributeSchema(max_length=max_length)
    if not isinstance(types, Mapping):
        raise ConfigurationError(
            "TOUCAN_ATTRIBUTES must be a mapping of attribute name to type, e.g. {'organization_id': 'str'}"
        )
    declared: dict[str, str] = {}
    for name, kind in types.items():
        if not isinstance(name, str) or not re.match(ATTRIBUTE_NAME, name):
            raise ConfigurationError(f"TOUCAN_ATTRIBUTES[{name!r}] is not a plain identifier")
        declared[name] = parse_type(name, kind)
    for name in required:
        if name not in declared:
            raise ConfigurationError(
                f"TOUCAN_REQUIRED_ATTRIBUTES names {name!r}, which TOUCAN_ATTRIBUTES does not declare"
            )
    return AttributeSchema(types=declared, max_length=max_length)


def describe(schema: AttributeSchema) -> list[str]:
    """Lines for ``flask toucan check``: the declared types and the limits."""
    if schema.types is None:
        lines = ["attribute schema: none (TOUCAN_ATTRIBUTES unset: any attribute name, values checked)"]
    else:
        lines = [f"attribute schema: {len(schema.types)} declared, undeclared attributes refused"]
        lines += [f"  {name}: {kind}" for name, kind in sorted(schema.types.items())]
    lines.append(
        f"attribute limits: {schema.max_length} characters per value, {schema.max_items} items per "
        f"list, {schema.max_bytes} bytes of JSON in all"
    )
    return lines


# -- values (every mint) ----------------------------------------------------
def prepare(name: str, value: Any, kind: str | None) -> Any:
    """Before the generic cleaning: a ``datetime`` object becomes its ISO 8601 UTC text."""
    if kind == "datetime" and isinstance(value, datetime):
        return _iso_utc(name, value)
    return value


def check_value(schema: AttributeSchema, name: str, value: Any, *, required: bool) -> Any:
    """Check one cleaned value (a scalar or a list) against its declared type and the limits."""
    kind = schema.declared(name)
    if isinstance(value, list):
        if kind not in (None, "list[str]"):
            _fail(name, f"is a list where {kind} is declared")
        if len(value) > schema.max_items:
            _fail(name, f"has more than {schema.max_items} items")
        item_kind = "str" if kind else None
        return [_check_scalar(schema, name, item, item_kind, required=False) for item in value]
    if kind == "list[str]":
        _fail(name, "is a single value where list[str] is declared")
    return _check_scalar(schema, name, value, kind, required=required)


#: ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)``, one encoder for every call.
_COMPACT_UTF8 = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def check_size(schema: AttributeSchema, attributes: Mapping[str, Any]) -> None:
    """The whole attribute object, as compact JSON, within the byte budget."""
    size = len(_COMPACT_UTF8.encode(attributes).encode())
    if size > schema.max_bytes:
        raise AttributeMappingError(
            f"the attributes take {size} bytes of JSON, over the budget of {schema.max_bytes}; "
            "no token was issued"
        )


def _check_scalar(schema: AttributeSchema, name: str, value: Any, kind: str | None, *, required: bool) -> Any:
    if kind is None:
        return _check_untyped(schema, name, value, required=required)
    if kind in ("str", "datetime"):
        if not isinstance(value, str):
            _fail(name, f"is not text where {kind} is declared")
        _check_text(schema, name, value)
        return _parse_iso(name, value) if kind == "datetime" else value
    if kind == "bool":
        if not isinstance(value, bool):
            _fail(name, "is not a boolean where bool is declared")
        return value
    if isinstance(value, bool):
        _fail(name, f"is a boolean where {kind} is declared")
    if not isinstance(value, int | float):
        _fail(name, f"is not a number where {kind} is declared")
    if kind == "int":
        if not isinstance(value, int):
            _fail(name, "is not an integer where int is declared")
        return _check_int(name, value)
    # float: an int is accepted (JSON has one number type) and sent as a float.
    if isinstance(value, int):
        return float(_check_int(name, value))
    return _check_float(name, value)


def _check_untyped(schema: AttributeSchema, name: str, value: Any, *, required: bool) -> Any:
    """No declared type: keep today's scalar types, check their values."""
    if isinstance(value, bool):
        if required:
            _fail(name, "is a boolean, which cannot be a required attribute (a tenant key)")
        return value
    if isinstance(value, int):
        return _check_int(name, value)
    if isinstance(value, float):
        return _check_float(name, value)
    if isinstance(value, str):
        _check_text(schema, name, value)
        return value
    _fail(name, "is not a string, number or boolean")


def check_text(schema: AttributeSchema, name: str, value: str) -> str:
    """An untyped text value, checked as :func:`check_value` checks it (the mappers' fast path)."""
    _check_text(schema, name, value)
    return value


def _check_text(schema: AttributeSchema, name: str, value: str) -> None:
    if len(value) > schema.max_length:
        _fail(name, f"is longer than {schema.max_length} characters (TOUCAN_ATTRIBUTE_MAX_LENGTH)")
    # Fast path, run on every mint: ``isprintable()`` is False for every character in
    # Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs (but the space), a superset of what is refused
    # below (the bidi controls are all Cf). Only a text with such a character is
    # walked one character at a time, to find whether it is refused and where.
    if value.isprintable():
        return
    for position, char in enumerate(value):
        code = ord(char)
        if code in BIDI_CONTROLS:
            _fail(name, f"contains a bidi control character (U+{code:04X} at position {position})")
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            _fail(name, f"contains a control character (U+{code:04X} at position {position})")


def _check_int(name: str, value: int) -> int:
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        _fail(name, "is an integer outside +/-(2**53 - 1)")
    return value


def _check_float(name: str, value: float) -> float:
    if not math.isfinite(value):
        _fail(name, "is not a finite number (NaN and infinity are refused)")
    return value


def _iso_utc(name: str, value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        _fail(name, "is a naive datetime; give it a timezone (naive times are ambiguous)")
    text = value.astimezone(UTC).isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _parse_iso(name: str, value: str) -> str:
    """ISO 8601 text with an offset (or ``Z``) -> the same instant as ``...Z`` text."""
    if "T" not in value:
        _fail(name, "is not an ISO 8601 date and time (YYYY-MM-DDTHH:MM:SSZ) where datetime is declared")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _fail(name, "is not an ISO 8601 date and time (YYYY-MM-DDTHH:MM:SSZ) where datetime is declared")
    return _iso_utc(name, parsed)


def _fail(name: str, rule: str) -> NoReturn:
    raise AttributeMappingError(f"attribute {name!r} {rule}; no token was issued")
