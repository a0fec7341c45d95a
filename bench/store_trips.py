"""Benchmark 11: store round trips per request, and the Redis store vs the memory store.

A real ``redis-server`` (unix socket). The page is benchmark 2's (a dashboard
and the assistant: two permission sets, two tokens), tokens cached.

* 11a: the cached page rendered with ``TOUCAN_STORE=redis://...`` vs the same
  page with the in-process memory store, interleaved, a fresh request context
  per render (the session record and both tokens are read from the store
  every time). The Redis store as configured by default: its near cache
  (flask_toucan/nearcache.py) answers the read while Redis's invalidation
  connection vouches for it, so a page it holds is no round trip. The notes
  give the same page with ``TOUCAN_STORE_NEAR_CACHE=0`` (one round trip per
  page; on a page this cheap that round trip is a large share) in the same
  rounds, and that round trip's median and tail.
* 11c: the same page as a whole request through the WSGI app (session cookie
  in, the page routed, rendered and sent as a response), Redis vs memory,
  interleaved: what a page view costs the server.
* 11b: store commands and round trips per request. Commands are counted by
  redis-server itself (``INFO commandstats`` after ``CONFIG RESETSTAT``);
  round trips at the socket (each write of a request to a redis-py
  connection; a pipeline is one). With the near cache off (the path of every
  request without it, and of every near-cache miss): cached page and cached
  refresh with ``TOUCAN_RATE_LIMIT=None``, then a cached refresh with the
  rate limit on (its counter's ``INCR`` + ``EXPIRE`` ride in the same
  pipeline). Then the cached page with the near cache on.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

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
    percentile,
    request_timer,
)
from .render import kit_render

TARGET = 1.30
ADMIN = {"config", "info", "hello", "client"}
REFRESH_HEADERS = {"Sec-Fetch-Site": "same-origin"}


def _commands(r: Any) -> dict[str, int]:
    stats = r.info("commandstats")
    out = {}
    for name, v in stats.items():
        cmd = name.removeprefix("cmdstat_").split("|")[0]
        if cmd not in ADMIN:
            out[cmd] = out.get(cmd, 0) + int(v["calls"])
    return out


def _page() -> str:
    from flask import g

    g.csp_nonce = NONCE
    return kit_render()


def _app(store: str, **extra: Any) -> tuple[Flask, Toucan, dict[str, Any], str]:
    app, toucan = build_app("signed", name=f"bench-store-{store[:5]}", store=store, **extra)
    app.add_url_rule("/page", "bench_page", _page)
    cookie, csrf = login_cookie(app, toucan, CLAIMS)
    environ = page_environ(cookie)
    with app.request_context(dict(environ)):
        kit_render()  # mints both tokens into the store
    return app, toucan, environ, csrf


class SocketWrites:
    """Counts writes of requests to redis-py connections in this process (one per round trip)."""

    def __init__(self) -> None:
        import redis.connection

        self.count = 0
        self._cls = redis.connection.AbstractConnection
        self._real = self._cls.send_packed_command

    def __enter__(self) -> SocketWrites:
        real = self._real

        def counting(conn: Any, command: Any, check_health: bool = True) -> None:
            self.count += 1
            real(conn, command, check_health)

        self._cls.send_packed_command = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self._cls.send_packed_command = self._real  # type: ignore[method-assign]


def _per_request(r: Any, n: int, request: Callable[[], Any]) -> tuple[float, float]:
    """(commands, round trips) per call of ``request``, over ``n`` calls."""
    request()
    r.config_resetstat()
    with SocketWrites() as writes:
        for _ in range(n):
            request()
    return sum(_commands(r).values()) / n, writes.count / n


def count_trips(redis_url: str, r: Any, n: int) -> dict[str, tuple[float, float]]:
    """Commands and round trips per cached page, cached refresh, rate-limited cached refresh."""
    out = {}
    near_off = {"TOUCAN_STORE_NEAR_CACHE": 0}
    for name, extra in (
        ("off", near_off),
        ("on", {**near_off, "TOUCAN_RATE_LIMIT": "1000000/minute"}),
        ("near", {}),
    ):
        app, _, environ, csrf = _app(redis_url, **extra)
        client = app.test_client()
        cookie_name, _, value = environ["HTTP_COOKIE"].partition("=")
        client.set_cookie(cookie_name, value)
        if "toucan-placeholder" in client.get("/page").get_data(as_text=True):
            raise AssertionError("the bench page did not render its components")
        headers = {"X-Toucan-CSRF": csrf, **REFRESH_HEADERS}

        def refresh(client: Any = client, headers: dict[str, str] = headers) -> None:
            if client.post("/toucan/token", json={"kind": "assistant"}, headers=headers).status_code != 200:
                raise AssertionError("the refresh failed")

        if name == "off":
            out["page"] = _per_request(r, n, lambda client=client: client.get("/page"))
            out["refresh"] = _per_request(r, n, refresh)
        elif name == "on":
            out["refresh, rate limit on"] = _per_request(r, n, refresh)
        else:
            client.get("/page")  # the first read after the mint fills the copy
            out["page, near cache on"] = _per_request(r, n, lambda client=client: client.get("/page"))
    return out


def wsgi_timer(app: Flask, environ: dict[str, Any]) -> Callable[[int], float]:
    """``fn(n)``: n whole page requests through the WSGI app (cookie in, response body out)."""

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        if not status.startswith("200"):
            raise RuntimeError(f"the page answered {status}")

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            env = dict(environ)
            env["wsgi.input"] = io.BytesIO(b"")
            body = app(env, start_response)
            b"".join(body)
            body.close()  # type: ignore[attr-defined]
        return time.perf_counter() - t0

    return run


def round_trip_times(app: Flask, environ: dict[str, Any], n: int) -> list[float]:
    """Seconds of each page's one store round trip, timed inside renders like 11a's."""
    store = app.extensions["toucan"].store.inner
    real = store.execute
    times: list[float] = []

    def timed(commands: Any) -> Any:
        t0 = time.perf_counter()
        result = real(commands)
        times.append(time.perf_counter() - t0)
        return result

    store.execute = timed
    try:
        request_timer(app, environ, kit_render)(n)
    finally:
        del store.execute
    return times


def diagnostics(
    settings: Settings, process: Any, mem: tuple[Flask, Any], red: tuple[Flask, Any]
) -> dict[str, float]:
    """Where 11a's difference goes, for its notes (the row's own ratio is measured as above).

    * ``code``: the Redis store's own code, its replies served from memory (no socket): what
      the store costs beyond the round trip;
    * ``one cpu``: redis-server and this process pinned to one CPU, where a round trip is a
      context switch; with the scheduler's free placement redis-server runs on the other CPU
      and each round trip wakes it there (on a VM, an idle virtual CPU is slow to wake).
    """
    app, environ = red
    inner = app.extensions["toucan"].store.inner
    replies: dict[str, Any] = {}
    real = inner.execute

    def from_memory(commands: Any) -> Any:
        key = repr(commands)
        if key not in replies:
            replies[key] = real(commands)
        return replies[key]

    memory = request_timer(*mem, kit_render)
    inner.execute = from_memory
    try:
        t = interleaved({"memory": memory, "code": request_timer(app, environ, kit_render)}, 10, 50)
    finally:
        del inner.execute
    out = {"code": paired_ratio(t["code"], t["memory"])}
    if hasattr(os, "sched_setaffinity") and process is not None:
        mine, theirs = os.sched_getaffinity(0), os.sched_getaffinity(process.pid)
        cpu = min(mine)
        try:
            os.sched_setaffinity(0, {cpu})
            os.sched_setaffinity(process.pid, {cpu})
            t = interleaved({"memory": memory, "redis": request_timer(app, environ, kit_render)}, 10, 50)
            out["one cpu"] = paired_ratio(t["redis"], t["memory"])
        finally:
            os.sched_setaffinity(0, mine)
            os.sched_setaffinity(process.pid, theirs)
    return out


def run(settings: Settings) -> list[Row]:
    import redis as redis_py

    from tests.redis_server import RedisServer

    server = RedisServer().start()
    try:
        mem_app, _, mem_env, _ = _app("memory")
        red_app, _, red_env, _ = _app(server.url)
        off_app, _, off_env, _ = _app(server.url, TOUCAN_STORE_NEAR_CACHE=0)
        # All sides in the same rounds: 11a and 11c see the same machine (a shared box's
        # load, and where the scheduler put redis-server, change from one minute to the next).
        t = interleaved(
            {
                "memory": request_timer(mem_app, mem_env, kit_render),
                "redis": request_timer(red_app, red_env, kit_render),
                "redis, no near cache": request_timer(off_app, off_env, kit_render),
                "memory request": wsgi_timer(mem_app, mem_env),
                "redis request": wsgi_timer(red_app, red_env),
                "redis request, no near cache": wsgi_timer(off_app, off_env),
            },
            settings.render_rounds,
            settings.render_ops,
        )
        renders = {k: t[k] for k in ("memory", "redis", "redis, no near cache")}
        requests = {
            "memory": t["memory request"],
            "redis": t["redis request"],
            "redis, no near cache": t["redis request, no near cache"],
        }
        trip_times = round_trip_times(off_app, off_env, 200 if settings.quick else 2000)
        probes = diagnostics(settings, server.process, (mem_app, mem_env), (off_app, off_env))
        r = redis_py.Redis.from_url(server.url)
        trips = count_trips(server.url, r, 20 if settings.quick else 200)
    finally:
        server.close()
    return [
        _render_row(settings, renders, trip_times, probes),
        _trips_row(trips),
        _request_row(settings, requests),
    ]


def _render_row(
    settings: Settings, t: dict[str, list[float]], trip_times: list[float], probes: dict[str, float]
) -> Row:
    return _redis_vs_memory(
        "11a",
        "cached page render (dashboard + assistant: session record + 2 tokens) with the Redis "
        "store vs the memory store",
        t,
        "render",
        [
            f"real redis-server on a unix socket; {settings.render_rounds} rounds x "
            f"{settings.render_ops} renders per side, interleaved; render only (no WSGI request)",
            _near_note(t, "render"),
            "with the near cache off, the page's one round trip measured inside renders: "
            f"median {fmt_time(median(trip_times))}, "
            f"p90 {fmt_time(percentile(trip_times, 90))}, p99 {fmt_time(percentile(trip_times, 99))} "
            f"(the tail: waking redis-server on the other CPU, or waiting for a CPU on a shared machine); "
            f"row 11c gives the whole request",
            f"diagnostics, not the row's ratio, near cache off: the store's code with its replies served "
            f"from memory (no socket) {probes['code']:.2f}x the memory store"
            + (
                f"; redis-server and the app pinned to one CPU (a round trip is then a context switch, "
                f"not a wake-up of the other CPU) {probes['one cpu']:.2f}x"
                if "one cpu" in probes
                else ""
            ),
        ],
    )


def _trips_row(trips: dict[str, tuple[float, float]]) -> Row:
    trips = dict(trips)
    near = trips.pop("page, near cache on")
    text = "; ".join(f"{name}: {cmds:g} cmd / {rt:g} trip" for name, (cmds, rt) in trips.items())
    short = " / ".join(f"{rt:g}" for _, rt in trips.values())
    passed = all(rt == 1 for _, rt in trips.values()) and trips["page"][0] == trips["refresh"][0] == 1
    passed = passed and near == (0, 0)
    text += f"; page, near cache on: {near[0]:g} cmd / {near[1]:g} trip"
    short += f" (page with the near cache: {near[1]:g})"
    return Row(
        key="11b",
        title="Redis round trips per request (page / refresh / refresh with the rate limit on), counted at "
        "the socket, near cache off; then the page with the near cache; commands counted by redis-server",
        toucan=text,
        baseline="—",
        ratio=None,
        ratio_text=short,
        target="1 / 1 / 1 (0)",
        passed=passed,
        notes=[
            "page and refresh: one MGET (session record + tokens); with `TOUCAN_RATE_LIMIT` on, the "
            "refresh's MGET + the counter's INCR + EXPIRE in one pipeline (one write, one read)",
            "near cache off: what every request does without it, and every near-cache miss (the MGET then "
            "carries a PTTL per key, same trip); on: a page whose login record and tokens it holds",
        ],
    )


def _request_row(settings: Settings, t: dict[str, list[float]]) -> Row:
    return _redis_vs_memory(
        "11c",
        "cached page as a whole request through the WSGI app (cookie in, response out), Redis store "
        "vs memory store",
        t,
        "request",
        [
            f"{settings.render_rounds} rounds x {settings.render_ops} requests per side, interleaved "
            "with 11a's renders (the same rounds); the same apps and page as 11a",
            _near_note(t, "request"),
        ],
    )


def _near_note(t: dict[str, list[float]], unit: str) -> str:
    """The same page with ``TOUCAN_STORE_NEAR_CACHE=0`` (one round trip each), measured in the same rounds."""
    off = t["redis, no near cache"]
    return (
        f"Redis store with the near cache (the default; a page it holds is no round trip, kept true by "
        f"Redis's invalidations); with `TOUCAN_STORE_NEAR_CACHE=0` the same page is "
        f"{fmt_time(median(off))} / {unit}, {paired_ratio(off, t['memory']):.2f}x the memory store"
    )


def _redis_vs_memory(key: str, title: str, t: dict[str, list[float]], unit: str, notes: list[str]) -> Row:
    """A row of the Redis side's time against the memory side's, target :data:`TARGET`."""
    ratio = paired_ratio(t["redis"], t["memory"])
    return Row(
        key=key,
        title=title,
        toucan=f"{fmt_time(median(t['redis']))} / {unit} (Redis)",
        baseline=f"{fmt_time(median(t['memory']))} / {unit} (memory)",
        ratio=ratio,
        ratio_text=f"{ratio:.2f}x",
        target=f"≤ {TARGET:.2f}x",
        passed=ratio <= TARGET,
        notes=notes,
    )
