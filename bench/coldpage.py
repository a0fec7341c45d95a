"""Benchmark 10: a cold page with a dashboard and an assistant vs one upstream round trip.

A counting upstream (:mod:`bench.upstream`) answers the token API and the
classic exchange after 50 ms. Two sides, interleaved:

* ``page``: the page of benchmark 2 (``kit_page.html``: a dashboard and the
  assistant, two permission sets, so two tokens) rendered for a user whose
  tokens are not cached yet (a new user every render, logged in before the
  clock starts). The page declares nothing: the kit learned the endpoint's
  two kinds on the warm-up renders and mints both at once on the first one.
* ``one``: one upstream round trip through the same minter (``minter.mint``
  for one permission set: request building, the HTTP call, parsing), the
  least a page needing a token can cost.

10a is ``api`` mode (the token API), 10b the classic profile (sign an
assertion, exchange it). The upstream's recorded call times give the share of
pages whose two calls overlapped.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, g, render_template

from flask_toucan import Toucan
from flask_toucan.issuing import mint_request
from flask_toucan.mappers import permissions_for_kind

from .common import NONCE, Row, Settings, build_app, claims_for, fmt_time, interleaved, median, paired_ratio
from .render import PAGE_VARS
from .upstream import CountingUpstream

LATENCY = 0.05
TARGET = 1.20
_users = itertools.count(1000)


def app_for(mode: str, upstream: CountingUpstream) -> tuple[Flask, Toucan]:
    if mode == "api":
        return build_app("api", name="bench-cold-api", base_url=upstream.url, api_key="tk_bench_key")
    return build_app(
        "signed",
        name="bench-cold-classic",
        TOUCAN_EXCHANGE_URL=upstream.url + "/exchange",
        TOUCAN_EXCHANGE_CLIENT_SECRET="bench-exchange-secret",
    )


def sides(app: Flask, toucan: Toucan, upstream: CountingUpstream, pairs: list[bool]) -> dict[str, Any]:
    def page(n: int) -> float:
        total = 0.0
        for _ in range(n):
            with app.test_request_context("/page"):
                toucan.login_user(claims_for(next(_users)))
                g.csp_nonce = NONCE
                upstream.reset()
                t0 = time.perf_counter()
                html = render_template("kit_page.html", **PAGE_VARS)
                total += time.perf_counter() - t0
                if "toucan-placeholder" in html or len(upstream.calls) != 2:
                    raise AssertionError(f"cold page: {len(upstream.calls)} upstream calls or a placeholder")
                pairs.append(upstream.overlapping())
        return total

    def one(n: int) -> float:
        total = 0.0
        state = app.extensions["toucan"]
        for _ in range(n):
            with app.test_request_context("/"):
                user = toucan.login_user(claims_for(next(_users)))
                perms = permissions_for_kind(state.mappers.map_permissions(user), "dashboard")
                req = mint_request(user, perms)
                t0 = time.perf_counter()
                state.service.minter.mint(req)
                total += time.perf_counter() - t0
        return total

    return {"page": page, "one": one}


def run(settings: Settings) -> list[Row]:
    rounds, ops = (3, 2) if settings.quick else (15, 4)
    rows = []
    for key, mode, title in (
        ("10a", "api", "cold page, dashboard + assistant (two tokens), `api` mode"),
        ("10b", "classic", "cold page, dashboard + assistant (two tokens), classic exchange"),
    ):
        with CountingUpstream(latency=LATENCY) as upstream:
            app, toucan = app_for(mode, upstream)
            pairs: list[bool] = []
            timers: dict[str, Callable[[int], float]] = sides(app, toucan, upstream, pairs)
            t = interleaved(timers, rounds, ops)
        ratio = paired_ratio(t["page"], t["one"])
        measured = pairs[-rounds * ops :]
        rows.append(
            Row(
                key=key,
                title=f"{title}, vs one upstream round trip; upstream answers after {LATENCY * 1e3:.0f} ms",
                toucan=fmt_time(median(t["page"])) + " / cold page",
                baseline=fmt_time(median(t["one"])) + " / round trip",
                ratio=ratio,
                ratio_text=f"{ratio:.2f}x",
                target=f"≤ {TARGET:.2f}x",
                passed=ratio <= TARGET,
                notes=[
                    f"2 upstream calls per cold page, overlapping in {sum(measured)} of {len(measured)} "
                    f"timed pages (call times recorded at the upstream); {rounds} rounds x {ops} per side; "
                    "the page declares nothing (kinds learned on the warm-up renders)"
                ],
            )
        )
    return rows
