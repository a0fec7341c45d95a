"""Tests must not depend on each other's order: no test may inherit another's Flask context."""

from __future__ import annotations

from typing import Any

from flask import has_app_context, has_request_context


def test_provider_fixture_leaves_no_app_context(iam_server: Any) -> None:
    # pytest-iam's own fixture keeps the provider's app context pushed for the whole
    # session; tests/core/oidc_fixtures.py overrides it so that nothing leaks.
    assert not has_app_context() and not has_request_context()
