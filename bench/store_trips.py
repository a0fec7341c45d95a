"""Benchmark 11: store round trips per request, and the Redis store vs the memory store.

A real ``redis-server`` (unix socket). The page is benchmark 2's (a dashboard
and the assistant: two permission sets, two tokens), tokens cached.

* 11a: the cached page rendered with ``TOUCAN_STORE=redis://...`` vs the same
  page with the in-process memory store, interleaved, a fresh request context
  per render (the session record and both tokens come from the store every time).
* 11b: round trips per request, counted by redis-server itself (``INFO
  commandstats`` after ``CONFIG RESETSTAT``): commands per cached page and per
  cached refresh (``POST /toucan/token``, rate limit off), over many requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from flask_toucan import Toucan

from .common import (
    CLAIMS,
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
from .render import kit_render

TARGET = 1.30
ADMIN = {"config", "info", "hello", "client"}


def _commands(r: Any) -> dict[str, int]:
    stats = r.info("commandstats")
    out = {}
    for name, v in stats.items():
        cmd = name.removeprefix("cmdstat_").split("|")[0]
        if cmd not in ADMIN:
            out[cmd] = out.get(cmd, 0) + int(v["calls"])
    return out


def _app(store: str) -> tuple[Flask, Toucan, dict[str, Any], str]:
    app, toucan = build_app("signed", name=f"bench-store-{store[:5]}", store=store)
    cookie, csrf = login_cookie(app, toucan, CLAIMS)
    environ = page_environ(cookie)
    with app.request_context(dict(environ)):
        kit_render()  # mints both tokens into the store
    return app, toucan, environ, csrf


def count_trips(app: Flask, environ: dict[str, Any], csrf: str, r: Any, n: int) -> tuple[float, float]:
    """Commands per cached page render and per cached refresh."""
    client = app.test_client()
    name, _, value = environ["HTTP_COOKIE"].partition("=")
    client.set_cookie(name, value)
    headers = {"X-Toucan-CSRF": csrf, "Sec-Fetch-Site": "same-origin"}
    app.add_url_rule("/page", "bench_page", kit_render)
    if "toucan-placeholder" in client.get("/page").get_data(as_text=True):
        raise AssertionError("the bench page did not render its components")
    r.config_resetstat()
    for _ in range(n):
        client.get("/page")
    page = sum(_commands(r).values()) / n
    client.post("/toucan/token", json={"kind": "assistant"}, headers=headers)
    r.config_resetstat()
    for _ in range(n):
        if client.post("/toucan/token", json={"kind": "assistant"}, headers=headers).status_code != 200:
            raise AssertionError("the refresh failed")
    return page, sum(_commands(r).values()) / n


def run(settings: Settings) -> list[Row]:
    import redis as redis_py

    from tests.redis_server import RedisServer

    server = RedisServer().start()
    try:
        mem_app, _, mem_env, _ = _app("memory")
        red_app, _, red_env, csrf = _app(server.url)
        sides: dict[str, Callable[[int], float]] = {
            "memory": request_timer(mem_app, mem_env, kit_render),
            "redis": request_timer(red_app, red_env, kit_render),
        }
        t = interleaved(sides, settings.render_rounds, settings.render_ops)
        r = redis_py.Redis.from_url(server.url)
        page_trips, refresh_trips = count_trips(red_app, red_env, csrf, r, 20 if settings.quick else 200)
    finally:
        server.close()
    ratio = paired_ratio(t["redis"], t["memory"])
    return [
        Row(
            key="11a",
            title="cached page (dashboard + assistant: session record + 2 tokens) with the Redis store "
            "vs the memory store",
            toucan=fmt_time(median(t["redis"])) + " / render (Redis)",
            baseline=fmt_time(median(t["memory"])) + " / render (memory)",
            ratio=ratio,
            ratio_text=f"{ratio:.2f}x",
            target=f"≤ {TARGET:.2f}x",
            passed=ratio <= TARGET,
            notes=[
                f"real redis-server on a unix socket; {settings.render_rounds} rounds x "
                f"{settings.render_ops} renders per side, interleaved"
            ],
        ),
        Row(
            key="11b",
            title="Redis commands per request (counted by redis-server): cached page / cached refresh",
            toucan=f"{page_trips:g} / {refresh_trips:g}",
            baseline="—",
            ratio=None,
            ratio_text=f"{page_trips:g} / {refresh_trips:g}",
            target="1 / 1",
            passed=page_trips == 1 and refresh_trips == 1,
            notes=["one MGET each (session record + tokens); the refresh with `TOUCAN_RATE_LIMIT=None`"],
        ),
    ]
