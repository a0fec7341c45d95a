"""The attribute schema (issue 9 item 2): one test per rule, plus hypothesis over the text rules.

Every refusal is an AttributeMappingError whose message names the attribute and
the rule and never quotes the value (it may be personal data).
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_toucan import Toucan
from flask_toucan.exceptions import AttributeMappingError, ConfigurationError
from flask_toucan.mappers import MapperRegistry
from flask_toucan.schema import (
    BIDI_CONTROLS,
    MAX_ATTRIBUTES_BYTES,
    MAX_LIST_ITEMS,
    NO_SCHEMA,
    AttributeSchema,
    describe,
    schema_from_settings,
)
from flask_toucan.user import ToucanUser

from .helpers import API_KEY, SECRET_KEY

SCHEMA = {
    "organization_id": "str",
    "seats": "int",
    "quota": "float",
    "beta": "bool",
    "renewal": "datetime",
    "groups": "list[str]",
}
#: A marker put into refused values: it must never show up in an error message.
SECRET = "PERSONAL-DATA-7f3a"


def registry() -> MapperRegistry:
    """A registry whose bulk mapper returns the user's claims (minus the identity ones)."""
    reg = MapperRegistry()
    reg.add_bulk(lambda user: {k: v for k, v in user.claims.items() if k not in ("sub", "iss")})
    return reg


def mapped(schema: AttributeSchema | None = None, required: tuple[str, ...] = ("organization_id",), **values):
    user = ToucanUser("https://idp", "alice", {"sub": "alice", "iss": "https://idp", **values})
    return registry().map_attributes(user, required, schema if schema is not None else NO_SCHEMA)


def typed(**limits: Any) -> AttributeSchema:
    return schema_from_settings(SCHEMA, limits.get("max_length", 256), ("organization_id",))


def refused(match: str, schema: AttributeSchema | None = None, **values: Any) -> str:
    values.setdefault("organization_id", "acme")
    with pytest.raises(AttributeMappingError, match=match) as info:
        mapped(schema, **values)
    message = str(info.value)
    assert SECRET not in message and SECRET not in str(info.value.to_dict())
    return message


# -- settings ---------------------------------------------------------------
def test_types_and_toucan_aliases_case_insensitive():
    schema = schema_from_settings(
        {
            "a": "Text",
            "b": "INTEGER",
            "c": "Float",
            "d": "boolean",
            "e": "DateTime",
            "f": "List[Str]",
            "g": "str",
        },
        256,
        (),
    )
    assert schema.types == {
        "a": "str",
        "b": "int",
        "c": "float",
        "d": "bool",
        "e": "datetime",
        "f": "list[str]",
        "g": "str",
    }


@pytest.mark.parametrize(
    "types,fragment",
    [
        ({"region": "strng"}, "TOUCAN_ATTRIBUTES['region'] has an unknown type"),
        ({"region": 3}, "TOUCAN_ATTRIBUTES['region'] has an unknown type"),
        ({"bad name": "str"}, "TOUCAN_ATTRIBUTES['bad name'] is not a plain identifier"),
        ({"region\n": "str"}, "TOUCAN_ATTRIBUTES['region\\n'] is not a plain identifier"),
        (["organization_id"], "TOUCAN_ATTRIBUTES must be a mapping"),
        ({"region": "str"}, "TOUCAN_REQUIRED_ATTRIBUTES names 'organization_id'"),
    ],
)
def test_bad_schema_is_a_configuration_error_naming_key_and_attribute(types, fragment):
    app = Flask("schema-config")
    app.config.update(SECRET_KEY=SECRET_KEY, TOUCAN_BASE_URL="http://127.0.0.1:9", TOUCAN_API_KEY=API_KEY)
    app.config["TOUCAN_ATTRIBUTES"] = types
    with pytest.raises(ConfigurationError) as info:
        Toucan(app)
    assert fragment in str(info.value)


@pytest.mark.parametrize("value", [0, -1, "256", True, 2.5])
def test_bad_max_length_is_a_configuration_error(value):
    with pytest.raises(ConfigurationError, match="TOUCAN_ATTRIBUTE_MAX_LENGTH"):
        schema_from_settings(None, value, ())


def test_config_carries_the_schema():
    app = Flask("schema-config-ok")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TOUCAN_BASE_URL="http://127.0.0.1:9",
        TOUCAN_API_KEY=API_KEY,
        TOUCAN_ATTRIBUTES={"organization_id": "Text"},
        TOUCAN_ATTRIBUTE_MAX_LENGTH=40,
    )
    Toucan(app)
    schema = app.extensions["toucan"].config.attribute_schema
    assert schema.types == {"organization_id": "str"} and schema.max_length == 40


def test_describe_lists_the_schema_and_limits():
    lines = describe(typed())
    assert lines[0].startswith("attribute schema: 6 declared")
    assert "  groups: list[str]" in lines and "  renewal: datetime" in lines
    assert "256 characters per value" in lines[-1] and f"{MAX_ATTRIBUTES_BYTES} bytes" in lines[-1]
    assert describe(NO_SCHEMA)[0].startswith("attribute schema: none")


# -- declared types ---------------------------------------------------------
def test_every_type_accepted_and_normalised():
    out = mapped(
        typed(),
        organization_id="acme",
        seats=12,
        quota=3,  # an int where float is declared: accepted, sent as a float
        beta=False,
        renewal=datetime(2026, 11, 29, 9, 0, tzinfo=timezone(timedelta(hours=1))),
        groups=("sales", "emea"),
    )
    assert out == {
        "organization_id": "acme",
        "seats": 12,
        "quota": 3.0,
        "beta": False,
        "renewal": "2026-11-29T08:00:00Z",
        "groups": ["sales", "emea"],
    }
    assert isinstance(out["quota"], float)


def test_datetime_text_with_offset_is_normalised_to_utc():
    out = mapped(typed(), organization_id="acme", renewal="2026-11-29T10:30:00.250+02:00")
    assert out["renewal"] == "2026-11-29T08:30:00.250000Z"
    assert mapped(typed(), organization_id="a", renewal=datetime(2026, 1, 1, tzinfo=UTC))["renewal"] == (
        "2026-01-01T00:00:00Z"
    )


@pytest.mark.parametrize(
    "name,value,rule",
    [
        ("seats", True, "is a boolean where int is declared"),
        ("seats", False, "is a boolean where int is declared"),
        ("quota", True, "is a boolean where float is declared"),
        ("seats", "12", "is not a number where int is declared"),
        ("seats", 12.0, "is not an integer where int is declared"),
        ("beta", 1, "is not a boolean where bool is declared"),
        ("beta", "true", "is not a boolean where bool is declared"),
        ("organization_id", 42, "is not text where str is declared"),
        ("organization_id", 0, "is not text where str is declared"),
        ("renewal", 1764403200, "is not text where datetime is declared"),
        ("renewal", "2026-11-29", "is not an ISO 8601 date and time"),
        ("renewal", "tomorrow", "is not an ISO 8601 date and time"),
        ("renewal", "2026-11-29T08:00:00", "is a naive datetime"),
        ("renewal", datetime(2026, 11, 29, 8, 0), "is a naive datetime"),
        ("groups", [1, 2], "is not text where str is declared"),
        ("organization_id", ["a", "b"], "maps to a list where a single value is expected"),
    ],
)
def test_wrong_type_refused(name, value, rule):
    values = {"organization_id": "acme", name: value}
    message = refused(rule, typed(), **values)
    assert repr(name) in message


def test_undeclared_attribute_refused_only_with_a_schema():
    refused("'plan' is not declared in TOUCAN_ATTRIBUTES", typed(), plan="gold")
    assert mapped(NO_SCHEMA, organization_id="acme", plan="gold")["plan"] == "gold"
    # An undeclared name that maps to nothing is not sent, so not refused.
    assert "plan" not in mapped(typed(), organization_id="acme", plan=None)


def test_attribute_name_with_a_trailing_newline_refused():
    with pytest.raises(AttributeMappingError, match="invalid attribute name"):
        mapped(NO_SCHEMA, organization_id="acme", **{"region\n": "emea"})


def test_single_value_wrapped_where_list_declared():
    assert mapped(typed(), organization_id="acme", groups="sales")["groups"] == ["sales"]


# -- value rules, with and without a schema ---------------------------------
CONTROL = [chr(c) for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029)]
BIDI = [chr(c) for c in sorted(BIDI_CONTROLS)]


@pytest.mark.parametrize("schema", [NO_SCHEMA, typed()], ids=["no-schema", "schema"])
@pytest.mark.parametrize(
    "char", ["\r", "\n", "\t", "\x00", "\x1b", "\x85", "\x7f", "\x9b", "\u2028", "\u2029", "\ud800"]
)
def test_control_characters_refused(schema, char):
    message = refused("contains a control character", schema, organization_id=f"ac{char}me{SECRET}")
    assert f"U+{ord(char):04X}" in message


@pytest.mark.parametrize("schema", [NO_SCHEMA, typed()], ids=["no-schema", "schema"])
@pytest.mark.parametrize("char", BIDI)
def test_bidi_controls_refused(schema, char):
    refused("contains a bidi control character", schema, organization_id=f"acme{char}{SECRET}")


def test_bidi_and_controls_refused_in_list_items_and_other_attributes():
    refused("'groups' contains a control character", typed(), groups=["ok", f"x\ny{SECRET}"])
    refused("'groups' contains a bidi control", NO_SCHEMA, groups=["ok", f"\u202e{SECRET}"])
    refused("'region' contains a control character", NO_SCHEMA, region=f"eu\x00{SECRET}")


@pytest.mark.parametrize("schema", [NO_SCHEMA, typed()], ids=["no-schema", "schema"])
def test_length_cap(schema):
    assert mapped(schema, organization_id="a" * 256)["organization_id"] == "a" * 256
    refused("longer than 256 characters", schema, organization_id=SECRET + "a" * 300)
    refused("longer than 256 characters", schema, organization_id=SECRET * 1000)


def test_length_cap_is_configurable_and_counts_characters_not_bytes():
    short = schema_from_settings(None, 4, ())
    assert mapped(short, organization_id="ééé€")["organization_id"] == "ééé€"
    refused("longer than 4 characters", short, organization_id="abcde")


def test_list_item_count_cap():
    ok = [f"g{i}" for i in range(MAX_LIST_ITEMS)]
    assert mapped(typed(), organization_id="acme", groups=ok)["groups"] == ok
    refused(f"'groups' has more than {MAX_LIST_ITEMS} items", typed(), groups=[*ok, SECRET])
    refused(f"'groups' has more than {MAX_LIST_ITEMS} items", NO_SCHEMA, groups=[*ok, SECRET])


def test_size_budget_of_the_whole_object():
    # Each value is within its own cap; together they are over 2 KB of JSON.
    values = {f"a{i}": SECRET + "x" * 200 for i in range(12)}
    message = refused("over the budget of 2048", NO_SCHEMA, **values)
    assert "bytes of JSON" in message
    fits = {f"a{i}": "x" * 200 for i in range(8)}
    assert len(mapped(NO_SCHEMA, organization_id="acme", **fits)) == 9


@pytest.mark.parametrize("schema", [NO_SCHEMA, typed()], ids=["no-schema", "schema"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_refused_everywhere(schema, bad):
    name = "quota" if schema.types else "score"
    refused(f"'{name}' is not a finite number", schema, **{name: bad})


def test_non_finite_in_a_list_refused_without_schema():
    refused("'scores' is not a finite number", NO_SCHEMA, scores=[1.0, math.nan])


@pytest.mark.parametrize("big", [2**53, -(2**53), 10**5000], ids=["2**53", "-2**53", "10**5000"])
def test_integers_beyond_ijson_range_refused(big):
    refused("'seats' is an integer outside", typed(), seats=big)
    refused("'seats' is an integer outside", NO_SCHEMA, seats=big)


@pytest.mark.parametrize("value", [True, False])
def test_required_attribute_cannot_be_a_boolean_without_schema(value):
    refused(
        "'organization_id' is a boolean, which cannot be a required attribute",
        NO_SCHEMA,
        organization_id=value,
    )


def test_optional_boolean_and_zero_without_schema_keep_todays_behaviour():
    out = mapped(NO_SCHEMA, organization_id="acme", beta=True, seats=0)
    assert out["beta"] is True and out["seats"] == 0
    # 0 is a valid integer key without a schema; declaring the type str refuses it.
    assert mapped(NO_SCHEMA, organization_id=0)["organization_id"] == 0
    refused("'organization_id' is not text where str is declared", typed(), organization_id=0)


def test_a_declared_bool_may_be_required():
    schema = schema_from_settings({"active": "bool"}, 256, ("active",))
    assert mapped(schema, required=("active",), active=False) == {"active": False}


def test_unicode_text_that_is_not_control_is_accepted():
    value = "Zürich \u2013 東京 🦜 \u00a0 \u200d"  # letters, a dash, an emoji, NBSP, ZWJ: no controls
    assert mapped(typed(), organization_id=value)["organization_id"] == value


# -- hypothesis -------------------------------------------------------------
FORBIDDEN = set(CONTROL) | set(BIDI) | {chr(c) for c in range(0xD800, 0xE000)}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_text_accepted_iff_clean_and_short(text):
    clean = text.strip() and len(text) <= 256 and not (set(text) & FORBIDDEN)
    if not text.strip():
        return  # blank: maps to nothing (a missing required attribute, tested elsewhere)
    try:
        out = mapped(typed(), organization_id=text)
    except AttributeMappingError as exc:
        assert not clean
        # A fixed sentence (never the value): the rule, at most a code point and a position.
        assert re.fullmatch(
            r"attribute 'organization_id' (is longer than 256 characters \(TOUCAN_ATTRIBUTE_MAX_LENGTH\)"
            r"|contains a (bidi )?control character \(U\+[0-9A-F]{4,6} at position \d+\))"
            r"; no token was issued",
            str(exc),
        ), str(exc)
    else:
        assert clean and out == {"organization_id": text}


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.floats(), st.integers(), st.booleans()))
def test_numbers_for_a_float_attribute(value):
    try:
        out = mapped(typed(), organization_id="acme", quota=value)
    except AttributeMappingError:
        assert (
            isinstance(value, bool)
            or (isinstance(value, float) and not math.isfinite(value))
            or (isinstance(value, int) and abs(value) > 2**53 - 1)
        )
    else:
        assert math.isfinite(out["quota"]) and isinstance(out["quota"], float)


# -- flask toucan check -----------------------------------------------------
def test_cli_check_prints_the_schema_and_no_secret():
    app = Flask("schema-cli")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TOUCAN_BASE_URL="http://127.0.0.1:9",
        TOUCAN_API_KEY=API_KEY,
        TOUCAN_ATTRIBUTES={"organization_id": "Text", "groups": "list[str]", "seats": "Integer"},
        TOUCAN_ATTRIBUTE_MAX_LENGTH=64,
    )
    Toucan(app)
    result = app.test_cli_runner().invoke(args=["toucan", "check"])
    assert result.exit_code == 0, result.output
    assert "attribute schema: 3 declared, undeclared attributes refused" in result.output
    for line in ("  groups: list[str]", "  organization_id: str", "  seats: int"):
        assert line + "\n" in result.output
    assert "64 characters per value" in result.output
    assert API_KEY not in result.output


def test_cli_check_without_schema_says_so():
    app = Flask("schema-cli-none")
    app.config.update(SECRET_KEY=SECRET_KEY, TOUCAN_BASE_URL="http://127.0.0.1:9", TOUCAN_API_KEY=API_KEY)
    Toucan(app)
    output = app.test_cli_runner().invoke(args=["toucan", "check"]).output
    assert "attribute schema: none" in output and "256 characters per value" in output


def test_every_code_point_is_refused_exactly_when_the_rules_say():
    """All 1,114,112 code points through the text check, against the rule written out by hand.

    The check has a fast path (``str.isprintable``) in front of its
    per-character walk; this shows the two never disagree on any character.
    """
    from flask_toucan.schema import NO_SCHEMA, _check_text

    refused = {c for c in range(0x110000) if unicodedata.category(chr(c)) in {"Cc", "Cs", "Zl", "Zp"}}
    refused |= {0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
    wrong = []
    for code in range(0x110000):
        try:
            _check_text(NO_SCHEMA, "a", f"x{chr(code)}y")
        except AttributeMappingError:
            if code not in refused:
                wrong.append(code)
        else:
            if code in refused:
                wrong.append(code)
    assert not wrong, [f"U+{c:04X}" for c in wrong[:20]]
