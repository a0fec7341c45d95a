"""Escaping without exceptions: a ``Markup`` value gets no pass in any macro option.

``escape()`` trusts anything with ``__html__``; a host app that builds an
option value with ``Markup`` (or takes one from a library that does) must still
get plain, escaped attribute text or a :class:`ComponentOptionError`, never an
attribute it did not write. Each case is parsed with ``html.parser`` (the same
tokenizer rules as a browser for attributes) and, in Chromium, hovered.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import g, render_template_string, request
from markupsafe import Markup

from flask_toucan.components import ComponentOptionError

from .helpers import API_KEY, SECRET_KEY, make_host
from .test_macros import ALICE, IMPORT, Elements

PAYLOAD = 'x" onmouseover="window.__pwned=1" data-pwned="1'
#: Every attribute the kit may write, on a component or on the placeholder.
KIT_ATTRIBUTES = frozenset(
    {
        "id",
        "class",
        "aria-label",
        "dashboard-id",
        "chart-id",
        "refresh-interval",
        "auth-token",
        "server-url",
        "data-theme",
        "style",
        "data-toucan-kind",
        "data-toucan-scope",
        "data-toucan-expires-in",
        "data-toucan-refresh-url",
        "data-toucan-csrf",
        "data-toucan-session",
        "data-toucan-csrf-header",
        "data-toucan-activity-url",
        "data-toucan-activity-every",
        "data-toucan-placeholder",
        "role",
    }
)
#: Every option of every macro, as a call with the value ``v``.
CALLS = [
    "tc_dashboard(v)",
    "tc_dashboard(chart_id=v)",
    *(
        f'tc_dashboard("d", {o}=v)'
        for o in (
            "theme",
            "height",
            "server_url",
            "id",
            "class",
            "class_",
            "aria_label",
            "refresh_interval",
        )
    ),
    *(
        f"tc_ai_assistant({o}=v)"
        for o in ("theme", "height", "server_url", "id", "class", "class_", "aria_label")
    ),
]


def render(app: Any, source: str, *, user: dict[str, Any] | None, **ctx: Any) -> str:
    with app.test_request_context("/"):
        g.nonce = "n0nce"
        if user is not None:
            app.extensions["toucan"].manager.login_user(user)
        return render_template_string(IMPORT + source, **ctx)


def assert_no_injection(html: str, value: str) -> None:
    tags = Elements(html).tags
    assert len(tags) == 1, html  # no element smuggled in
    tag, attrs = tags[0]
    assert tag in ("tc-dashboard", "tc-ai-assistant", "div"), html
    assert set(attrs) <= KIT_ATTRIBUTES, sorted(set(attrs) - KIT_ATTRIBUTES)
    assert not any(name.startswith("on") for name in attrs)
    assert "data-pwned" not in attrs
    assert API_KEY not in html and SECRET_KEY not in html


@pytest.mark.parametrize("user", [ALICE | {"ai": True}, None], ids=["component", "placeholder"])
@pytest.mark.parametrize("call", CALLS)
def test_markup_in_every_option_is_escaped_or_refused(host, call, user):
    app, _ = host()
    for value in (Markup(PAYLOAD), Markup("<script>alert(1)</script>"), PAYLOAD):
        try:
            html = render(app, "{{ " + call + " }}", user=user, v=value)
        except ComponentOptionError:
            continue  # refused: nothing emitted
        assert_no_injection(html, str(value))
        if str(value) in html:
            pytest.fail(f"raw value emitted unescaped: {html}")


def test_markup_class_is_refused_and_plain_classes_pass(host):
    app, _ = host()
    with pytest.raises(ComponentOptionError, match="class"):
        render(app, '{{ tc_dashboard("d", class_=v) }}', user=ALICE, v=Markup(PAYLOAD))
    html = render(app, '{{ tc_dashboard("d", class_=v) }}', user=ALICE, v=Markup("wide -dark _x"))
    assert Elements(html).tags[0][1]["class"] == "wide -dark _x"
    html = render(app, '{{ tc_dashboard("d", class=v) }}', user=ALICE, v=["a", Markup("b c")])
    assert Elements(html).tags[0][1]["class"] == "a b c"
    for bad in ("1abc", "a<b", 'a"b', "é", ["ok", 'x"y'], ["a"] * 33, "a" * 65, 42, [1]):
        with pytest.raises(ComponentOptionError, match="class"):
            render(app, '{{ tc_dashboard("d", class=v) }}', user=ALICE, v=bad)


def test_id_is_an_html_id(host):
    app, _ = host()
    for good in ("dash", "_x", "a-b:c.d_1", "a" * 128):
        html = render(app, '{{ tc_dashboard("d", id=v) }}', user=None, v=Markup(good))
        assert Elements(html).tags[0][1]["id"] == good
    for bad in ("", "a b", "a\tb", "1abc", "a" * 129, 'x"y', "<x>", "é", Markup(PAYLOAD), True, [1]):
        with pytest.raises(ComponentOptionError, match="id"):
            render(app, '{{ tc_dashboard("d", id=v) }}', user=None, v=bad)


def test_server_url_never_crashes_on_bad_brackets(host):
    app, _ = host()
    for bad in ("http://[", "http://[::1", "http://a]b", Markup("http://[")):
        with pytest.raises(ComponentOptionError, match="server_url"):
            render(app, '{{ tc_dashboard("d", server_url=v) }}', user=ALICE, v=bad)


def test_toucan_scripts_takes_no_option_and_escapes_a_markup_nonce(host):
    app, toucan = host()
    with pytest.raises(TypeError):
        render(app, "{{ toucan_scripts(nonce=v) }}", user=None, v=Markup(PAYLOAD))
    toucan.csp_nonce_loader(lambda: Markup(PAYLOAD))
    html = render(app, "{{ toucan_scripts() }}", user=None)
    tags = Elements(html).tags
    assert [t for t, _ in tags] == ["script", "script"]
    for _, attrs in tags:
        assert set(attrs) == {"type", "src", "nonce"} and attrs["nonce"] == PAYLOAD


XSS_PAGE = """<!doctype html><html><head><meta charset="utf-8">
{% from "toucan/components.html" import toucan_scripts, tc_dashboard, tc_ai_assistant %}
{{ toucan_scripts() }}</head><body>{{ body }}</body></html>"""


def xss_host(sandbox: Any) -> Any:
    """The kit host without a CSP: an injected inline handler would run here."""
    app, _ = make_host(sandbox, KIT_TEST_CSP=False)

    @app.get("/xss")
    def xss() -> str:
        option = request.args["option"]
        source = IMPORT + "{{ " + CALLS[int(option)] + " }}"
        try:
            body = Markup(render_template_string(source, v=Markup(PAYLOAD)))
        except ComponentOptionError:
            body = Markup('<p id="refused">refused</p>')
        return render_template_string(XSS_PAGE, body=body)

    return app


@pytest.mark.browser
@pytest.mark.integration
def test_markup_payload_is_not_live_in_chromium(browser, toucan_sandbox, live_server):
    url = live_server(xss_host(toucan_sandbox)).url
    context = browser.new_context()
    try:
        page = context.new_page()
        for login in (False, True):
            if login:
                assert page.goto(f"{url}/_login/alice?org=acme&ai=1").ok
            for i in range(len(CALLS)):
                assert page.goto(f"{url}/xss?option={i}").ok
                # Every element of the body gets a mouseover, by the mouse and by script.
                for handle in page.query_selector_all("body *"):
                    if handle.is_visible():
                        handle.hover()
                fired = page.evaluate(
                    """() => {
                      for (const el of document.querySelectorAll('body *'))
                        el.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
                      return [window.__pwned === undefined,
                              document.querySelectorAll('[onmouseover], [data-pwned]').length];
                    }"""
                )
                assert fired == [True, 0], (CALLS[i], login, page.content())
    finally:
        context.close()
