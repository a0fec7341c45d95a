"""docs/examples/own_chat.py runs against the sandbox."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "own_chat.py"


def test_own_chat_example(monkeypatch, toucan_sandbox):
    monkeypatch.setenv("TOUCAN_BASE_URL", toucan_sandbox.url)
    monkeypatch.setenv("TOUCAN_API_KEY", toucan_sandbox.api_key)
    spec = importlib.util.spec_from_file_location("example_own_chat", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    client = module.app.test_client()
    client.post("/my-login", data={"username": "alice"})
    first = client.post("/ask", json={"question": "What are my total sales?"}).get_json()
    assert first["schema"] == "toucan-mcp-v1" and first["answer"].startswith("Total sales for Acme")
    follow = client.post(
        "/ask", json={"question": "and by month?", "thread_id": first["threadId"]}
    ).get_json()
    assert follow["threadId"] == first["threadId"] and len(follow["visualizations"][0]["rows"]) == 12
    relayed = client.post("/llm-chat", json={"question": "top 3 products"}).get_json()
    assert json.loads(relayed["answer"])["answer"].startswith("Top 3 products for Acme")
