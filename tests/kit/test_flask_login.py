"""Flask-Login apps: ``@toucan.claims_loader`` supplies the identity, Flask-Login's logout ends refreshes.

The app is docs/examples/flask_login_app.py itself (so the documented example
is what is proven), pointed at the real sandbox. In Chromium: log in through
the app's own Flask-Login form, the page embeds a dashboard, a refresh works,
then Flask-Login's logout makes the page's refresh script get a 401 and stop.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from flask import render_template_string

from flask_toucan.identity import SESSION_SUBJECT
from flask_toucan.state import SESSION_ID, SESSION_USER
from tests.kit.conftest import API_KEY

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "flask_login_app.py"
TTL = 4
EVENTS = ["toucan:token-refreshed", "toucan:refresh-failed", "toucan:session-expired", "toucan:token-expired"]
RECORDER = """
window.__ev = [];
for (const name of EVENT_NAMES) {
  document.addEventListener(name, (e) => {
    const d = {...(e.detail || {})}; delete d.component;
    window.__ev.push({type: name, detail: d});
  }, true);
}
""".replace("EVENT_NAMES", json.dumps(EVENTS))


def example_app(sandbox: Any, **config: Any) -> Any:
    spec = importlib.util.spec_from_file_location("example_flask_login_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.create_app(
        TESTING=True,
        TOUCAN_BASE_URL=sandbox.url,
        TOUCAN_API_KEY=sandbox.api_key,
        TOUCAN_RATE_LIMIT="1000/minute",
        **config,
    )


def csrf_of(html: str) -> str:
    match = re.search(r'data-toucan-csrf="([^"]+)"', html)
    assert match, html
    return match.group(1)


def log_in(client: Any, name: str) -> Any:
    r = client.post("/login", data={"username": name, "password": f"{name}-password"})
    assert r.status_code == 302
    return client.get("/")


def refresh(client: Any, csrf: str) -> Any:
    return client.post("/toucan/token", headers={"X-Toucan-CSRF": csrf}, json={"kind": "dashboard"})


@pytest.fixture
def sandbox(toucan_sandbox_factory: Any) -> Any:
    return toucan_sandbox_factory(api_key=API_KEY, token_lifetime=TTL)


def test_claims_loader_serves_the_flask_login_user_and_logout_ends_refreshes(sandbox: Any) -> None:
    app = example_app(sandbox)
    client = app.test_client()
    assert client.get("/").status_code == 302  # Flask-Login's login_required
    page = log_in(client, "alice")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<tc-dashboard" in html and "toucan sees alice" in html  # current_toucan_user in templates
    csrf = csrf_of(html)
    r = refresh(client, csrf)
    assert r.status_code == 200, r.get_json()
    assert "acme" in json.dumps(sandbox.introspect(r.get_json()["token"]))  # alice's tenant
    with client.session_transaction() as sess:
        # No toucan login record: only the id CSRF is bound to and whose identity it is for.
        assert SESSION_USER not in sess and isinstance(sess[SESSION_ID], str) and sess[SESSION_SUBJECT]
    assert client.post("/logout").status_code == 302  # flask_login.logout_user()
    r = refresh(client, csrf)
    assert r.status_code == 401 and r.get_json()["error"] == "not_authenticated"


def test_another_flask_login_user_gets_a_fresh_session_id(sandbox: Any) -> None:
    app = example_app(sandbox)
    client = app.test_client()
    alice_csrf = csrf_of(log_in(client, "alice").get_data(as_text=True))
    with client.session_transaction() as sess:
        alice_sid = sess[SESSION_ID]
    client.post("/logout")
    bob_page = log_in(client, "bob")
    with client.session_transaction() as sess:
        assert sess[SESSION_ID] != alice_sid
    assert refresh(client, alice_csrf).status_code == 403  # alice's page cannot refresh as bob
    assert refresh(client, csrf_of(bob_page.get_data(as_text=True))).status_code == 200


def test_toucan_login_wins_over_the_claims_loader(sandbox: Any) -> None:
    app = example_app(sandbox)
    toucan = app.extensions["toucan"].manager
    with app.test_request_context():
        toucan.login_user({"sub": "bob", "iss": "https://my-app.example"})
        assert toucan.current_user.subject == "bob"
        assert render_template_string("{{ current_toucan_user.subject }}") == "bob"


def test_without_a_user_the_template_proxy_is_falsy(sandbox: Any) -> None:
    app = example_app(sandbox)
    with app.test_request_context():
        assert render_template_string("{% if current_toucan_user %}in{% else %}out{% endif %}") == "out"


@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.slow
def test_flask_login_logout_stops_the_page_refreshes(browser, sandbox, live_server, artifacts_dir):
    url = live_server(example_app(sandbox)).url
    context = browser.new_context()
    context.add_init_script(RECORDER)
    posts: list[int] = []
    context.on(
        "request",
        lambda req: posts.append(1) if req.method == "POST" and req.url == f"{url}/toucan/token" else None,
    )
    try:
        page = context.new_page()
        page.goto(f"{url}/")  # login_required: to the app's own Flask-Login form
        assert page.url.startswith(f"{url}/login")
        page.fill("#username", "alice")
        page.fill("#password", "alice-password")
        page.click("#submit")
        page.wait_for_selector("#dash[data-state=ready]", timeout=10_000)
        assert page.get_attribute("#dash", "data-tenant") == "acme"
        _wait(page, "window.__ev.some(e => e.type === 'toucan:token-refreshed')", TTL + 4)
        assert page.get_attribute("#dash", "data-state") == "ready"

        status = page.evaluate(
            """async () => {
              const r = await fetch("/logout", {method: "POST", redirect: "manual"});
              return r.type === "opaqueredirect" ? 302 : r.status;
            }"""
        )
        assert status == 302  # Flask-Login logged out; the page stays open
        _wait(page, "window.__ev.some(e => e.type === 'toucan:session-expired')", TTL + 4)
        expired = [e for e in page.evaluate("window.__ev") if e["type"] == "toucan:session-expired"]
        assert expired[0]["detail"]["status"] == 401
        count = len(posts)
        time.sleep(TTL)  # stopped: no refresh attempt after the 401
        assert len(posts) == count
        page.screenshot(path=os.path.join(artifacts_dir, "flask-login-session-expired.png"), full_page=True)
    finally:
        context.close()


def _wait(page: Any, expression: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for: {expression}"
        time.sleep(0.1)
