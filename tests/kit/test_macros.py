"""Macro rendering: escaping, allow-list, placeholders, one token per permission set, CSP nonce."""

from __future__ import annotations

import logging
from html.parser import HTMLParser
from typing import Any

import itsdangerous.timed
import pytest
from flask import g, render_template_string

from flask_toucan.components import ComponentOptionError
from flask_toucan.test_client import ToucanTestClient
from tests.waiting import FakeClock

IMPORT = '{% from "toucan/components.html" import toucan_scripts, tc_dashboard, tc_ai_assistant %}'
HOSTILE = '" onmouseover="alert(1)" x=\'<script>alert(2)</script>&amp; &'
ALICE = {"sub": "alice", "iss": "https://idp.test", "org": "acme"}


class Elements(HTMLParser):
    """Every start tag with its attributes, as the browser's tokenizer would see them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def render(
    app: Any, source: str, *, user: dict[str, Any] | None = None, nonce: str | None = None, **ctx: Any
) -> str:
    with app.test_request_context("/"):
        if nonce is not None:
            g.nonce = nonce
        if user is not None:
            app.extensions["toucan"].manager.login_user(user)
        return render_template_string(IMPORT + source, **ctx)


@pytest.mark.parametrize(
    ("call", "attribute"),
    [
        ("tc_dashboard(v)", "dashboard-id"),
        ("tc_dashboard(chart_id=v)", "chart-id"),
        ('tc_dashboard("d", theme=v)', "data-theme"),
        ('tc_dashboard("d", aria_label=v)', "aria-label"),
        ("tc_ai_assistant(theme=v)", "data-theme"),
        ("tc_ai_assistant(aria_label=v)", "aria-label"),
    ],
)
def test_hostile_values_are_escaped(host, call, attribute):
    app, _ = host()
    html = render(app, "{{ " + call + " }}", user={**ALICE, "ai": True}, v=HOSTILE)
    tags = Elements(html).tags
    assert len(tags) == 1, html  # no <script> smuggled in, no extra element
    tag, attrs = tags[0]
    assert tag in ("tc-dashboard", "tc-ai-assistant")
    assert attrs[attribute] == HOSTILE  # round-trips exactly: escaped, not mangled
    assert "onmouseover" not in attrs and "<script>" not in html
    assert attrs["auth-token"]


def test_hostile_server_url_is_escaped_and_bad_schemes_refused(host):
    app, _ = host()
    url = 'http://127.0.0.1:9/"><script>alert(1)</script>&x=1'
    tags = Elements(render(app, '{{ tc_dashboard("d", server_url=v) }}', user=ALICE, v=url)).tags
    assert len(tags) == 1 and tags[0][1]["server-url"] == url
    for bad in ("javascript:alert(1)", "//evil.example", "http://user:pw@host/", 42):
        with pytest.raises(ComponentOptionError, match="server_url"):
            render(app, '{{ tc_dashboard("d", server_url=v) }}', user=ALICE, v=bad)


def test_hostile_values_are_escaped_in_the_placeholder(host):
    app, _ = host()
    html = render(app, '{{ tc_dashboard("d", id="d1", class="a b", theme=v) }}', v=HOSTILE)
    tags = Elements(html).tags
    assert [t for t, _ in tags] == ["div"]
    assert tags[0][1]["id"] == "d1" and tags[0][1]["data-theme"] == HOSTILE
    assert tags[0][1]["class"] == "toucan-placeholder a b"
    assert "<script>" not in html


@pytest.mark.parametrize(
    ("height", "style"),
    [
        (480, "height: 480px"),
        (12.5, "height: 12.5px"),
        ("30rem", "height: 30rem"),
        ("60vh", "height: 60vh"),
        ("100%", "height: 100%"),
    ],
)
def test_height(host, height, style):
    app, _ = host()
    tags = Elements(render(app, '{{ tc_dashboard("d", height=h) }}', user=ALICE, h=height)).tags
    assert tags[0][1]["style"] == style


@pytest.mark.parametrize(
    "height",
    ["1px; background: url(//evil)", "calc(100% - 1px)", "480", "-5px", 0, -1, True, "1e3px", HOSTILE, 1e9],
)
def test_bad_height_is_a_template_error(host, height):
    app, _ = host()
    with pytest.raises(ComponentOptionError, match="height"):
        render(app, '{{ tc_dashboard("d", height=h) }}', user=ALICE, h=height)


@pytest.mark.parametrize(
    "source",
    [
        '{{ tc_dashboard("d", onclick="x") }}',
        '{{ tc_dashboard("d", style="color:red") }}',
        '{{ tc_ai_assistant(chart_id="c") }}',
        '{{ tc_ai_assistant(auth_token="t") }}',
    ],
)
def test_unknown_option_is_a_clear_error(host, toucan_sandbox, source):
    app, _ = host()
    for user in (ALICE, None):  # checked before the login state matters
        with pytest.raises(ComponentOptionError, match="unknown option") as info:
            render(app, source, user=user)
        name = source.split(",")[-1].split("(")[-1].split("=")[0].strip()
        assert repr(name) in str(info.value)
    assert toucan_sandbox.stats.get("tokens_issued", 0) == 0


def test_dashboard_and_chart_id_are_exclusive(host):
    app, _ = host()
    for source in ("{{ tc_dashboard() }}", '{{ tc_dashboard("d", chart_id="c") }}'):
        with pytest.raises(ComponentOptionError, match="not both"):
            render(app, source, user=ALICE)


def test_placeholder_when_logged_out(host, toucan_sandbox):
    app, _ = host()
    html = render(app, '{{ tc_dashboard("d") }}{{ tc_ai_assistant() }}')
    tags = Elements(html).tags
    assert [t for t, _ in tags] == ["div", "div"]
    assert [a["data-toucan-placeholder"] for _, a in tags] == ["logged_out", "logged_out"]
    assert "tc-dashboard" not in html and "auth-token" not in html and "Log in" in html
    assert toucan_sandbox.stats.get("token_requests", 0) == 0


def test_placeholder_after_logout_with_an_old_cookie(host):
    app, _ = host()
    app.test_client_class = ToucanTestClient
    client = app.test_client(user=ALICE)
    assert "<tc-dashboard" in client.get("/page").text
    old = client.get_cookie("session").value
    client.logout()
    client.set_cookie("session", old)  # replay the pre-logout cookie
    page = client.get("/page").text
    assert "<tc-dashboard" not in page and 'data-toucan-placeholder="logged_out"' in page


def test_assistant_placeholder_without_ai_permission(host, toucan_sandbox):
    app, _ = host()
    html = render(app, "{{ tc_ai_assistant() }}", user=ALICE)
    assert Elements(html).tags[0][1]["data-toucan-placeholder"] == "not_permitted"
    assert "auth-token" not in html
    assert toucan_sandbox.stats.get("token_requests", 0) == 0
    html = render(app, "{{ tc_ai_assistant() }}", user={**ALICE, "ai": True})
    tag, attrs = Elements(html).tags[0]
    assert tag == "tc-ai-assistant" and attrs["data-toucan-kind"] == "assistant"
    assert toucan_sandbox.introspect(attrs["auth-token"])["permissions"] == {"ai": {"can_query": True}}


def test_mapping_failure_renders_a_placeholder_and_logs(host, toucan_sandbox, caplog):
    app, _ = host()
    caplog.set_level(logging.WARNING, "flask_toucan")
    html = render(app, '{{ tc_dashboard("d") }}', user={"sub": "bob", "iss": "https://idp.test"})  # no org
    assert Elements(html).tags[0][1]["data-toucan-placeholder"] == "no_attributes"
    assert "organization_id" in caplog.text
    assert toucan_sandbox.stats.get("token_requests", 0) == 0


def test_upstream_failure_renders_a_placeholder_not_a_500(host, toucan_sandbox, caplog):
    app, _ = host()
    app.test_client_class = ToucanTestClient
    toucan_sandbox.set_faults(fail_next=5)
    caplog.set_level(logging.WARNING, "flask_toucan")
    resp = app.test_client(user=ALICE).get("/page")
    assert resp.status_code == 200
    assert resp.text.count('data-toucan-placeholder="unavailable"') == 2
    assert "auth-token" not in resp.text
    assert toucan_sandbox.api_key not in resp.text + caplog.text


def test_one_token_per_permission_set_per_request(host, toucan_sandbox):
    app, _ = host()
    source = (
        '{{ tc_dashboard("sales-overview") }}{{ tc_dashboard("regional-performance") }}'
        '{{ tc_dashboard(chart_id="revenue-by-month") }}{{ tc_ai_assistant() }}{{ tc_ai_assistant() }}'
    )
    tags = Elements(render(app, source, user={**ALICE, "ai": True})).tags
    tokens = [a["auth-token"] for _, a in tags]
    assert len(set(tokens[:3])) == 1 and len(set(tokens[3:])) == 1 and tokens[0] != tokens[3]
    assert len({a["data-toucan-scope"] for _, a in tags[:3]}) == 1  # one refresh group
    assert toucan_sandbox.stats["tokens_issued"] == 2  # dashboard view; ai.can_query
    assert toucan_sandbox.introspect(tokens[0])["attributes"]["organization_id"] == "acme"


def test_kit_attributes(host, toucan_sandbox):
    from flask_toucan import csrf

    app, _ = host()
    with app.test_request_context("/"):
        app.extensions["toucan"].manager.login_user(ALICE)
        from flask import session

        sid = session["_toucan_sid"]
        html = render_template_string(IMPORT + '{{ tc_dashboard("sales-overview", theme="dark") }}')
    tag, attrs = Elements(html).tags[0]
    assert tag == "tc-dashboard"
    assert attrs["dashboard-id"] == "sales-overview" and attrs["data-theme"] == "dark"
    assert attrs["server-url"] == toucan_sandbox.url + "/api"  # the API root, as Toucan documents it
    assert attrs["data-toucan-kind"] == "dashboard"
    assert attrs["data-toucan-refresh-url"] == "/toucan/token"
    assert attrs["data-toucan-csrf-header"] == "X-Toucan-CSRF"
    assert csrf.check_token(app, attrs["data-toucan-csrf"], sid, 3600)
    assert 3000 < float(attrs["data-toucan-expires-in"]) <= 3600
    assert toucan_sandbox.api_key not in html


def test_scripts_carry_the_csp_nonce_and_nothing_inline(host, toucan_sandbox):
    app, _ = host()
    html = render(app, "{{ toucan_scripts() }}", nonce="n0nce-123")
    tags = Elements(html).tags
    assert [t for t, _ in tags] == ["script", "script"]
    assert [a["src"] for _, a in tags] == [
        f"{toucan_sandbox.url}/embed/embed.js",
        "/toucan/static/toucan-refresh.js",
    ]
    for _, attrs in tags:
        assert attrs["nonce"] == "n0nce-123" and attrs["type"] == "module"
    assert "></script>" in html and html.count("<script") == 2
    assert all(p.strip().startswith("<script") or not p.strip() for p in html.split("</script>"))


def test_no_nonce_attribute_without_a_nonce(host):
    app, _ = host()
    html = render(app, "{{ toucan_scripts() }}")
    assert "nonce" not in html


def test_refresh_script_is_served(host):
    app, _ = host()
    resp = app.test_client().get("/toucan/static/toucan-refresh.js")
    assert resp.status_code == 200 and "javascript" in resp.content_type
    assert "performance.now()" in resp.text


def test_pages_of_one_session_share_a_session_tag(host, monkeypatch):
    app, _ = host()
    app.test_client_class = ToucanTestClient
    alice = app.test_client(user=ALICE)
    # The CSRF token is timestamped to the second: move itsdangerous's clock one
    # second so the later page gets another string (no sleeping).
    clock = FakeClock().install(monkeypatch, itsdangerous.timed)
    first = Elements(alice.get("/page").text).tags
    clock.advance(1)
    second = Elements(alice.get("/page").text).tags
    other = Elements(app.test_client(user={**ALICE, "sub": "bob"}).get("/page").text).tags
    tag = [a for t, a in first + second + other if t == "tc-dashboard"]
    assert tag[0]["data-toucan-csrf"] != tag[2]["data-toucan-csrf"]
    assert tag[0]["data-toucan-session"] == tag[2]["data-toucan-session"] != tag[4]["data-toucan-session"]
