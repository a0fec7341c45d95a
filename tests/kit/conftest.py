"""Fixtures of this folder; the plain helpers are in helpers.py.

Host app for the component-kit tests, pointed at the real Toucan sandbox.

Login goes through ``toucan.login_user`` (no OpenID provider needed here): a
``GET /_login/<sub>?org=...&ai=1`` route stands in for the app's own login.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_toucan import Toucan

from .helpers import API_KEY, make_host


@pytest.fixture
def toucan_sandbox(toucan_sandbox_factory: Callable[..., Any]) -> Any:
    """The plugin's sandbox, with this folder's fixed API key."""
    return toucan_sandbox_factory(api_key=API_KEY)


@pytest.fixture
def host(toucan_sandbox: Any) -> Callable[..., tuple[Flask, Toucan]]:
    """``host(**config)`` -> (app, toucan) against this test's sandbox."""
    return lambda **config: make_host(toucan_sandbox, **config)
