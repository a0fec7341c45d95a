"""The demo end to end in headless Chromium: real OpenID login, RLS, assistant, refresh, logout.

One demo stack per module (``demo_stack``), started with the same code as
``python -m demo``; each person is a separate browser context.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from demo.users import find_user

from .helpers import TOKEN_LIFETIME, count_rows, expected_rows, no_csp_violations, shot, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

ALICE = find_user("alice")  # acme, emea, analyst
DAVE = find_user("dave")  # globex, emea, viewer
ERIN = find_user("erin")  # globex, amer, analyst


def dashboard_rows(page: Any, dashboard_id: str) -> dict[str, dict[str, int]]:
    """What a rendered ``<tc-dashboard>`` shows: row id -> its figures."""
    return page.eval_on_selector(
        f"tc-dashboard[dashboard-id='{dashboard_id}']",
        """el => Object.fromEntries(Array.from(el.querySelectorAll("tr[data-row-id]"), tr => [
              tr.dataset.rowId,
              Object.fromEntries(["amount", "units", "orders"].map(c => {
                const td = tr.querySelector(`td[data-col="${c}"]`);
                return [c, td ? parseInt(td.textContent.replace(/[^0-9-]/g, ""), 10) : null];
              })),
            ]))""",
    )


def poll(page: Any, predicate: str, timeout: float) -> None:
    """``page.wait_for_function`` evaluates strings with eval(), which the demo's CSP forbids."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        page.wait_for_timeout(100)


def test_sign_in_page_lists_demo_users(visitor: Any, artifacts_dir: str) -> None:
    v = visitor()
    page = v.new_page()
    page.goto(v.stack.url + "/")
    assert page.locator("#sign-in").is_visible()
    users = page.locator("#demo-users tr[data-demo-user]")
    assert users.count() >= 4
    no_csp_violations(page)
    shot(page, artifacts_dir, "01-sign-in")
    page.click("#sign-in")
    page.wait_for_url(re.compile(r".*/login$"))
    # Canaille's own login page lists the accounts too.
    assert page.locator("[data-demo-users] tr[data-demo-user='alice']").is_visible()
    shot(page, artifacts_dir, "02-provider-login")


def test_two_organisations_see_only_their_rows(visitor: Any, demo_stack: Any, artifacts_dir: str) -> None:
    pages = {}
    for user in (ALICE, DAVE):
        page = visitor().sign_in(user)
        for dashboard in ("sales-overview", "regional-performance"):
            wait_ready(page, f"tc-dashboard[dashboard-id='{dashboard}']")
        pages[user.username] = page

    seen = {}
    for user in (ALICE, DAVE):
        page = pages[user.username]
        header = page.locator(".who")
        assert header.get_attribute("data-user-org") == user.organization
        assert user.name in header.inner_text()
        for el in page.locator("tc-dashboard").all():
            assert el.get_attribute("data-tenant") == user.organization
        expected = expected_rows(demo_stack, user.organization, user.region)
        shown = dashboard_rows(page, "sales-overview")
        assert shown == expected, f"{user.username} sees rows other than {user.organization}/{user.region}'s"
        source = int(
            page.get_attribute("tc-dashboard[dashboard-id='sales-overview']", "data-source-row-count")
        )
        assert source == count_rows(
            demo_stack, "organization_id = ? AND region = ?", (user.organization, user.region)
        )
        # The regional dashboard: only the user's own region of their own organisation.
        assert set(dashboard_rows(page, "regional-performance")) == {user.region}
        # The grant panel: what was asked for and what the sandbox says the token grants.
        assert page.get_attribute("[data-granted-attribute='organization_id']", "data-granted-attribute")
        assert page.inner_text("[data-granted-attribute='organization_id']") == user.organization
        assert page.inner_text("[data-attribute='region']") == user.region
        no_csp_violations(page)
        seen[user.username] = shown
        shot(page, artifacts_dir, f"03-overview-{user.username}-{user.organization}")

    # Same region, different organisations: no row in common, different figures.
    assert seen["alice"] and seen["dave"]
    assert all(seen["alice"][k] != seen["dave"].get(k) for k in seen["alice"])
    # Nothing secret on the page.
    html = pages["alice"].content()
    assert demo_stack.sandbox.api_key not in html
    assert demo_stack.app.config["DEMO_OIDC_CLIENT_SECRET"] not in html


def test_assistant_answers_analysts_only(visitor: Any, demo_stack: Any, artifacts_dir: str) -> None:
    alice = visitor().sign_in(ALICE)
    alice.click("nav a[href='/assistant']")
    alice.wait_for_url(demo_stack.url + "/assistant")
    wait_ready(alice, "tc-ai-assistant")
    assert alice.get_attribute("tc-ai-assistant", "data-tenant") == ALICE.organization
    alice.fill("tc-ai-assistant input", "What are my total sales?")
    alice.locator("tc-ai-assistant button", has_text="Ask").click()
    alice.wait_for_selector("tc-ai-assistant li[data-kind='total']", timeout=10_000)
    total = sum(r["amount"] for r in expected_rows(demo_stack, ALICE.organization, ALICE.region).values())
    assert f"{total:,}" in alice.inner_text("tc-ai-assistant li[data-kind='total']")
    no_csp_violations(alice)
    shot(alice, artifacts_dir, "04-assistant-alice-analyst")

    dave = visitor().sign_in(DAVE)
    dave.goto(demo_stack.url + "/assistant")
    assert dave.locator("tc-ai-assistant").count() == 0
    placeholder = dave.locator("[data-toucan-placeholder][data-toucan-kind='assistant']")
    assert placeholder.get_attribute("data-toucan-placeholder") == "not_permitted"
    assert placeholder.is_visible()
    assert dave.locator("#grant [data-grant='withheld']").is_visible()
    shot(dave, artifacts_dir, "05-assistant-dave-viewer")


def test_tokens_refresh_across_expiries(visitor: Any, demo_stack: Any, artifacts_dir: str) -> None:
    page = visitor().sign_in(ALICE)
    wait_ready(page, "#dash-sales-overview")
    page.evaluate(
        """() => {
          const el = document.getElementById("dash-sales-overview");
          window.__tokens = [el.getAttribute("auth-token")];
          window.__states = [];
          new MutationObserver(() => {
            const t = el.getAttribute("auth-token");
            if (t !== window.__tokens[window.__tokens.length - 1]) window.__tokens.push(t);
            window.__states.push(el.dataset.state);
          }).observe(el, { attributes: true, attributeFilter: ["auth-token", "data-state"] });
        }"""
    )
    first = page.evaluate("window.__tokens[0]")
    started = time.monotonic()
    # Three new tokens: the page has outlived the first two tokens' expiry.
    poll(page, "() => window.__tokens.length >= 4", timeout=4 * TOKEN_LIFETIME + 5)
    assert time.monotonic() - started >= TOKEN_LIFETIME
    wait_ready(page, "#dash-sales-overview")
    wait_ready(page, "#dash-regional-performance")
    states = page.evaluate("window.__states")
    assert "expired" not in states and "error" not in states, states
    tokens = page.evaluate("window.__tokens")
    assert len(set(tokens)) == len(tokens)
    # Both dashboards share the refreshed token (one scope), and the sandbox agrees it is live.
    assert page.get_attribute("#dash-regional-performance", "auth-token") == tokens[-1]
    assert demo_stack.sandbox.introspect(tokens[-1])["active"] is True
    assert demo_stack.sandbox.introspect(first)["active"] is False
    indicator = page.locator("#token-indicator")
    assert int(indicator.get_attribute("data-refreshes")) >= 3
    assert "Token valid" in indicator.inner_text()
    no_csp_violations(page)
    shot(page, artifacts_dir, "06-refreshed")


def test_logout_ends_refreshes(visitor: Any, demo_stack: Any, artifacts_dir: str) -> None:
    erin = visitor()
    watched = erin.sign_in(ERIN)  # stays open on the overview
    wait_ready(watched, "#dash-sales-overview")
    other = erin.new_page()  # a second tab of the same login
    other.goto(demo_stack.url + "/overview")
    other.click("form.logout button")
    other.wait_for_url(demo_stack.url + "/")
    assert other.locator("#sign-in").is_visible()
    logged_out_at = time.monotonic()

    # The open tab's next refresh is refused: it stops and says so.
    watched.wait_for_selector("#session-ended:not([hidden])", timeout=(TOKEN_LIFETIME + 5) * 1000)
    assert watched.get_attribute("#token-indicator", "data-state") == "ended"
    assert "Session ended" in watched.inner_text("#token-indicator")
    shot(watched, artifacts_dir, "07-session-ended")
    refused = [s for t, s in erin.token_posts if t > logged_out_at]
    assert refused and all(s == 401 for s in refused), refused

    # And stays stopped: no token request at all over the next lifetime.
    posts = len(erin.token_posts)
    watched.wait_for_timeout((TOKEN_LIFETIME + 1) * 1000)
    assert len(erin.token_posts) == posts
    assert not [s for t, s in erin.token_posts if t > logged_out_at and s == 200]
    # The old cookie opens nothing any more.
    watched.goto(demo_stack.url + "/overview")
    assert watched.url.startswith(demo_stack.url + "/?next=")

    # "Use another account": RP-initiated logout at the provider, back to the portal,
    # and the next sign-in asks who you are instead of signing erin straight back in.
    other.click("#switch-account")
    other.locator("button[type=submit]", has_text="Logout").click()
    other.wait_for_url(demo_stack.url + "/")
    other.click("#sign-in")
    other.wait_for_url(re.compile(r".*/login$"))
    assert other.locator("input[name=login]").is_visible()
