"""Page-level work (flask_toucan/page.py): one upstream round trip per cold page, a memo per request.

The upstream is ``bench.upstream.CountingUpstream``: it records when each call
arrived and was answered. With ``rendezvous=2`` it holds every call until two
are in flight at once (a condition, not a clock): two mints made one after the
other would show up as non-overlapping calls (the first one held alone until
the rendezvous times out).
"""

from __future__ import annotations

import threading
from typing import Any

import jwt
import pytest
from flask import Flask, render_template_string, session

from bench.upstream import CountingUpstream
from flask_toucan import Toucan, csrf
from flask_toucan.keys import generate_private_key_pem
from flask_toucan.state import SESSION_ID

SECRET_KEY = "page-test-secret-key-0123456789abcdef0123456789"
IMPORT = '{% from "toucan/components.html" import toucan_prefetch, tc_dashboard, tc_ai_assistant %}'
DECLARED = (
    IMPORT + '{{ toucan_prefetch("dashboard", "assistant") }}{{ tc_dashboard("d") }}{{ tc_ai_assistant() }}'
)
UNDECLARED = IMPORT + '{{ tc_dashboard("d") }}{{ tc_ai_assistant() }}'
ALICE = {"sub": "alice", "iss": "https://idp.test", "org": "acme", "ai": True}
BOB = {"sub": "bob", "iss": "https://idp.test", "org": "globex", "ai": True}


def make_app(mode: str, upstream: CountingUpstream | None = None, **config: Any) -> tuple[Flask, Toucan]:
    app = Flask("page-host")
    app.config.update(SECRET_KEY=SECRET_KEY, TOUCAN_RATE_LIMIT=None, TOUCAN_HTTP_RETRIES=0)
    if mode == "api":
        assert upstream is not None
        app.config.update(TOUCAN_BASE_URL=upstream.url, TOUCAN_API_KEY="tk_page_test_key")
    else:
        app.config.update(
            TOUCAN_MODE="signed",
            TOUCAN_SIGNING_KEY=generate_private_key_pem("EC", 256).decode(),
            TOUCAN_SIGNING_ALGORITHM="ES256",
            TOUCAN_ISSUER="https://host.test",
            TOUCAN_AUDIENCE="toucan-embed",
            TOUCAN_BASE_URL="https://toucan.test",
        )
        if upstream is not None:  # the classic profile's exchange
            app.config.update(
                TOUCAN_EXCHANGE_URL=upstream.url + "/exchange", TOUCAN_EXCHANGE_CLIENT_SECRET="s3cret"
            )
    app.config.update(config)
    toucan = Toucan()

    @toucan.attribute("organization_id")
    def organization(user: Any) -> Any:
        return user["org"]

    @toucan.permissions
    def permissions(user: Any) -> dict[str, dict[str, bool]]:
        granted = {"dashboard": {"can_view": True}}
        if user.get("ai"):
            granted["ai"] = {"can_query": True}
        return granted

    toucan.init_app(app)
    return app, toucan


def render_as(app: Flask, toucan: Toucan, claims: dict[str, Any], source: str, path: str = "/page") -> str:
    with app.test_request_context(path):
        toucan.login_user(claims)
        return render_template_string(source)


@pytest.mark.parametrize("mode", ["api", "classic"])
def test_cold_page_mints_both_tokens_concurrently(mode):
    with CountingUpstream(rendezvous=2) as upstream:
        app, toucan = make_app("api" if mode == "api" else "signed", upstream)
        html = render_as(app, toucan, ALICE, DECLARED)
    assert len(upstream.calls) == 2
    assert upstream.overlapping(), [(c.started, c.ended) for c in upstream.calls]
    assert "toucan-placeholder" not in html
    assert html.count("<tc-dashboard") == 1 and html.count("<tc-ai-assistant") == 1


def test_kinds_are_learned_per_endpoint_without_a_declaration():
    with CountingUpstream() as upstream:
        app, toucan = make_app("api", upstream)
        render_as(app, toucan, ALICE, UNDECLARED)  # first render of the endpoint: learns both kinds
        upstream.reset()
        upstream.set_rendezvous(2)
        html = render_as(app, toucan, BOB, UNDECLARED)  # another user, cold cache
    assert len(upstream.calls) == 2 and upstream.overlapping()
    assert "toucan-placeholder" not in html


def test_one_refused_kind_is_one_placeholder_and_the_other_renders():
    with CountingUpstream(refuse=lambda body: b'"ai"' in body) as upstream:
        app, toucan = make_app("api", upstream)
        html = render_as(app, toucan, ALICE, DECLARED)
    assert html.count("<tc-dashboard") == 1
    assert 'data-toucan-placeholder="misconfigured"' in html and 'data-toucan-kind="assistant"' in html
    assert "<tc-ai-assistant" not in html


def test_single_flight_across_concurrent_cold_pages_of_one_user():
    """Eight renders of one user at once, two permission sets: two upstream calls, not sixteen."""
    with CountingUpstream(latency=0.05) as upstream:
        app, toucan = make_app("api", upstream)
        with app.test_request_context("/"):
            toucan.login_user(ALICE)
            cookie_session = dict(session)
        barrier = threading.Barrier(8)
        pages: list[str] = []

        def render() -> None:
            with app.test_request_context("/page"):
                session.update(cookie_session)
                barrier.wait(10)
                pages.append(render_template_string(DECLARED))

        threads = [threading.Thread(target=render) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(upstream.calls) == 2
    assert len(pages) == 8 and all("toucan-placeholder" not in p for p in pages)
    assert len({tuple(_attrs(p, "auth-token")) for p in pages}) == 1  # everyone got the same two tokens


def test_page_memo_does_not_leak_across_requests_or_users():
    app, toucan = make_app("signed")
    page = IMPORT + '{{ tc_dashboard("a") }}{{ tc_dashboard("b") }}{{ tc_ai_assistant() }}'
    seen = {}
    for claims in (ALICE, BOB):
        with app.test_request_context("/page"):
            toucan.login_user(claims)
            html = render_template_string(page)
            sid = session[SESSION_ID]
            dash = toucan.issue_token(kind="dashboard").value
            seen[claims["sub"]] = (html, sid, dash)
    for sub, (html, sid, dash) in seen.items():
        assert html.count(dash) == 2  # both dashboards carry this user's token
        username = jwt.decode(dash, options={"verify_signature": False})["embed_context"]["username"]
        assert sub in username
        token = _attr(html, "data-toucan-csrf")
        assert csrf.check_token(app, token, sid, 3600)
    (alice_html, alice_sid, alice_dash), (bob_html, bob_sid, bob_dash) = seen["alice"], seen["bob"]
    assert alice_dash not in bob_html and bob_dash not in alice_html
    assert not csrf.check_token(app, _attr(bob_html, "data-toucan-csrf"), alice_sid, 3600)
    assert not csrf.check_token(app, _attr(alice_html, "data-toucan-csrf"), bob_sid, 3600)
    assert _attr(alice_html, "data-toucan-session") != _attr(bob_html, "data-toucan-session")


def test_page_memo_is_dropped_when_the_user_changes_within_a_request():
    app, toucan = make_app("signed")
    page = IMPORT + '{{ tc_dashboard("a") }}'
    with app.test_request_context("/page"):
        toucan.login_user(ALICE)
        first = render_template_string(page)
        toucan.login_user(BOB)
        second = render_template_string(page)
        bob_sid = session[SESSION_ID]
        assert toucan.issue_token(kind="dashboard").value in second
    assert _attr(first, "auth-token") != _attr(second, "auth-token")
    assert csrf.check_token(app, _attr(second, "data-toucan-csrf"), bob_sid, 3600)
    assert _attr(first, "data-toucan-csrf") != _attr(second, "data-toucan-csrf")


def test_scopes_stay_per_permission_set():
    app, toucan = make_app("signed")
    page = IMPORT + '{{ tc_dashboard("a") }}{{ tc_dashboard(chart_id="c") }}{{ tc_ai_assistant() }}'
    html = render_as(app, toucan, ALICE, page)
    scopes = [s for s in _attrs(html, "data-toucan-scope")]
    tokens = [t for t in _attrs(html, "auth-token")]
    assert scopes[0] == scopes[1] != scopes[2]  # dashboard and chart share a permission set
    assert tokens[0] == tokens[1] != tokens[2]


def test_toucan_prefetch_refuses_an_unknown_kind():
    from flask_toucan.components import ComponentOptionError

    app, toucan = make_app("signed")
    with pytest.raises(ComponentOptionError, match="unknown kind"):
        render_as(app, toucan, ALICE, IMPORT + '{{ toucan_prefetch("dashbord") }}')


def _attrs(html: str, name: str) -> list[str]:
    import re

    return re.findall(rf' {name}="([^"]*)"', html)


def _attr(html: str, name: str) -> str:
    return _attrs(html, name)[0]
