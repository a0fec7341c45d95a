"""Helpers shared by the tests of this folder (imported as ``.helpers``; fixtures live in conftest.py).

Fixtures for the MCP tests: a sandbox that speaks MCP and a host app on it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Flask

from flask_toucan import Toucan
from flask_toucan.test_client import ToucanTestClient

ACME = {"sub": "alice", "iss": "https://idp.test", "org": "acme"}


GLOBEX = {"sub": "bob", "iss": "https://idp.test", "org": "globex"}


NO_AI = {"sub": "carol", "iss": "https://idp.test", "org": "acme", "no_ai": True}


def make_app(base_url: str, api_key: str, **config: Any) -> tuple[Flask, Toucan]:
    app = Flask(__name__)
    app.config.update(
        {
            "SECRET_KEY": "mcp-test-secret-key-0123456789abcdef",
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


def sql(data_file: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(data_file)
    try:
        return [tuple(r) for r in conn.execute(query, params).fetchall()]
    finally:
        conn.close()
