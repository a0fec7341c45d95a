"""Benchmark 3: the refresh endpoint under concurrent load on gunicorn vs a bare signing route.

gunicorn serves :mod:`bench.wsgi` on a free 127.0.0.1 port (``gthread``
workers, keep-alive). The load generator (:mod:`bench.loadgen`) logs one user
in per connection on each side, checks that every side answers 200 with a
valid RS256 token carrying the same ``embed_context``, then runs interleaved
rounds: in each round every side gets the same closed-loop burst (same
number of connections, same seconds), the order rotating. Throughput is
successful responses per second; the ratio is the median of the per-round
ratios; p50 / p99 latencies pool every round's requests.

Two flask-toucan sides, because the endpoint caches and the bare route does not:

* ``cached``: the endpoint as users hit it (a token is served from the shared
  file store until near its expiry, so most refreshes do not sign);
* ``signing``: ``TOUCAN_TOKEN_TTL=1`` so nothing is cached and every refresh
  signs, like the bare route: the like-for-like comparison.

Either way the endpoint does what the bare route skips: Origin and
``Sec-Fetch-Site`` checks, the server-side session lookup (file store), the
CSRF token check (itsdangerous), the JSON body check, the permissions and
attribute mappers.
"""

from __future__ import annotations

import cProfile
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from werkzeug.test import EnvironBuilder

from .common import (
    AUDIENCE,
    DECODE_LEEWAY,
    ISSUER,
    REPO_ROOT,
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

TARGET = 0.80
SIDES = ("cached", "signing", "bare")
BODY = json.dumps({"kind": "dashboard"}).encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def bench_files() -> Iterator[tuple[str, str]]:
    """A temp dir with the PEM key file and the store directories; removed afterwards."""
    root = tempfile.mkdtemp(prefix="toucan-bench-")
    try:
        key_file = os.path.join(root, "signing-key.pem")
        with open(key_file, "w") as fh:
            fh.write(rsa_pem())
        os.chmod(key_file, 0o600)
        store = os.path.join(root, "store")
        os.makedirs(store)
        yield key_file, store
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def gunicorn(settings: Settings, key_file: str, store: str) -> Iterator[int]:
    """gunicorn on a free loopback port; yields the port; stops it (SIGTERM, then SIGKILL)."""
    env = {**os.environ, "BENCH_KEY_FILE": key_file, "BENCH_STORE_DIR": store, "PYTHONPATH": str(REPO_ROOT)}
    for attempt in range(3):
        port = _free_port()
        cmd = [
            sys.executable, "-m", "gunicorn", "bench.wsgi:application",
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(settings.gunicorn_workers),
            "--worker-class", "gthread",
            "--threads", str(settings.gunicorn_threads),
            "--keep-alive", "30",
            "--chdir", str(REPO_ROOT),
            "--log-level", "warning",
        ]  # fmt: skip
        if os.path.isdir("/dev/shm"):
            cmd += ["--worker-tmp-dir", "/dev/shm"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if _wait_ready(proc, port, timeout=30):
                yield port
                return
            if attempt == 2:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
                raise RuntimeError(f"gunicorn did not start:\n{err}")
        finally:
            _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        ok = 0
        for side in SIDES:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", f"/{side}/ping")
                ok += conn.getresponse().status == 200
                conn.close()
            except OSError:
                pass
        if ok == len(SIDES):
            return True
        time.sleep(0.1)  # poll interval of a wait on a condition (every side answers)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stderr:
        proc.stderr.close()


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        cookie = resp.getheader("Set-Cookie") or ""
        return resp.status, json.loads(data) if data.startswith(b"{") else {}, cookie.split(";", 1)[0]
    finally:
        conn.close()


def login_all(port: int, users: int) -> dict[str, list[Request]]:
    """One session per connection and side; returns each side's requests."""
    out: dict[str, list[Request]] = {side: [] for side in SIDES}
    for i in range(users):
        claims = json.dumps(claims_for(i)).encode()
        for side in SIDES:
            status, body, cookie = _post(port, f"/{side}/login", claims, {"Content-Type": "application/json"})
            if status != 200 or not cookie:
                raise RuntimeError(f"login on /{side} failed: {status}")
            headers = {"Content-Type": "application/json", "Cookie": cookie}
            if side != "bare":
                headers["X-Toucan-CSRF"] = body["csrf"]
            out[side].append((f"/{side}/toucan/token" if side != "bare" else "/bare/token", headers, BODY))
    return out


def check_sides(port: int, requests: dict[str, list[Request]]) -> None:
    """Every side answers 200 with a valid token for the same user and the same embed_context."""
    public = load_pem_private_key(rsa_pem().encode(), password=None).public_key()
    contexts = {}
    values: dict[str, list[str]] = {}
    for side in SIDES:
        path, headers, body = requests[side][0]
        values[side] = []
        for _ in range(2):
            status, answer, _ = _post(port, path, body, headers)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}: {answer}")
            claims = jwt.decode(
                answer["token"],
                public,
                algorithms=["RS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=DECODE_LEEWAY,
            )
            contexts[side] = (claims["sub"], claims["embed_context"])
            values[side].append(answer["token"])
    if not contexts["cached"] == contexts["signing"] == contexts["bare"]:
        raise RuntimeError(f"the sides sign different claims: {contexts}")
    if values["cached"][0] != values["cached"][1]:
        raise RuntimeError("the cached side did not serve its cached token")
    if values["signing"][0] == values["signing"][1] or values["bare"][0] == values["bare"][1]:
        raise RuntimeError("a signing side served the same token twice")


def run(settings: Settings) -> list[Row]:
    cost = inprocess_costs(settings)
    with bench_files() as (key_file, store), gunicorn(settings, key_file, store) as port:
        gen = LoadGenerator(port, settings.load_processes, settings.load_threads)
        with gen:
            requests = login_all(port, gen.concurrency)
            check_sides(port, requests)
            for side in SIDES:  # warm-up: connections, imports, caches, the token cache
                gen.burst(requests[side], settings.load_warmup)
            rps: dict[str, list[float]] = {side: [] for side in SIDES}
            lat: dict[str, list[float]] = {side: [] for side in SIDES}
            errors: dict[str, int] = {side: 0 for side in SIDES}
            for r in range(settings.load_rounds * len(SIDES)):
                if r % len(SIDES) == 0:
                    order = SIDES[(r // 3) % 3 :] + SIDES[: (r // 3) % 3]
                side = order[r % len(SIDES)]
                res = gen.burst(requests[side], settings.load_seconds)
                rps[side].append(res.throughput)
                lat[side].extend(res.latencies)
                errors[side] += res.errors
    rows = []
    bare_p = (percentile(lat["bare"], 50), percentile(lat["bare"], 99))
    baseline = f"{median(rps['bare']):.0f} req/s; p50 {bare_p[0] * 1e3:.1f} ms, p99 {bare_p[1] * 1e3:.1f} ms"
    setup = (
        f"gunicorn {settings.gunicorn_workers} gthread workers x {settings.gunicorn_threads} threads, "
        f"{settings.load_processes * settings.load_threads} keep-alive client connections "
        f"({settings.load_processes} processes) on the same 2-CPU host, "
        f"{settings.load_rounds} rounds x {settings.load_seconds:g} s per side"
    )
    for key, side, title in (
        ("3a", "cached", "refresh endpoint as users hit it (token cached in the shared file store)"),
        ("3b", "signing", "refresh endpoint signing every call (`TOUCAN_TOKEN_TTL=1`, nothing cached)"),
    ):
        ratio = median([a / b for a, b in zip(rps[side], rps["bare"], strict=True)])
        p50, p99 = percentile(lat[side], 50), percentile(lat[side], 99)
        notes = [setup] if side == "cached" else []
        notes.append(
            f"CPU per request in-process (WSGI call, no server, interleaved): {side} {fmt_time(cost[side])}, "
            f"bare {fmt_time(cost['bare'])} (ratio {cost['bare'] / cost[side]:.2f}x the bare throughput)"
        )
        if errors[side] or errors["bare"]:
            notes.append(f"non-200 or failed requests: {side} {errors[side]}, bare {errors['bare']}")
        rows.append(
            Row(
                key=key,
                title=f"{title} vs bare Flask route signing the same token; gunicorn, concurrent clients",
                toucan=f"{median(rps[side]):.0f} req/s; p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms",
                baseline=baseline,
                ratio=ratio,
                ratio_text=f"{ratio:.2f}x throughput",
                target=f"≥ {TARGET:.2f}x",
                passed=ratio >= TARGET and errors[side] == 0,
                notes=notes,
            )
        )
    return rows


# ------------------------------------------------------- in-process / profile
def inprocess_callers(key_file: str, store: str) -> dict[str, Callable[[], None]]:
    """One refresh request per call, straight into the WSGI apps gunicorn serves (no server)."""
    os.environ["BENCH_KEY_FILE"], os.environ["BENCH_STORE_DIR"] = key_file, store
    from .wsgi import make_application

    dispatcher = make_application()
    callers: dict[str, Callable[[], None]] = {}
    for side in SIDES:
        app = dispatcher.mounts[f"/{side}"]
        answer = app.test_client().post("/login", json=claims_for(0))
        headers = {
            "Cookie": answer.headers["Set-Cookie"].split(";", 1)[0],
            "Content-Type": "application/json",
        }
        if side != "bare":
            headers["X-Toucan-CSRF"] = answer.get_json()["csrf"]
        base = EnvironBuilder(
            method="POST", path="/token" if side == "bare" else "/toucan/token", headers=headers, data=BODY
        ).get_environ()
        callers[side] = _caller(app, base)
        callers[side]()  # fills the cached side's token cache; checks the status
    return callers


def _caller(app: Any, base: dict[str, Any]) -> Callable[[], None]:
    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        if not status.startswith("200"):
            raise RuntimeError(f"refresh answered {status}")

    def call() -> None:
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(BODY)
        body = app(environ, start_response)
        b"".join(body)
        body.close()

    return call


def inprocess_costs(settings: Settings) -> dict[str, float]:
    """Median CPU time of one request per side, in-process, interleaved (no server, no client)."""
    with bench_files() as (key_file, store):
        callers = inprocess_callers(key_file, store)

        def timer(fn: Callable[[], None]) -> Callable[[int], float]:
            def run(n: int) -> float:
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                return time.perf_counter() - t0

            return run

        t = interleaved({side: timer(fn) for side, fn in callers.items()}, settings.mint_rounds // 2 + 1, 10)
    return {side: median(v) for side, v in t.items()}


def profile(settings: Settings, side: str = "cached", n: int = 2000) -> cProfile.Profile:
    """The endpoint's server-side work, in-process: WSGI calls into the same app gunicorn serves."""
    with bench_files() as (key_file, store):
        call = inprocess_callers(key_file, store)[side]
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(n):
            call()
        prof.disable()
        return prof
