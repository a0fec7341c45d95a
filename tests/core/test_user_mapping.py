"""ToucanUser's own ``get`` / ``in`` (faster than Mapping's) behave as a dict's."""

from __future__ import annotations

from flask_toucan.user import ToucanUser


def test_get_and_contains_behave_as_on_a_dict() -> None:
    user = ToucanUser("https://idp", "alice", {"org": "acme", "none": None})
    assert user.get("org") == "acme"
    assert user.get("missing") is None
    assert user.get("missing", "x") == "x"
    assert user.get("none", "x") is None  # a present None is returned, not the default
    assert "org" in user and "none" in user and "missing" not in user
    assert "iss" not in user  # the identity is not a claim
