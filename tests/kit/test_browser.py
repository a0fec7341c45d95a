"""The refresh script in headless Chromium, against the real sandbox and its embed.js.

Token lifetime 8 s at the sandbox (the host counts 7 s: one second of the
sandbox's whole-second clock is claimed off), components polling the data API
every 0.5 s: any data request made with an expired token would show up as a
401 from the sandbox.

Why 8 s: the script refreshes a fifth of the lifetime before expiry, so the
refresh round trip (browser -> host -> sandbox -> back) must fit in that
margin. With 4 s tokens the margin was 0.6 s, which a loaded 2-core CI box
missed now and then (a `toucan:token-expired` in a run beside another); 8 s
gives 1.4 s, still short enough for six expiries in about half a minute.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import itsdangerous.timed
import pytest

from tests import waiting
from tests.kit.conftest import API_KEY, make_host

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

TTL = 8
EVENTS = ["toucan:token-refreshed", "toucan:refresh-failed", "toucan:session-expired", "toucan:token-expired"]
RECORDER = """
window.__ev = []; window.__csp = [];
for (const name of EVENT_NAMES) {
  document.addEventListener(name, (e) => {
    const d = {...(e.detail || {})}; delete d.component;
    window.__ev.push({type: name, detail: d, t: performance.now()});
  }, true);
}
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
""".replace("EVENT_NAMES", json.dumps(EVENTS))


def skew(minutes: int) -> str:
    """Shift the page's wall clock (Date) by ``minutes``; timers and performance.now() untouched."""
    return """(() => {
  const offset = MINUTES * 60000, Real = Date;
  class Skewed extends Real {
    constructor(...a) { if (a.length) super(...a); else super(Real.now() + offset); }
    static now() { return Real.now() + offset; }
  }
  globalThis.Date = Skewed;
})();""".replace("MINUTES", str(int(minutes)))


class Watch:
    """What one browser context did: token POSTs to the host, 401s from the sandbox's data API."""

    def __init__(self, context: Any, host_url: str, sandbox_url: str) -> None:
        self.posts = 0
        self.expired: list[str] = []
        self.data_ok = 0
        context.add_init_script(RECORDER)

        def on_request(req: Any) -> None:
            if req.method == "POST" and req.url == f"{host_url}/toucan/token":
                self.posts += 1

        def on_response(resp: Any) -> None:
            if resp.url.startswith(f"{sandbox_url}/api/v1/"):
                if resp.status == 401:
                    self.expired.append(resp.url)
                elif resp.status == 200:
                    self.data_ok += 1

        context.on("request", on_request)
        context.on("response", on_response)


def open_page(context: Any, url: str, sub: str, org: str, *, login: bool = True) -> Any:
    page = context.new_page()
    if login:
        assert page.goto(f"{url}/_login/{sub}?org={org}").ok
    page.goto(f"{url}/page?poll=0.5")
    page.wait_for_selector("#dash[data-state=ready]", timeout=10_000)
    return page


def wait_until(page: Any, expression: str, timeout: float) -> None:
    """Poll ``expression`` from Python (``wait_for_function`` evals strings, which the page's CSP blocks)."""
    waiting.wait_until(lambda: page.evaluate(expression), timeout, interval=0.1, what=expression)


def events(page: Any, name: str) -> list[dict[str, Any]]:
    return [e for e in page.evaluate("window.__ev") if e["type"] == name]


def tenant(page: Any) -> tuple[str | None, str | None]:
    return page.get_attribute("#dash", "data-tenant"), page.get_attribute("#chart", "data-tenant")


@pytest.fixture
def servers(toucan_sandbox_factory: Any, live_server: Any) -> tuple[Any, str]:
    sandbox = toucan_sandbox_factory(api_key=API_KEY, token_lifetime=TTL)
    app, _ = make_host(sandbox)
    return sandbox, live_server(app).url


def test_skewed_clocks_and_two_tabs_survive_five_expiries(browser, servers, artifacts_dir, monkeypatch):
    sandbox, url = servers
    ahead = browser.new_context()
    ahead.add_init_script(skew(+10))
    behind = browser.new_context()
    behind.add_init_script(skew(-10))
    watch_a, watch_b = Watch(ahead, url, sandbox.url), Watch(behind, url, sandbox.url)
    try:
        # A later page's (timestamped, to the second) CSRF string differs from tab1's:
        # itsdangerous's clock is injected and moved one second, no sleeping.
        csrf_clock = waiting.FakeClock().install(monkeypatch, itsdangerous.timed)
        tab1 = open_page(ahead, url, "alice", "acme")
        csrf_clock.advance(1)
        tab2 = open_page(ahead, url, "alice", "acme", login=False)  # same session, second tab
        other = open_page(behind, url, "bob", "globex")
        assert tab1.evaluate("Date.now() - performance.timeOrigin - performance.now()") > 9 * 60_000
        assert other.evaluate("Date.now() - performance.timeOrigin - performance.now()") < -9 * 60_000

        tokens: dict[str, set[str]] = {"tab1": set(), "tab2": set(), "other": set()}

        def five_expiries_each_way() -> bool:
            """Sample every tab (checking the invariants); done once both clocks rode five expiries."""
            for name, page in (("tab1", tab1), ("tab2", tab2), ("other", other)):
                dash, chart = page.evaluate(
                    "['#dash', '#chart'].map(s => document.querySelector(s).getAttribute('auth-token'))"
                )
                assert dash == chart  # one token per permission set, swapped together
                tokens[name].add(dash)
            assert tenant(tab1) == ("acme", "acme") and tenant(tab2) == ("acme", "acme")
            assert tenant(other) == ("globex", "globex")
            return all(
                len(tokens[name]) >= 6 and len(events(page, "toucan:token-refreshed")) >= 5
                for name, page in (("tab1", tab1), ("other", other))
            )

        # Until the condition holds (about six refresh periods, ~15 s), not for a fixed time;
        # the timeout is only a ceiling for a broken run.
        waiting.wait_until(five_expiries_each_way, timeout=20 * TTL, interval=0.25, what="five expiries")

        for page in (tab1, tab2, other):
            assert page.get_attribute("#dash", "data-state") == "ready"
            assert not events(page, "toucan:token-expired") and not events(page, "toucan:refresh-failed")
            assert page.evaluate("window.__csp") == []  # nothing the strict CSP had to block
        # At least five expiries ridden through, in each direction of clock skew.
        assert len(tokens["tab1"]) >= 6 and len(tokens["other"]) >= 6, tokens
        assert len(events(tab1, "toucan:token-refreshed")) >= 5
        assert len(events(other, "toucan:token-refreshed")) >= 5
        # No data request ever went out with an expired token.
        assert watch_a.expired == [] and watch_b.expired == []
        assert watch_a.data_ok > 40 and watch_b.data_ok > 20
        # Two tabs, one refresh per period between them: the second tab reuses the first's.
        assert watch_a.posts <= len(tokens["tab1"] | tokens["tab2"]) + 1, (watch_a.posts, len(tokens["tab1"]))
        assert watch_a.posts < 1.5 * watch_b.posts + 2
        sources = {e["detail"]["source"] for p in (tab1, tab2) for e in events(p, "toucan:token-refreshed")}
        assert sources == {"server", "tab"}
        tab1.screenshot(path=os.path.join(artifacts_dir, "kit-clock-ahead.png"), full_page=True)
        other.screenshot(path=os.path.join(artifacts_dir, "kit-clock-behind.png"), full_page=True)
    finally:
        ahead.close()
        behind.close()


def test_logout_in_one_tab_expires_the_session_in_the_other(browser, servers, artifacts_dir):
    sandbox, url = servers
    context = browser.new_context()
    watch = Watch(context, url, sandbox.url)
    try:
        tab1 = open_page(context, url, "alice", "acme")
        tab2 = open_page(context, url, "alice", "acme", login=False)
        status = tab1.evaluate(
            """async () => {
              const el = document.querySelector("#dash");
              const r = await fetch("/toucan/logout", {method: "POST", redirect: "manual",
                headers: {"X-Toucan-CSRF": el.getAttribute("data-toucan-csrf")}});
              return r.type === "opaqueredirect" ? 302 : r.status;
            }"""
        )
        assert status == 302
        wait_until(tab2, "window.__ev.some(e => e.type === 'toucan:session-expired')", TTL + 2)
        detail = events(tab2, "toucan:session-expired")[0]["detail"]
        assert detail["status"] == 401
        posts = watch.posts
        # Sleeping IS the check here: an absence (no refresh attempt after the 401) can
        # only be observed over time. One TTL covers a whole refresh period; a slow
        # machine can only make the check weaker, never make it fail falsely.
        time.sleep(TTL)
        assert watch.posts == posts
        tab2.screenshot(path=os.path.join(artifacts_dir, "kit-session-expired.png"), full_page=True)
    finally:
        context.close()


def test_two_503s_are_ridden_out(browser, servers, artifacts_dir):
    sandbox, url = servers
    context = browser.new_context()
    Watch(context, url, sandbox.url)
    try:
        page = open_page(context, url, "alice", "acme")
        wait_until(page, "window.__ev.some(e => e.type === 'toucan:token-refreshed')", 8)
        sandbox.set_faults(fail_next=2, retry_after=1)
        wait_until(
            page,
            """window.__ev.filter(e => e.type === 'toucan:refresh-failed' && !e.detail.at_expiry).length >= 2
               && window.__ev.some(e => e.type === 'toucan:token-refreshed'
                   && e.t > window.__ev.filter(f => f.type === 'toucan:refresh-failed').at(-1).t)""",
            15,
        )
        failed = [
            e
            for e in events(page, "toucan:refresh-failed")
            if e["detail"]["status"] == 503 and not e["detail"].get("at_expiry")
        ]
        assert len(failed) == 2
        assert all(e["detail"]["retry_in"] >= 1 for e in failed)  # Retry-After honoured
        assert failed[1]["t"] - failed[0]["t"] >= 950
        page.wait_for_selector("#dash[data-state=ready]", timeout=8000)
        assert tenant(page) == ("acme", "acme")
        assert sandbox.stats.get("faults_injected", 0) == 2
        # Still refreshing afterwards (the loop survived the failures).
        count = len(events(page, "toucan:token-refreshed"))
        wait_until(page, f"window.__ev.filter(e => e.type === 'toucan:token-refreshed').length > {count}", 8)
        page.screenshot(path=os.path.join(artifacts_dir, "kit-after-503s.png"), full_page=True)
    finally:
        context.close()
