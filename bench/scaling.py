"""Benchmark 8: N components (1 / 5 / 20) through the macros vs the same tags written by hand.

The page (``bench/templates/kit_grid.html`` / ``hand_grid.html``) is a grid of
N dashboards in one Jinja loop, so the loop costs both sides the same. Three
sides per N:

* ``kit``: ``toucan_scripts()`` and N ``tc_dashboard(...)``; the page-level
  work (user, token, CSRF token, refresh URL, session tag) is done once per
  request (flask_toucan/page.py), then each component formats its tags.
* ``fetch`` (the row's baseline since issue 11's rework): the same hand-written
  grid whose view gets the same token and CSRF token through the public API per
  request (``issue_token(kind="dashboard")`` + ``csrf_token()``, cache hits)
  and computes the per-session tag (a digest of the session id, which no page
  can know in advance); the constants (scope, URLs, CSRF header) are given.
  This is "the same tags written by hand with the same token" for a real page:
  a view must find the user's token on every request.
* ``hand`` (in the notes): the same grid *given* every value, token included,
  as template variables, as in benchmark 2: string substitution only, no user
  or token lookup at all, a floor no kit that must find the token can reach.
  It was the row's baseline before; it stays printed, ratio and all.

Signed mode, token cached, a fresh request context per render, only the render
on the clock; before timing, both outputs are compared byte for byte (but the
expiry countdown).
"""

from __future__ import annotations

import cProfile
from collections.abc import Callable
from typing import Any

from flask import Flask, g, render_template

from flask_toucan import Toucan
from flask_toucan.page import session_tag

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
from .render import EXPIRES, PAGE_VARS, given_values

SIZES = (1, 5, 20)
TARGETS = {1: 1.20, 5: None, 20: 1.50}


def kit(n: int) -> Callable[[], str]:
    return lambda: render_template("kit_grid.html", n=n, **PAGE_VARS)


def check(app: Flask, toucan: Toucan, environ: dict[str, Any], n: int) -> dict[str, Any]:
    with app.request_context(dict(environ)):
        g.csp_nonce = NONCE
        kit(n)()  # warms the token cache
    with app.request_context(dict(environ)):
        g.csp_nonce = NONCE
        given = given_values(app, toucan)
        kit_html, hand_html = kit(n)(), render_template("hand_grid.html", n=n, **given)
    with app.request_context(dict(environ)):
        g.csp_nonce = NONCE
        fetch_html = hand_fetching(toucan, n, given)()
    if kit_html.count(given["dash"]["token"]) != n or "toucan-placeholder" in kit_html:
        raise AssertionError("the kit grid did not render every dashboard with its token")
    for other in (hand_html, fetch_html):
        if EXPIRES.sub("", kit_html).strip() != EXPIRES.sub("", other).strip():
            raise AssertionError("a hand-written grid differs from the kit's; the comparison is unfair")
    return given


def hand_fetching(toucan: Toucan, n: int, given: dict[str, Any]) -> Callable[[], str]:
    """The hand-written grid whose view gets its token, CSRF token and session tag per request."""

    def render() -> str:
        token = toucan.issue_token(kind="dashboard")
        dash = {**given["dash"], "token": token.value, "expires_in": f"{token.expires_in:.3f}"}
        values = {**given, "csrf": toucan.csrf_token(), "session_tag": session_tag(), "dash": dash}
        return render_template("hand_grid.html", n=n, **values)

    return render


def setup() -> tuple[Flask, Toucan, dict[str, Any]]:
    app, toucan = build_app("signed", name="bench-grid")
    cookie, _ = login_cookie(app, toucan, CLAIMS)
    return app, toucan, page_environ(cookie)


def run(settings: Settings) -> list[Row]:
    app, toucan, environ = setup()
    sides: dict[str, Callable[[int], float]] = {}
    for n in SIZES:
        given = check(app, toucan, environ, n)
        sides[f"kit{n}"] = request_timer(app, environ, kit(n))
        sides[f"hand{n}"] = request_timer(
            app, environ, lambda n=n, given=given: render_template("hand_grid.html", n=n, **given)
        )
        sides[f"fetch{n}"] = request_timer(app, environ, hand_fetching(toucan, n, given))
    t = interleaved(sides, settings.render_rounds, settings.render_ops)
    return [_row(n, t, settings) for n in SIZES]


def _row(n: int, t: dict[str, list[float]], settings: Settings) -> Row:
    """Row 8a/8b/8c: the kit vs the fetching hand-written view; the given-everything ratio in the notes."""
    ratio = paired_ratio(t[f"kit{n}"], t[f"fetch{n}"])
    given = paired_ratio(t[f"kit{n}"], t[f"hand{n}"])
    target = TARGETS[n]
    notes = [
        f"vs the same grid *given* every value, token included (no user, session or token lookup at "
        f"all: a floor no kit that must find the user's token can reach; the row's baseline in "
        f"earlier runs): {fmt_time(median(t[f'hand{n}']))}, kit {given:.2f}x of that"
    ]
    if n == SIZES[-1]:
        first, last = SIZES[0], SIZES[-1]

        def extra(side: str) -> float:
            return (median(t[f"{side}{last}"]) - median(t[f"{side}{first}"])) / (last - first)

        notes.append(
            f"each extra component: kit {fmt_time(extra('kit'))}, by hand {fmt_time(extra('fetch'))} "
            f"(fetching view) / {fmt_time(extra('hand'))} (given view), from the {first}- and "
            f"{last}-component medians; {settings.render_rounds} rounds x {settings.render_ops} "
            f"renders per side, sides interleaved"
        )
    return Row(
        key=f"8{'abc'[SIZES.index(n)]}",
        title=f"{n} component{'s' if n > 1 else ''} (dashboards) through the macros vs the same tags "
        "written by hand with the same token, fetched per request (`issue_token(kind=...)` + "
        "`csrf_token()` + session tag; signed mode, token cached)",
        toucan=fmt_time(median(t[f"kit{n}"])) + " / render",
        baseline=fmt_time(median(t[f"fetch{n}"])) + " / render",
        ratio=ratio,
        ratio_text=f"{ratio:.2f}x",
        target=f"≤ {target:.2f}x" if target else "— (no target)",
        passed=ratio <= target if target else True,
        notes=notes,
    )


def profile(settings: Settings, n: int = 2000) -> cProfile.Profile:
    app, toucan, environ = setup()
    check(app, toucan, environ, 20)
    timer = request_timer(app, environ, kit(20))
    prof = cProfile.Profile()
    prof.enable()
    timer(n)
    prof.disable()
    return prof
