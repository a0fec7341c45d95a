"""Benchmark 2: a page with two components through the macros vs a hand-written template.

All sides render the same page (a small portal page: head, nav, a dashboard
and the AI assistant) from compiled, cached templates with ``render_template``,
each render in a fresh request context of a logged-in user (nothing memoised
on ``g`` carries over). Only the render is on the clock.

* ``kit``: ``toucan_scripts()``, ``tc_dashboard(...)``, ``tc_ai_assistant(...)``.
  Tokens are already in the token cache (minted before timing), so the kit
  pays what it pays on every page view: load the user, check permissions, look
  the token up (mappers, cache key, cache hit), CSRF token, scope, escaping.
* ``hand_fetch`` (the row's baseline since issue 11's rework): the same markup
  written out in the template, whose view gets the same two tokens and the
  CSRF token through the public API per request (``issue_token(kind=...)`` x2
  + ``csrf_token()``, cache hits) and computes the per-session tag (a digest
  of the session id, unknowable in advance); the constants (scopes, URLs, CSRF
  header) are given. What an integration without the kit does per page view:
  "the same tags written by hand with the same token".
* ``hand`` (in the notes; the baseline before): the same markup *given* the
  same tokens and every other value as template variables: string
  substitution only, no user or token lookup at all, a floor no kit that must
  find the user's token can reach.

Before timing, the outputs are rendered in one request and compared: they
are byte-identical except for the ``data-toucan-expires-in`` countdown.

``render_template_string`` is not used on purpose: it compiles its source on
every call (Jinja does not cache ``from_string``), which would add the same
large constant to both sides and flatter the ratio.
"""

from __future__ import annotations

import cProfile
import re
from collections.abc import Callable
from typing import Any

from flask import Flask, g, render_template, url_for

from flask_toucan import Toucan
from flask_toucan.components import _scope, _session_tag
from flask_toucan.mappers import permissions_for_kind

from .common import (
    CLAIMS,
    NONCE,
    Row,
    Settings,
    build_app,
    fmt_time,
    interleaved,
    login_cookie,
    median,
    page_environ,
    paired_ratio,
    request_timer,
)

TARGET = 1.20
PAGE_VARS = {"user_name": "Alice Martin", "org_name": "Acme Corporation"}
EXPIRES = re.compile(r'data-toucan-expires-in="[0-9.]+"')


def given_values(app: Flask, toucan: Toucan) -> dict[str, Any]:
    """What the hand-written template is handed: the same tokens and strings the kit emits.

    Call inside a request context of the logged-in user, after the tokens are cached.
    """
    state = app.extensions["toucan"]
    user = toucan.current_user
    assert user is not None
    granted = toucan.mappers.map_permissions(user)
    out: dict[str, Any] = {
        **PAGE_VARS,
        "nonce": NONCE,
        "embed_script": state.config.embed_script_url,
        "refresh_script": url_for("toucan.static", filename="toucan-refresh.js"),
        "server_url": state.config.server_url,
        "refresh_url": url_for("toucan.token"),
        "csrf": toucan.csrf_token(),
        "csrf_header": state.config.csrf_header,
        "session_tag": _session_tag(),
        # The refresh script's activity ping (idle timeout on by default).
        "activity_url": url_for("toucan.activity"),
        "activity_every": f"{state.sessions.policy.activity_step:g}",
    }
    for name, kind in (("dash", "dashboard"), ("ai", "assistant")):
        token = toucan.issue_token(kind=kind)
        out[name] = {
            "token": token.value,
            "scope": _scope(permissions_for_kind(granted, kind)),
            "expires_in": f"{token.expires_in:.3f}",
        }
    return out


def kit_render() -> str:
    return render_template("kit_page.html", **PAGE_VARS)


def prepare(app: Flask, toucan: Toucan, cookie: str) -> dict[str, Any]:
    """Warm the token cache, build the hand side's values, check both pages match."""
    environ = page_environ(cookie)
    with app.request_context(dict(environ)):
        g.csp_nonce = NONCE
        kit_render()  # mints (or fetches) both tokens into the cache
    with app.request_context(dict(environ)):
        g.csp_nonce = NONCE
        given = given_values(app, toucan)
        kit_html = kit_render()
        hand_html = render_template("hand_page.html", **given)
    with app.request_context(dict(environ)):
        g.csp_nonce = NONCE
        fetch_html = hand_fetching(toucan, given)()
    if "toucan-placeholder" in kit_html or kit_html.count(given["dash"]["token"]) != 1:
        raise AssertionError("the kit page did not render the dashboard with its token")
    for other in (hand_html, fetch_html):
        if EXPIRES.sub("", kit_html).strip() != EXPIRES.sub("", other).strip():
            raise AssertionError(
                "a hand-written page differs from the kit's output; the comparison is unfair"
            )
    return {"environ": environ, "given": given, "bytes": len(kit_html.encode())}


def hand_fetching(toucan: Toucan, given: dict[str, Any]) -> Callable[[], str]:
    """The hand-written page whose view gets its tokens, CSRF token and session tag per request."""

    def render() -> str:
        # What a hand-written integration does per page view without the kit:
        # ask the public API for the two tokens (cache hits) and the CSRF token;
        # the session tag depends on the session, so it is computed too.
        dash, ai = toucan.issue_token(kind="dashboard"), toucan.issue_token(kind="assistant")
        values = {
            **given,
            "csrf": toucan.csrf_token(),
            "session_tag": _session_tag(),
            "dash": {**given["dash"], "token": dash.value, "expires_in": f"{dash.expires_in:.3f}"},
            "ai": {**given["ai"], "token": ai.value, "expires_in": f"{ai.expires_in:.3f}"},
        }
        return render_template("hand_page.html", **values)

    return render


def sides(app: Flask, toucan: Toucan, prepared: dict[str, Any]) -> dict[str, Callable[[int], float]]:
    environ, given = prepared["environ"], prepared["given"]
    return {
        "kit": request_timer(app, environ, kit_render),
        "hand": request_timer(app, environ, lambda: render_template("hand_page.html", **given)),
        "hand_fetch": request_timer(app, environ, hand_fetching(toucan, given)),
    }


def wsgi_sides(app: Flask, prepared: dict[str, Any]) -> dict[str, Callable[[int], float]]:
    """Whole requests through the WSGI app (no server): routing, session, render, response."""
    given = prepared["given"]

    @app.get("/kit")
    def kit_view() -> str:
        g.csp_nonce = NONCE
        return kit_render()

    @app.get("/hand")
    def hand_view() -> str:
        return render_template("hand_page.html", **given)

    def timer(path: str) -> Callable[[int], float]:
        from time import perf_counter

        base = dict(prepared["environ"])
        base["PATH_INFO"] = path

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            if not status.startswith("200"):
                raise AssertionError(f"{path} answered {status}")

        def run(n: int) -> float:
            t0 = perf_counter()
            for _ in range(n):
                body = app(dict(base), start_response)
                b"".join(body)
                getattr(body, "close", lambda: None)()
            return perf_counter() - t0

        return run

    return {"kit": timer("/kit"), "hand": timer("/hand")}


def setup() -> tuple[Flask, Toucan, dict[str, Any]]:
    app, toucan = build_app("signed", name="bench-render")
    cookie, _ = login_cookie(app, toucan, CLAIMS)
    return app, toucan, prepare(app, toucan, cookie)


def run(settings: Settings) -> list[Row]:
    app, toucan, prepared = setup()
    t = interleaved(sides(app, toucan, prepared), settings.render_rounds, settings.render_ops)
    ratio = paired_ratio(t["kit"], t["hand_fetch"])
    given_ratio = paired_ratio(t["kit"], t["hand"])
    w = interleaved(wsgi_sides(app, prepared), max(5, settings.render_rounds // 3), settings.render_ops // 2)
    wsgi_ratio = paired_ratio(w["kit"], w["hand"])
    row = Row(
        key="2",
        title="page with two components (dashboard + assistant) through the macros vs the same markup "
        "written by hand with the same tokens, fetched per request (`issue_token(kind=...)` x2 + "
        "`csrf_token()` + session tag; signed mode, tokens cached)",
        toucan=fmt_time(median(t["kit"])) + " / render",
        baseline=fmt_time(median(t["hand_fetch"])) + " / render",
        ratio=ratio,
        ratio_text=f"{ratio:.2f}x",
        target=f"≤ {TARGET:.2f}x",
        passed=ratio <= TARGET,
        notes=[
            f"vs the same hand-written page *given* the tokens and every other value (no user, "
            f"session or token lookup at all: a floor no kit that must find the user's tokens can "
            f"reach; the row's baseline in earlier runs): {fmt_time(median(t['hand']))}, kit "
            f"{given_ratio:.2f}x of that",
            f"whole request through the WSGI app (routing, session cookie, render, response), kit page "
            f"vs the given hand page: {fmt_time(median(w['kit']))} vs {fmt_time(median(w['hand']))}, "
            f"{wsgi_ratio:.2f}x",
            f"outputs byte-identical but for the expiry countdown; page {prepared['bytes']} bytes; "
            f"{settings.render_rounds} rounds x {settings.render_ops} renders per side",
        ],
    )
    return [row]


def profile(settings: Settings, n: int = 3000) -> cProfile.Profile:
    app, toucan, prepared = setup()
    kit = sides(app, toucan, prepared)["kit"]
    prof = cProfile.Profile()
    prof.enable()
    kit(n)
    prof.disable()
    return prof
