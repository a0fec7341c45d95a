"""The demo's "Ask in your own chat" page in headless Chromium, for two tenants.

The host bot routes the question to Toucan's MCP tool; the page shows the
answer and ``<tc-result-renderer>`` draws the envelope's chart. The figures
must be the tenant's (and region's) own, by plain SQL over the sandbox data,
and match what the same user's ``regional-performance`` dashboard shows.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import pytest

from demo.users import find_user

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

ALICE = find_user("alice")  # acme, emea, analyst
ERIN = find_user("erin")  # globex, amer, analyst
DAVE = find_user("dave")  # globex, emea, viewer


def region_sales(stack: Any, org: str, region: str) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{stack.sandbox.data_file}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT region, SUM(amount) FROM sales WHERE organization_id = ? AND region = ? GROUP BY region",
            (org, region),
        ).fetchall()
    finally:
        conn.close()
    return {r: int(a) for r, a in rows}


def ask(page: Any, question: str) -> None:
    page.fill("#question", question)
    page.click("#ask")
    page.wait_for_selector("#chat-answer", timeout=15_000)


def bars(page: Any) -> dict[str, int]:
    page.wait_for_selector("tc-result-renderer[data-state='ready']", timeout=10_000)
    return page.eval_on_selector(
        "tc-result-renderer",
        """el => Object.fromEntries(Array.from(el.querySelectorAll("svg rect[data-label]"),
              r => [r.dataset.label, parseInt(r.dataset.value, 10)]))""",
    )


@pytest.mark.parametrize("person", [ALICE, ERIN], ids=["acme-alice", "globex-erin"])
def test_chat_page_answers_with_the_tenants_figures(
    visitor: Any, demo_stack: Any, artifacts_dir: str, person: Any
) -> None:
    page = visitor().sign_in(person)
    dashboard = "tc-dashboard[dashboard-id='regional-performance']"
    page.wait_for_selector(f"{dashboard}[data-state='ready']", timeout=10_000)
    on_dashboard = page.eval_on_selector(
        dashboard,
        r"""el => Object.fromEntries(Array.from(el.querySelectorAll("tr[data-row-id]"), tr => [
              tr.dataset.rowId,
              parseInt(tr.querySelector('td[data-col="amount"]').textContent.replace(/\D/g, ""), 10)]))""",
    )
    page.click("nav a[href='/chat']")
    page.wait_for_url(demo_stack.url + "/chat")
    ask(page, "Show sales by region")
    expected = region_sales(demo_stack, person.organization, person.region)
    assert page.get_attribute("#chat-answer", "data-by") == "toucan"
    answer = page.inner_text("#chat-answer")
    for region, amount in expected.items():
        assert f"{region} {amount:,}" in answer
    assert bars(page) == expected
    assert bars(page) == on_dashboard  # what the user's dashboard shows
    assert page.evaluate("window.__csp") == []
    page.screenshot(path=os.path.join(artifacts_dir, f"demo-chat-{person.username}.png"), full_page=True)

    # A follow-up continues Toucan's thread (the bot keeps the threadId server-side).
    ask(page, "and by month?")
    assert page.get_attribute("#chat-answer", "data-by") == "toucan"
    assert len(bars(page)) == 12
    assert page.locator("#new-conversation").is_visible()


def test_chat_bot_small_talk_and_viewer(visitor: Any, demo_stack: Any) -> None:
    page = visitor().sign_in(DAVE)
    page.goto(demo_stack.url + "/chat")
    assert page.locator("#chat-note").is_visible()
    ask(page, "hello")
    assert page.get_attribute("#chat-answer", "data-by") == "bot"
    ask(page, "What are my total sales?")
    assert page.get_attribute("#chat-answer", "data-by") == "error"
    assert page.get_attribute("#chat-answer", "data-code") == "permission_denied"
    assert page.locator("tc-result-renderer").count() == 0
