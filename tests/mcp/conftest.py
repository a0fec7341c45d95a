"""Fixtures for the MCP tests: a sandbox that speaks MCP and a host app on it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask

from flask_toucan import Toucan
from flask_toucan.sandbox.mcp_server import McpEndpoint, endpoint_of
from flask_toucan.test_client import ToucanTestClient

ACME = {"sub": "alice", "iss": "https://idp.test", "org": "acme"}
GLOBEX = {"sub": "bob", "iss": "https://idp.test", "org": "globex"}
NO_AI = {"sub": "carol", "iss": "https://idp.test", "org": "acme", "no_ai": True}


def make_app(base_url: str, api_key: str, **config: Any) -> tuple[Flask, Toucan]:
    app = Flask(__name__)
    app.config.update(
        {
            "SECRET_KEY": "test-secret",
            "TOUCAN_BASE_URL": base_url,
            "TOUCAN_API_KEY": api_key,
            "TOUCAN_ASSISTANT_ROUTE": True,
            **config,
        }
    )
    app.test_client_class = ToucanTestClient
    toucan = Toucan(app)

    @toucan.attribute("organization_id")
    def organization(user: Any) -> Any:
        return user.claims.get("org")

    @toucan.permissions
    def permissions(user: Any) -> dict[str, dict[str, bool]]:
        perms = {"dashboard": {"can_view": True}}
        if not user.claims.get("no_ai"):
            perms["ai"] = {"can_query": True}
        return perms

    return app, toucan


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


def sql(data_file: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(data_file)
    try:
        return [tuple(r) for r in conn.execute(query, params).fetchall()]
    finally:
        conn.close()
