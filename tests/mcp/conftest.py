"""Fixtures of this folder; the plain helpers are in helpers.py.

Fixtures for the MCP tests: a sandbox that speaks MCP and a host app on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask

from flask_toucan import Toucan
from flask_toucan.sandbox.mcp_server import McpEndpoint, endpoint_of

from .helpers import make_app


@pytest.fixture
def host(toucan_sandbox: Any) -> tuple[Flask, Toucan]:
    return make_app(toucan_sandbox.url, toucan_sandbox.api_key)


@pytest.fixture
def mcp_endpoint(toucan_sandbox: Any) -> McpEndpoint:
    return endpoint_of(toucan_sandbox.app)


@pytest.fixture
def as_user(host: tuple[Flask, Toucan]) -> Callable[[dict[str, Any]], Any]:
    """``with as_user(ACME):`` a request context where ``claims`` are logged in."""
    app, toucan = host

    @contextmanager
    def login(claims: dict[str, Any]) -> Iterator[Toucan]:
        with app.test_request_context():
            toucan.login_user(claims)
            yield toucan

    return login
