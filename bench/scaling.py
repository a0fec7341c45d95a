"""Benchmark 8: N components (1 / 5 / 20) through the macros vs the same tags written by hand.

The page (``bench/templates/kit_grid.html`` / ``hand_grid.html``) is a grid of
N dashboards in one Jinja loop, so the loop costs both sides the same. The
hand side is *given* the same token and every other value (CSRF token, scope,
URLs, nonce) as template variables, as in benchmark 2; the kit side computes
them, once per request (flask_toucan/page.py), then formats each component.
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
    if kit_html.count(given["dash"]["token"]) != n or "toucan-placeholder" in kit_html:
        raise AssertionError("the kit grid did not render every dashboard with its token")
    if EXPIRES.sub("", kit_html).strip() != EXPIRES.sub("", hand_html).strip():
        raise AssertionError("the hand-written grid differs from the kit's; the comparison is unfair")
    return given


def hand_fetching(toucan: Toucan, n: int, given: dict[str, Any]) -> Callable[[], str]:
    """The hand-written grid whose view gets its token and CSRF token through the public API per request."""

    def render() -> str:
        token = toucan.issue_token(kind="dashboard")
        dash = {**given["dash"], "token": token.value, "expires_in": f"{token.expires_in:.3f}"}
        values = {**given, "csrf": toucan.csrf_token(), "dash": dash}
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
    rows = []
    per = {n: paired_ratio(t[f"kit{n}"], t[f"hand{n}"]) for n in SIZES}
    fetch = {n: paired_ratio(t[f"kit{n}"], t[f"fetch{n}"]) for n in SIZES}
    extra_kit = (median(t["kit20"]) - median(t["kit1"])) / 19
    extra_hand = (median(t["hand20"]) - median(t["hand1"])) / 19
    for n in SIZES:
        target = TARGETS[n]
        rows.append(
            Row(
                key=f"8{'abc'[SIZES.index(n)]}",
                title=f"{n} component{'s' if n > 1 else ''} (dashboards) through the macros vs the same "
                "tags written by hand, given the same token (signed mode, token cached)",
                toucan=fmt_time(median(t[f"kit{n}"])) + " / render",
                baseline=fmt_time(median(t[f"hand{n}"])) + " / render",
                ratio=per[n],
                ratio_text=f"{per[n]:.2f}x",
                target=f"≤ {target:.2f}x" if target else "— (no target)",
                passed=per[n] <= target if target else True,
                notes=[
                    f"vs the same hand-written grid whose view fetches the token and the CSRF token "
                    f"per request (`issue_token(kind=...)` + `csrf_token()`, cache hits): "
                    f"{fmt_time(median(t[f'fetch{n}']))}, kit {fetch[n]:.2f}x of that"
                ]
                + (
                    [
                        f"each extra component: kit {fmt_time(extra_kit)}, by hand {fmt_time(extra_hand)} "
                        f"(from the 1- and 20-component medians); {settings.render_rounds} rounds x "
                        f"{settings.render_ops} renders per side, sides interleaved"
                    ]
                    if n == SIZES[-1]
                    else []
                ),
            )
        )
    return rows


def profile(settings: Settings, n: int = 2000) -> cProfile.Profile:
    app, toucan, environ = setup()
    check(app, toucan, environ, 20)
    timer = request_timer(app, environ, kit(20))
    prof = cProfile.Profile()
    prof.enable()
    timer(n)
    prof.disable()
    return prof
