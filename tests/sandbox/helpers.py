"""Helpers for the sandbox tests: token requests, minting over HTTP, direct SQL.

Imported as ``.helpers``; the fixtures live in conftest.py and flask_toucan.testing.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import requests

from flask_toucan.sandbox import SandboxServer

ALL = {
    "dashboard": {"can_view": True},
    "chart": {"can_view": True},
    "database": {"can_view": True},
    "ai": {"can_query": True},
}


def token_request(
    attributes: dict[str, Any] | None = None,
    permissions: dict[str, Any] | None = None,
    distinct_id: str = "https://idp.example|alice",
) -> dict[str, Any]:
    return {
        "user": {"distinctId": distinct_id, "role": "explorer", "attributes": attributes or {}},
        "permissions": ALL if permissions is None else permissions,
    }


def mint(
    sandbox: SandboxServer,
    attributes: dict[str, Any] | None = None,
    permissions: dict[str, Any] | None = None,
) -> str:
    """A token from the real token API (over HTTP, like the host does)."""
    resp = requests.post(
        f"{sandbox.url}/embed/generate-token",
        json=token_request(attributes, permissions),
        headers={"x-api-key": sandbox.api_key},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["token"])


def sql(data_file: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(data_file)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()
