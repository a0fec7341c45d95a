"""Helpers shared by the tests of this folder (imported as ``.helpers``; fixtures live in conftest.py).

The whole demo stack for browser tests, started by the demo's own start-up code.

``demo_stack`` is one provider + sandbox + portal per module, on free ports,
with a 5-second token lifetime so refreshes happen within the test budget.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from demo.stack import DemoStack
from demo.users import DemoUser

#: Short so the browser tests see refreshes, long enough that the refresh margin (a
#: fifth of the 7 s the host counts) is 1.4 s: a loaded 2-core CI box can miss 0.8 s.
TOKEN_LIFETIME = 8


# Collects CSP violations from the first script that runs in every page.
CSP_PROBE = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@dataclass
class Visitor:
    """One browser context (one person) on the demo, and what its pages saw."""

    stack: DemoStack
    context: Any
    token_posts: list[tuple[float, int]] = field(default_factory=list)  # (time, status) of POST /toucan/token

    def new_page(self) -> Any:
        page = self.context.new_page()
        return page

    def sign_in(self, user: DemoUser) -> Any:
        """The real flow: the portal's button, Canaille's two login forms, back to the portal."""
        page = self.new_page()
        page.goto(self.stack.url + "/")
        page.click("#sign-in")
        page.wait_for_url(re.compile(r".*/login$"))
        page.fill("input[name=login]", user.username)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/auth/password$"))
        page.fill("input[name=password]", user.password)
        page.click("button[type=submit]")
        page.wait_for_url(self.stack.url + "/overview")
        return page


def expected_rows(stack: DemoStack, org: str, region: str | None) -> dict[str, dict[str, int]]:
    """``sales-overview`` as the data set says it should be for this tenant: ``month|product`` -> sums.

    Plain SQL on the sandbox's SQLite file, written here independently of the
    sandbox's RLS compiler, so it is an oracle and not a copy.
    """
    sql = "SELECT month, product, SUM(amount), SUM(units), COUNT(*) FROM sales WHERE organization_id = ?"
    params: list[Any] = [org]
    if region:
        sql += " AND region = ?"
        params.append(region)
    sql += " GROUP BY month, product"
    conn = sqlite3.connect(f"file:{stack.sandbox.data_file}?mode=ro", uri=True)
    try:
        return {
            f"{m}|{p}": {"amount": a, "units": u, "orders": n} for m, p, a, u, n in conn.execute(sql, params)
        }
    finally:
        conn.close()


def count_rows(stack: DemoStack, where: str = "1", params: tuple[Any, ...] = ()) -> int:
    conn = sqlite3.connect(f"file:{stack.sandbox.data_file}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM sales WHERE {where}", params).fetchone()[0])
    finally:
        conn.close()


def shot(page: Any, artifacts_dir: str, name: str) -> None:
    page.screenshot(path=os.path.join(artifacts_dir, f"demo-{name}.png"), full_page=True)


def wait_ready(page: Any, selector: str) -> None:
    page.wait_for_selector(f"{selector}[data-state='ready']", timeout=10_000)


def no_csp_violations(page: Any) -> None:
    assert page.evaluate("window.__csp") == []
