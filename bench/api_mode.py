"""Benchmark 4: ``api`` mode against the sandbox injecting 50 ms of upstream latency.

4a. Cached page render in ``api`` mode vs the same page in ``signed`` mode.
    The page of benchmark 2 (dashboard + assistant), same user, same
    harness (fresh request context per render, only the render timed). Both
    apps run as deployed, with their token cache: after the first page view,
    neither calls anything per render. The sandbox's counter is read before
    and after the timed rounds to prove the ``api`` side made no upstream call
    while timed (so the 50 ms never lands in a measured render).

4b. Upstream token API calls for 100 concurrent renders of one user, on a
    cold cache: 100 threads of one process wait on a barrier, then each
    renders a page for the same user in its own request context. The page has
    two components that share one permission set (a dashboard and a chart:
    one token), so the single-flight target is exactly 1 call. (A page with a
    dashboard *and* the assistant needs two tokens, one per permission set;
    that is a second, separate single flight.) Single flight is per process:
    with several workers a cold burst costs up to one call per worker.
"""

from __future__ import annotations

import cProfile
import logging
import threading
from typing import Any

from flask import g, render_template

from flask_toucan.sandbox import SandboxServer

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
)
from .render import prepare, sides

TARGET = 1.20
LATENCY_MS = 50


def _api_app(sandbox: SandboxServer, name: str) -> Any:
    return build_app(
        "api",
        name=name,
        base_url=sandbox.url,
        api_key=sandbox.api_key,
        TOUCAN_HTTP_RETRIES=0,
    )


def run(settings: Settings) -> list[Row]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the sandbox's request log
    with SandboxServer(latency_ms=LATENCY_MS, token_lifetime=3600) as sandbox:
        rows = [_cached_render(settings, sandbox), _single_flight(settings, sandbox)]
    return rows


def _cached_render(settings: Settings, sandbox: SandboxServer) -> Row:
    api_app, api_toucan = _api_app(sandbox, "bench-api")
    signed_app, signed_toucan = build_app("signed", name="bench-signed", base_url=sandbox.url)
    api_prep = prepare(api_app, api_toucan, login_cookie(api_app, api_toucan, CLAIMS)[0])
    signed_prep = prepare(signed_app, signed_toucan, login_cookie(signed_app, signed_toucan, CLAIMS)[0])
    before = sandbox.stats.get("token_requests", 0)
    t = interleaved(
        {
            "api": sides(api_app, api_toucan, api_prep)["kit"],
            "signed": sides(signed_app, signed_toucan, signed_prep)["kit"],
        },
        settings.render_rounds,
        settings.render_ops,
    )
    during = sandbox.stats.get("token_requests", 0) - before
    ratio = paired_ratio(t["api"], t["signed"])
    return Row(
        key="4a",
        title=f"`api` mode page render against the sandbox with {LATENCY_MS} ms upstream latency "
        "(tokens cached) vs the same page in `signed` mode (tokens cached)",
        toucan=fmt_time(median(t["api"])) + " / render",
        baseline=fmt_time(median(t["signed"])) + " / render",
        ratio=ratio,
        ratio_text=f"{ratio:.2f}x",
        target=f"≤ {TARGET:.2f}x",
        passed=ratio <= TARGET and during == 0,
        notes=[
            f"upstream token API calls while timed: {during} "
            f"(the first page view paid {before} calls of {LATENCY_MS} ms: one per permission set)",
        ],
    )


def _single_flight(settings: Settings, sandbox: SandboxServer) -> Row:
    n = settings.concurrent_renders
    app, toucan = _api_app(sandbox, "bench-api-cold")  # fresh app: empty token cache
    cookie, _ = login_cookie(app, toucan, CLAIMS)
    environ = page_environ(cookie)
    barrier = threading.Barrier(n)
    pages: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def render_one() -> None:
        try:
            with app.request_context(dict(environ)):
                g.csp_nonce = NONCE
                barrier.wait(timeout=30)
                html = render_template("kit_one_scope.html")
            with lock:
                pages.append(html)
        except BaseException as exc:  # reported in the row, not lost in a thread
            with lock:
                failures.append(exc)

    before = sandbox.stats.get("token_requests", 0)
    threads = [threading.Thread(target=render_one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    calls = sandbox.stats.get("token_requests", 0) - before
    placeholders = sum("toucan-placeholder" in p for p in pages)
    tokens = {p.split('auth-token="', 1)[1].split('"', 1)[0] for p in pages if 'auth-token="' in p}
    ok = calls == 1 and len(pages) == n and not failures and placeholders == 0 and len(tokens) == 1
    return Row(
        key="4b",
        title=f"upstream token API calls for {n} concurrent renders of one user "
        f"(`api` mode, cold cache, {LATENCY_MS} ms latency; page: dashboard + chart, one token)",
        toucan=f"{calls} call{'s' if calls != 1 else ''}",
        baseline="—",
        ratio=None,
        ratio_text="—",
        target="exactly 1",
        passed=ok,
        notes=[
            f"{len(pages)}/{n} pages rendered, {placeholders} placeholders, {len(failures)} errors, "
            f"{len(tokens)} distinct token(s) across all pages "
            "(calls read from the sandbox's `token_requests` counter)"
        ],
    )


def profile(settings: Settings, n: int = 3000) -> cProfile.Profile:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with SandboxServer(latency_ms=LATENCY_MS, token_lifetime=3600) as sandbox:
        app, toucan = _api_app(sandbox, "bench-api")
        prep = prepare(app, toucan, login_cookie(app, toucan, CLAIMS)[0])
        kit = sides(app, toucan, prep)["kit"]
        prof = cProfile.Profile()
        prof.enable()
        kit(n)
        prof.disable()
        return prof
