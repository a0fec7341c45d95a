"""The kit template's import line and the kit's entry points (flask_toucan/components.py).

``{% from "toucan/components.html" import ... %}`` stays exactly as documented;
after the first render the kit template carries :class:`_KitGlobals` (the same
globals as Jinja's ``ChainMap``, with a C-level ``keys()``), so Jinja's per-import
check is cheap and the import resolves from the module Jinja cached. Nothing
about the user or the request is kept by it; the nonce is still read per request.
"""

from __future__ import annotations

from collections import ChainMap

from flask import g, render_template_string, request

from flask_toucan.components import KIT_TEMPLATE, ComponentKit, _KitGlobals

from .test_page import ALICE, BOB, make_app

PAGE = (
    '{% from "toucan/components.html" import toucan_scripts, tc_dashboard %}'
    '{{ toucan_scripts() }}{{ tc_dashboard("d") }}'
)


def _render(app, toucan, claims, source=PAGE, **context):
    with app.test_request_context("/page"):
        toucan.login_user(claims)
        return render_template_string(source, **context)


def test_after_a_render_the_kit_template_has_the_cheap_globals():
    app, toucan = make_app("signed")
    template = app.jinja_env.get_template(KIT_TEMPLATE)
    assert type(template.globals) is ChainMap
    _render(app, toucan, ALICE)
    assert type(template.globals) is _KitGlobals
    # The same mapping: the template's own globals over the environment's (live).
    assert template.globals.maps[-1] is app.jinja_env.globals
    assert set(template.globals.keys()) == set(ChainMap(*template.globals.maps))


def test_the_import_resolves_from_the_module_jinja_cached():
    app, toucan = make_app("signed")
    _render(app, toucan, ALICE)
    template = app.jinja_env.get_template(KIT_TEMPLATE)
    page = app.jinja_env.from_string(PAGE)
    with app.test_request_context("/page"):
        ctx = page.new_context({})
        assert not ctx.globals_keys - template.globals.keys()
        assert template._get_default_module(ctx) is template.module


def test_globals_added_later_are_seen_and_rendered():
    app, toucan = make_app("signed")
    _render(app, toucan, ALICE)
    app.jinja_env.globals["site_title"] = "Acme <analytics>"
    template = app.jinja_env.get_template(KIT_TEMPLATE)
    assert "site_title" in template.globals.keys()
    html = _render(app, toucan, ALICE, PAGE + "{{ site_title }}")
    assert html.endswith("Acme &lt;analytics&gt;") and "<tc-dashboard" in html


def test_a_template_with_globals_of_its_own_still_imports_the_kit():
    # Jinja makes a fresh module for an importer with globals the kit lacks: still the same output.
    app, toucan = make_app("signed")
    _render(app, toucan, ALICE)
    own = app.jinja_env.from_string(PAGE + "{{ extra }}", globals={"extra": "!"})
    with app.test_request_context("/page"):
        toucan.login_user(BOB)
        html = own.render()
    assert html.count("<tc-dashboard") == 1 and html.endswith("!")


def test_the_entry_points_are_plain_functions_that_work_on_any_kit():
    app, toucan = make_app("signed")
    kit = app.jinja_env.globals["_toucan_kit"]
    assert kit.dashboard is ComponentKit.dashboard  # static: Jinja's Context.call inspects less
    with app.test_request_context("/page"):
        toucan.login_user(ALICE)
        html = str(ComponentKit().dashboard("d"))
    assert html.startswith('<tc-dashboard dashboard-id="d" auth-token="')


def test_a_nonce_on_the_request_object_is_used_and_read_per_request():
    # Flask-Talisman puts it on the request; the kit reads it from the page's own request object.
    app, toucan = make_app("signed")
    for nonce in ("req-nonce-1", "req-nonce-2"):
        with app.test_request_context("/page"):
            request.csp_nonce = nonce
            g.csp_nonce = "ignored-when-the-request-has-one"
            toucan.login_user(ALICE)
            html = render_template_string(PAGE)
        assert html.count(f'nonce="{nonce}"') == 2
