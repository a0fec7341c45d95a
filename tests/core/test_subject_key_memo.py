"""``state.subject_key`` is memoised: it must always equal the JSON of (issuer, subject)."""

from __future__ import annotations

import json
from typing import Any

from flask_toucan.state import subject_key
from flask_toucan.user import ToucanUser


def test_memoised_subject_keys_equal_fresh_ones() -> None:
    pairs: list[tuple[Any, Any]] = [
        ("https://idp", "alice"),
        ("https://idp", "bob"),
        ("https://other", "alice"),
        ("https://idp", "zoë"),
        ("https://idp|x", "y"),
        ("https://idp", "x|y"),
        # equal in Python, different JSON: never one memo entry
        ("https://idp", 1),
        ("https://idp", 1.0),
        ("https://idp", True),
    ]
    for _ in range(2):  # the second pass is served from the memo
        for issuer, subject in pairs:
            assert subject_key(ToucanUser(issuer, subject, {})) == json.dumps([issuer, subject])
