"""Benchmark 9: flask-toucan's refresh endpoint vs a flask-jwt-extended refresh route.

gunicorn serves :mod:`bench.wsgi_peer` (``gthread`` workers, keep-alive) with a
real ``redis-server`` as the flask-toucan sides' store, and the load generator
of benchmark 3 hits the three sides in interleaved rounds (same connections,
same seconds, the order rotating); the ratio is the median of per-round
throughput ratios.

* 9a ``cached``: flask-toucan as users hit it (the token served from Redis until near expiry);
* 9b ``signing``: flask-toucan signing every call (``TOUCAN_TOKEN_TTL=1``);
* baseline ``jwt``: flask-jwt-extended's refresh route, RS256, key objects loaded once.

Every side is checked before timing: 200, an RS256 token that verifies with
the same key and carries the same ``embed_context``; ``cached`` serves the
same token twice, the other two sign anew. Each row also gives the CPU cost of
one request in-process (a WSGI call, no server, no client, interleaved).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from werkzeug.test import EnvironBuilder

from .common import (
    DECODE_LEEWAY,
    Row,
    Settings,
    claims_for,
    fmt_time,
    interleaved,
    median,
    percentile,
    rsa_pem,
)
from .loadgen import LoadGenerator, Request
from .refresh import BODY, bench_files, gunicorn

SIDES = ("cached", "signing", "jwt")
TARGETS = {"cached": 1.30, "signing": 0.90}


def _login(port: int, side: str, claims: dict[str, Any]) -> Request:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = json.dumps(claims).encode()
        conn.request("POST", f"/{side}/login", body=payload, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        cookies = [c.split(";", 1)[0] for c in resp.msg.get_all("Set-Cookie") or []]
    finally:
        conn.close()
    if resp.status != 200 or not cookies:
        raise RuntimeError(f"login on /{side} failed: {resp.status}")
    headers = {"Content-Type": "application/json"}
    if side == "jwt":
        headers["Cookie"] = next(c for c in cookies if c.startswith("refresh_token_cookie="))
        headers["X-CSRF-TOKEN"] = body["csrf"]
        return ("/jwt/refresh", headers, BODY)
    headers["Cookie"] = cookies[0]
    headers["X-Toucan-CSRF"] = body["csrf"]
    return (f"/{side}/toucan/token", headers, BODY)


def _post(port: int, req: Request) -> tuple[int, dict[str, Any]]:
    path, headers, body = req
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data.startswith(b"{") else {}
    finally:
        conn.close()


def check_sides(port: int, requests: dict[str, list[Request]]) -> None:
    public = load_pem_private_key(rsa_pem().encode(), password=None).public_key()
    contexts, values = {}, {}
    for side in SIDES:
        got = []
        for _ in range(2):
            status, answer = _post(port, requests[side][0])
            if status != 200:
                raise RuntimeError(f"/{side} answered {status}: {answer}")
            claims = jwt.decode(
                answer["token"],
                public,
                algorithms=["RS256"],
                options={"verify_aud": False},
                leeway=DECODE_LEEWAY,
            )
            contexts[side] = claims["embed_context"]
            got.append(answer["token"])
        values[side] = got
    if not contexts["cached"] == contexts["signing"] == contexts["jwt"]:
        raise RuntimeError(f"the sides sign different embed_context: {contexts}")
    if values["cached"][0] != values["cached"][1]:
        raise RuntimeError("the cached side did not serve its cached token")
    if values["signing"][0] == values["signing"][1] or values["jwt"][0] == values["jwt"][1]:
        raise RuntimeError("a signing side served the same token twice")


def inprocess_costs(settings: Settings, key_file: str, store: str, redis_url: str) -> dict[str, float]:
    """Median CPU time of one refresh per side: WSGI calls into the apps gunicorn serves."""
    os.environ.update(BENCH_KEY_FILE=key_file, BENCH_STORE_DIR=store, BENCH_REDIS_URL=redis_url)
    from .wsgi_peer import make_application

    dispatcher = make_application()
    callers = {}
    for side in SIDES:
        app = dispatcher.mounts[f"/{side}"]
        answer = app.test_client().post("/login", json=claims_for(0))
        cookies = [c.split(";", 1)[0] for c in answer.headers.getlist("Set-Cookie")]
        headers = {"Content-Type": "application/json"}
        if side == "jwt":
            headers["Cookie"] = next(c for c in cookies if c.startswith("refresh_token_cookie="))
            headers["X-CSRF-TOKEN"] = answer.get_json()["csrf"]
        else:
            headers["Cookie"] = cookies[0]
            headers["X-Toucan-CSRF"] = answer.get_json()["csrf"]
        path = "/refresh" if side == "jwt" else "/toucan/token"
        base = EnvironBuilder(method="POST", path=path, headers=headers, data=BODY).get_environ()
        callers[side] = _caller(app, base)
        callers[side](1)

    t = interleaved(callers, settings.mint_rounds // 2 + 1, 10)
    return {side: median(v) for side, v in t.items()}


def _caller(app: Any, base: dict[str, Any]) -> Callable[[int], float]:
    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        if not status.startswith("200"):
            raise RuntimeError(f"refresh answered {status}")

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            environ = dict(base)
            environ["wsgi.input"] = io.BytesIO(BODY)
            body = app(environ, start_response)
            b"".join(body)
            body.close()
        return time.perf_counter() - t0

    return run


def signature_costs() -> dict[str, float]:
    """One ``jwt.encode`` of a small claims set per algorithm (the ES256 / EdDSA note)."""
    from flask_toucan.keys import generate_private_key_pem

    keys = {
        "RS256": load_pem_private_key(rsa_pem().encode(), password=None),
        "ES256": load_pem_private_key(generate_private_key_pem("EC", 256), password=None),
    }
    claims = {"sub": "x", "embed_context": {"username": "alice"}}
    out = {}
    for alg, key in keys.items():
        t0 = time.perf_counter()
        for _ in range(200):
            jwt.encode(claims, key, algorithm=alg)  # type: ignore[arg-type]
        out[alg] = (time.perf_counter() - t0) / 200
    return out


def run(settings: Settings) -> list[Row]:
    from tests.redis_server import RedisServer

    redis = RedisServer().start()
    try:
        with bench_files() as (key_file, store):
            cost = inprocess_costs(settings, key_file, store, redis.url)
            env = {"BENCH_REDIS_URL": redis.url}
            with gunicorn(
                settings, key_file, store, app="bench.wsgi_peer:application", sides=SIDES, env=env
            ) as port:
                rps, lat, errors = _load(settings, port)
    finally:
        redis.close()
    sig = signature_costs()
    return _rows(settings, rps, lat, errors, cost, sig)


def _load(
    settings: Settings, port: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, int]]:
    gen = LoadGenerator(port, settings.load_processes, settings.load_threads)
    with gen:
        requests = {
            side: [_login(port, side, claims_for(i)) for i in range(gen.concurrency)] for side in SIDES
        }
        check_sides(port, requests)
        for side in SIDES:
            gen.burst(requests[side], settings.load_warmup)
        rps: dict[str, list[float]] = {side: [] for side in SIDES}
        lat: dict[str, list[float]] = {side: [] for side in SIDES}
        errors = {side: 0 for side in SIDES}
        for r in range(settings.load_rounds):
            order = SIDES[r % 3 :] + SIDES[: r % 3]
            for side in order:
                res = gen.burst(requests[side], settings.load_seconds)
                rps[side].append(res.throughput)
                lat[side].extend(res.latencies)
                errors[side] += res.errors
    return rps, lat, errors


def _rows(
    settings: Settings,
    rps: dict[str, list[float]],
    lat: dict[str, list[float]],
    errors: dict[str, int],
    cost: dict[str, float],
    sig: dict[str, float],
) -> list[Row]:
    def figure(side: str) -> str:
        return (
            f"{median(rps[side]):.0f} req/s; p50 {percentile(lat[side], 50) * 1e3:.1f} ms, "
            f"p99 {percentile(lat[side], 99) * 1e3:.1f} ms"
        )

    rows = []
    for key, side, title in (
        ("9a", "cached", "refresh endpoint as users hit it (token cached in Redis)"),
        ("9b", "signing", "refresh endpoint signing every call (`TOUCAN_TOKEN_TTL=1`), Redis store"),
    ):
        ratio = median([a / b for a, b in zip(rps[side], rps["jwt"], strict=True)])
        notes = [
            f"CPU per request in-process (WSGI call, no server, interleaved): {side} "
            f"{fmt_time(cost[side])}, flask-jwt-extended {fmt_time(cost['jwt'])} "
            f"({cost['jwt'] / cost[side]:.2f}x its throughput)"
        ]
        if side == "cached":
            notes.insert(
                0,
                f"gunicorn {settings.gunicorn_workers} gthread workers x {settings.gunicorn_threads} "
                f"threads, a real redis-server (unix socket), "
                f"{settings.load_processes * settings.load_threads} keep-alive client connections, "
                f"{settings.load_rounds} rounds x {settings.load_seconds:g} s "
                f"per side; the peer verifies an RS256 refresh-token cookie + CSRF header and signs RS256; "
                f"flask-toucan with `TOUCAN_RATE_LIMIT=None` (with a limit, its count joins the same "
                f"round trip: 11b)",
            )
        else:
            notes.append(
                f"one jwt.encode on this machine: RS256 {fmt_time(sig['RS256'])}, ES256 "
                f"{fmt_time(sig['ES256'])}: where Toucan accepts it, an EC key makes signing every call cheap"
            )
        if errors[side] or errors["jwt"]:
            notes.append(f"non-200 or failed requests: {side} {errors[side]}, jwt {errors['jwt']}")
        rows.append(
            Row(
                key=key,
                title=f"{title} vs a flask-jwt-extended refresh route signing RS256 every call; gunicorn",
                toucan=figure(side),
                baseline=figure("jwt"),
                ratio=ratio,
                ratio_text=f"{ratio:.2f}x throughput",
                target=f"≥ {TARGETS[side]:.2f}x",
                passed=ratio >= TARGETS[side] and errors[side] == 0,
                notes=notes,
            )
        )
    return rows
