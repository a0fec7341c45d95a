"""What the kit keeps across requests (flask_toucan/page.py ``Site``) and what it must not.

The script tags, the refresh URL, the CSRF header name and the server URL are
escaped once per app and mount point (``SCRIPT_NAME``) and reused; the nonce,
the CSRF token, the session tag, the token and the user are per request, and
the session record is read from the store on every page.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, g, render_template_string, session

from flask_toucan import Toucan, csrf
from flask_toucan.state import SESSION_ID

from .test_page import ALICE, BOB, IMPORT, make_app

PAGE = (
    '{% from "toucan/components.html" import toucan_scripts, tc_dashboard %}'
    '{{ toucan_scripts() }}{{ tc_dashboard("d") }}'
)


def _attrs(html: str, name: str) -> list[str]:
    return re.findall(rf' {name}="([^"]*)"', html)


def _render(app: Flask, toucan: Toucan, claims: Any, *, root: str = "", nonce: str | None = None) -> str:
    with app.test_request_context("/page", base_url=f"http://host.test{root}"):  # root: SCRIPT_NAME
        if nonce is not None:
            g.csp_nonce = nonce
        toucan.login_user(claims)
        return render_template_string(PAGE)


def test_script_tags_and_refresh_url_follow_the_mount_point():
    app, toucan = make_app("signed")
    for root in ("/a", "", "/b/c", "/a"):  # "/a" again: served from the per-mount-point cache
        html = _render(app, toucan, ALICE, root=root)
        assert _attrs(html, "src") == [
            "https://toucan.test/embed/embed.js",
            f"{root}/toucan/static/toucan-refresh.js",
        ]
        assert _attrs(html, "data-toucan-refresh-url") == [f"{root}/toucan/token"]
    assert set(app.extensions["toucan.page_site"]) == {"/a", "", "/b/c"}


def test_the_nonce_is_taken_and_escaped_on_every_request():
    app, toucan = make_app("signed")
    first = _render(app, toucan, ALICE, nonce="n0nce-one")
    second = _render(app, toucan, ALICE, nonce='n0nce"two<')
    none = _render(app, toucan, ALICE)
    assert _attrs(first, "nonce") == ["n0nce-one", "n0nce-one"]
    assert _attrs(second, "nonce") == ["n0nce&#34;two&lt;", "n0nce&#34;two&lt;"]
    assert "nonce" not in none and none.count("<script") == 2


def test_two_apps_in_one_process_keep_their_own_urls():
    one, toucan_one = make_app("signed")
    two, toucan_two = make_app(
        "signed", TOUCAN_BASE_URL="https://other.test", TOUCAN_CSRF_HEADER="X-Other-CSRF"
    )
    for _ in range(2):  # interleaved, twice: the second round comes from each app's cache
        html_one = _render(one, toucan_one, ALICE, root="/x")
        html_two = _render(two, toucan_two, ALICE, root="/x")
        assert _attrs(html_one, "src")[0] == "https://toucan.test/embed/embed.js"
        assert _attrs(html_two, "src")[0] == "https://other.test/embed/embed.js"
        assert _attrs(html_one, "server-url") == ["https://toucan.test/api"]
        assert _attrs(html_two, "server-url") == ["https://other.test/api"]
        assert _attrs(html_one, "data-toucan-csrf-header") == ["X-Toucan-CSRF"]
        assert _attrs(html_two, "data-toucan-csrf-header") == ["X-Other-CSRF"]


def test_nothing_per_user_session_or_request_is_kept_across_requests():
    app, toucan = make_app("signed")
    seen: list[str] = []
    for claims, nonce in ((ALICE, "nonce-alice-1"), (BOB, "nonce-bob-2")):
        with app.test_request_context("/page"):
            g.csp_nonce = nonce
            toucan.login_user(claims)
            html = render_template_string(PAGE)
            seen += [nonce, session[SESSION_ID], *_attrs(html, "data-toucan-csrf")]
            seen += [*_attrs(html, "data-toucan-session"), *_attrs(html, "auth-token")]
    kept = repr(app.extensions["toucan.page_site"])
    assert all(value and value not in kept for value in seen)


def test_a_session_closed_elsewhere_ends_the_next_page_at_once():
    """Another worker's logout closes the record in the shared store: no per-process copy hides it."""
    app, toucan = make_app("signed")
    client = app.test_client()

    @app.get("/login")
    def login() -> str:
        toucan.login_user(ALICE)
        return "ok"

    @app.get("/page")
    def page() -> str:
        return render_template_string(PAGE)

    client.get("/login")
    assert "<tc-dashboard" in client.get("/page").text
    assert "<tc-dashboard" in client.get("/page").text  # warm: site, CSRF reuse, token cache
    with client.session_transaction() as sess:
        sid = sess[SESSION_ID]
    state = app.extensions["toucan"]
    state.sessions.close(sid)  # what logout_user does, from "another worker"
    html = client.get("/page").text
    assert "<tc-dashboard" not in html and 'data-toucan-placeholder="logged_out"' in html


def test_a_component_token_is_the_one_issue_token_gives_in_the_same_request():
    app, toucan = make_app("signed")
    with app.test_request_context("/page"):
        toucan.login_user(ALICE)
        html = render_template_string(IMPORT + '{{ tc_dashboard("d") }}{{ tc_ai_assistant() }}')
        assert _attrs(html, "auth-token") == [
            toucan.issue_token(kind="dashboard").value,
            toucan.issue_token(kind="assistant").value,
        ]
        assert _attrs(html, "data-toucan-csrf") == [toucan.csrf_token()] * 2
        assert csrf.check_token(app, toucan.csrf_token(), session[SESSION_ID], 3600)
