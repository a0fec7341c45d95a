"""Two tenants ask through MCP: each sees only its own figures; threads stay with their owner."""

from __future__ import annotations

import json
import time

import pytest

from flask_toucan.assistant import AssistantSession
from flask_toucan.exceptions import PermissionDenied, UpstreamRejected
from flask_toucan.tokens import EmbedToken, utc_from_timestamp

from .helpers import ACME, GLOBEX, sql

pytestmark = pytest.mark.integration

QUESTION = "What are the sales by region?"


def region_totals(data_file: str, org: str, product: str | None = None) -> list[list[object]]:
    extra, params = ("AND product = ?", [product]) if product else ("", [])
    rows = sql(
        data_file,
        f"SELECT region, SUM(amount) FROM sales WHERE organization_id = ? {extra} "
        "GROUP BY region ORDER BY region",
        org,
        *params,
    )
    return [[r, int(a)] for r, a in rows]


def test_two_tenants_get_only_their_figures(as_user, toucan_sandbox):
    answers = {}
    for claims in (ACME, GLOBEX):
        with as_user(claims) as toucan, toucan.assistant() as assistant:
            answers[claims["org"]] = assistant.ask(QUESTION)
    for org, other in (("acme", "globex"), ("globex", "acme")):
        envelope = answers[org]
        assert envelope["schema"] == "toucan-mcp-v1"
        expected = region_totals(toucan_sandbox.data_file, org)
        assert envelope["visualizations"][0]["rows"] == expected
        for region, amount in expected:
            assert f"{region} {amount:,}" in envelope["answer"]
        # None of the other tenant's figures appear anywhere in the answer.
        for _, amount in region_totals(toucan_sandbox.data_file, other):
            assert f"{amount:,}" not in envelope["answer"]
            assert amount not in [row[1] for row in envelope["visualizations"][0]["rows"]]
    assert answers["acme"]["threadId"] != answers["globex"]["threadId"]


def test_total_matches_sql(as_user, toucan_sandbox):
    with as_user(GLOBEX) as toucan, toucan.assistant() as assistant:
        envelope = assistant.ask("What are my total sales?")
    ((amount, orders, units),) = sql(
        toucan_sandbox.data_file,
        "SELECT SUM(amount), COUNT(*), SUM(units) FROM sales WHERE organization_id = ?",
        "globex",
    )
    assert envelope["visualizations"] == [
        {
            "type": "kpi",
            "title": "Total sales",
            "columns": ["Sales", "Orders", "Units"],
            "rows": [[amount, orders, units]],
        }
    ]
    assert f"{amount:,}" in envelope["answer"]


def test_follow_up_continues_the_thread(as_user, toucan_sandbox):
    with as_user(ACME) as toucan, toucan.assistant() as assistant:
        first = assistant.ask("What are the total sales of rockets?")
        follow = assistant.ask("and by region?", thread_id=first["threadId"])
        fresh = assistant.ask("and by region?")
    assert follow["threadId"] == first["threadId"]
    # The follow-up kept the first question's product: rockets by region, not all products.
    assert follow["visualizations"][0]["rows"] == region_totals(toucan_sandbox.data_file, "acme", "rockets")
    assert fresh["visualizations"][0]["rows"] == region_totals(toucan_sandbox.data_file, "acme")
    assert fresh["threadId"] != first["threadId"]


def test_another_users_thread_is_refused(as_user, toucan_sandbox, mcp_endpoint):
    with as_user(ACME) as toucan, toucan.assistant() as assistant:
        thread = assistant.ask(QUESTION)["threadId"]
    with as_user(GLOBEX) as toucan, toucan.assistant() as assistant:
        # Refused by the host before it reaches Toucan, by ask() and by call() (an LLM's path).
        with pytest.raises(PermissionDenied):
            assistant.ask("and by month?", thread_id=thread)
        with pytest.raises(PermissionDenied):
            assistant.call("ask_toucan_assistant", {"question": "and by month?", "threadId": thread})
    # ...and by the sandbox if it got there (a bare session has no host-side record).
    token = toucan_sandbox.issue_token(
        {"organization_id": "globex"}, {"ai": {"can_query": True}}, distinct_id="bob"
    )
    bare = EmbedToken(token, utc_from_timestamp(time.time() + 3600))
    with AssistantSession(toucan_sandbox.url + "/api/mcp", lambda: bare) as assistant:
        with pytest.raises(UpstreamRejected) as info:
            assistant.ask("and by month?", thread_id=thread)
    assert info.value.upstream_code == "THREAD_NOT_FOUND"
    assert mcp_endpoint.threads[thread].owner[1] == "acme"


def test_thread_ids_from_an_llm_tool_call_are_remembered(as_user):
    with as_user(ACME) as toucan, toucan.assistant() as assistant:
        result = assistant.call("ask_toucan_assistant", {"question": "total sales"})
        thread = json.loads(result["text"])["threadId"]
        follow = assistant.call("ask_toucan_assistant", {"question": "and by month?", "threadId": thread})
    assert json.loads(follow["text"])["threadId"] == thread


def test_tools_and_prompt(as_user):
    progress = []
    with as_user(ACME) as toucan, toucan.assistant() as assistant:
        tools = assistant.tools()
        usage = assistant.prompt("tool-usage")
        assistant.ask(
            "top 3 products", on_progress=lambda done, total, msg: progress.append((done, total, msg))
        )
    (tool,) = tools
    assert tool["name"] == "ask_toucan_assistant"
    assert tool["input_schema"]["required"] == ["question"]
    assert "threadId" in tool["input_schema"]["properties"]
    assert "ask_toucan_assistant" in usage and "threadId" in usage
    assert [p[0] for p in progress] == [0, 1, 3]
    assert progress[-1][1] == 3
