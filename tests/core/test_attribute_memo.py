"""The checked-attributes memo (mappers.MapperRegistry.map_attributes) is never stale.

The mappers run on every mint; only the checks of what they return are
memoised, keyed by the raw values. Each test here would fail with a memo keyed
too loosely (by value equality across types, without the registry's ``many``
flags, without the required names, across schemas) or sharing its lists.
"""

from __future__ import annotations

from typing import Any

import pytest

from flask_toucan import AttributeMappingError
from flask_toucan.mappers import MapperRegistry
from flask_toucan.schema import AttributeSchema
from flask_toucan.user import ToucanUser


def user(**claims: Any) -> ToucanUser:
    return ToucanUser("https://idp", "alice", claims)


def registry(**mappers: Any) -> MapperRegistry:
    reg = MapperRegistry()
    for name, many in mappers.items():
        reg.add_attribute(name, lambda u, name=name: u.get(name), many=many)
    return reg


def test_a_changed_value_reaches_the_next_result() -> None:
    reg = registry(org=False)
    assert reg.map_attributes(user(org="acme"), ["org"]) == {"org": "acme"}
    assert reg.map_attributes(user(org="globex"), ["org"]) == {"org": "globex"}
    assert reg.map_attributes(user(org="acme"), ["org"]) == {"org": "acme"}


def test_results_do_not_share_lists_with_the_memo() -> None:
    reg = registry(groups=True)
    first = reg.map_attributes(user(groups=["a", "b"]), [])
    first["groups"].append("smuggled")  # a caller (or a signal receiver) mutating its copy
    second = reg.map_attributes(user(groups=["a", "b"]), [])
    assert second == {"groups": ["a", "b"]}
    assert second["groups"] is not first["groups"]


def test_equal_values_of_other_types_are_checked_again() -> None:
    """``1 == True``: a memo keyed by equality would let a boolean tenant key through."""
    reg = registry(org=False)
    assert reg.map_attributes(user(org=1), ["org"]) == {"org": 1}
    with pytest.raises(AttributeMappingError, match="boolean"):
        reg.map_attributes(user(org=True), ["org"])
    assert repr(reg.map_attributes(user(org=-0.0), [])["org"]) == "-0.0"
    assert repr(reg.map_attributes(user(org=0.0), [])["org"]) == "0.0"


def test_required_names_are_part_of_the_key() -> None:
    reg = registry(org=False, region=False)
    assert reg.map_attributes(user(org="acme"), ["org"]) == {"org": "acme"}
    with pytest.raises(AttributeMappingError, match="region"):
        reg.map_attributes(user(org="acme"), ["org", "region"])


def test_a_changed_registry_is_not_served_from_the_memo() -> None:
    reg = registry(org=False)
    assert reg.map_attributes(user(org="acme"), []) == {"org": "acme"}
    reg.add_attribute("org", lambda u: u.get("org"), many=True)  # now a list attribute
    assert reg.map_attributes(user(org="acme"), []) == {"org": ["acme"]}


def test_each_schema_has_its_own_memo() -> None:
    reg = registry(org=False)
    long = "x" * 20
    assert reg.map_attributes(user(org=long), [], AttributeSchema(max_length=64)) == {"org": long}
    with pytest.raises(AttributeMappingError, match="longer than 10"):
        reg.map_attributes(user(org=long), [], AttributeSchema(max_length=10))


def test_a_refusal_is_refused_every_time() -> None:
    reg = registry(org=False)
    for _ in range(3):
        with pytest.raises(AttributeMappingError, match="control character"):
            reg.map_attributes(user(org="acme\nevil"), ["org"])


def test_the_mappers_still_run_on_every_call() -> None:
    calls: list[str] = []
    reg = MapperRegistry()
    reg.add_attribute("org", lambda u: calls.append("org") or u["org"])
    for _ in range(3):
        reg.map_attributes(user(org="acme"), ["org"])
    assert calls == ["org", "org", "org"]
