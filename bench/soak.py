"""Fault soak: ``python -m bench.soak --seconds N`` (from the repository root).

Starts a real ``redis-server`` (with an append-only file, as docs/deployment.md
recommends), the Toucan sandbox with about 20 % injected faults (503s, bursts
of 429 with ``Retry-After``, latency), and gunicorn with 4 ``gthread``
workers serving :mod:`bench.soak_app` with the store in Redis. 50 users log in
(real session cookies, valid on every worker); 20 client threads refresh
their tokens (and now and then load a page with a component) until the time
is up. Mid-run, Redis is stopped and restarted, and one gunicorn worker is
killed with SIGKILL.

What must hold (:meth:`SoakReport.problems`): the refresh endpoint answers
only 200, 429 with ``Retry-After`` and 503 with ``Retry-After``; pages only
200 (the placeholder while something is down); during the Redis outage 503s
appear, after the restart 200s again; the killed worker is replaced and 200s
follow; no sampled token (at least 100, introspected by the sandbox) carries
another user's identity or attributes; a connection error only for a request
that was in flight on the killed worker. The figures are printed: requests,
per-code counts, p50/p99 latency, upstream calls.

``tests/soak/test_soak.py`` runs a bounded version (``--seconds 30``) in CI.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from flask_toucan.sandbox import SandboxServer

REPO_ROOT = Path(__file__).resolve().parent.parent
OK_TOKEN = {200, 429, 503}
WAIT = 60.0  # the longest any chaos step may take before the soak gives up on it
PACE = 0.02  # seconds between one client thread's requests
OUTAGE = 2.0  # seconds Redis stays down (at least; until a 503 has been seen)
RATE_LIMIT = "10/second"  # per session: low enough that some refreshes get the app's own 429


# ------------------------------------------------------------------ outcomes
@dataclass(frozen=True)
class Outcome:
    kind: str  # "token" or "page"
    user: int
    started: float
    ended: float
    status: int | None  # None: the connection failed
    retry_after: str | None = None
    token: str | None = None
    page: str = ""  # "component", "unavailable", "other"
    error: str = ""  # the JSON ``error`` of a refused refresh (store_unavailable, rate_limited...)


class Recorder:
    """Every outcome, in order, with a condition to wait on (never a fixed sleep)."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.changed = threading.Condition()

    def add(self, outcome: Outcome) -> None:
        with self.changed:
            self.outcomes.append(outcome)
            self.changed.notify_all()

    def mark(self) -> int:
        with self.changed:
            return len(self.outcomes)

    def wait_for(self, check: Callable[[list[Outcome]], bool], timeout: float = WAIT) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: check(self.outcomes), timeout)


def seen(start: int, status: int, error: str | None = None) -> Callable[[list[Outcome]], bool]:
    """Whether a refresh answered ``status`` (with that JSON ``error``) since ``start``."""
    return lambda outs: any(
        o.kind == "token" and o.status == status and (error is None or o.error == error) for o in outs[start:]
    )


# ------------------------------------------------------------------ gunicorn
class Gunicorn:
    """gunicorn on a socket this process bound (port 0, no race), passed as ``fd://``."""

    def __init__(
        self,
        workers: int,
        threads: int,
        env: dict[str, str],
        log: Path,
        app: str = "bench.soak_app:application",
    ) -> None:
        self.workers = workers
        self.log = log
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.listener.set_inheritable(True)
        fd = self.listener.fileno()
        cmd = [
            sys.executable, "-m", "gunicorn", app,
            "--bind", f"fd://{fd}",
            "--workers", str(workers),
            "--worker-class", "gthread",
            "--threads", str(threads),
            "--chdir", str(REPO_ROOT),
            "--log-level", "error",
            "--graceful-timeout", "5",
        ]  # fmt: skip
        if os.path.isdir("/dev/shm"):
            cmd += ["--worker-tmp-dir", "/dev/shm"]
        full_env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
        with open(log, "wb") as sink:  # the workers' stderr: the app's log lines, any traceback
            self.process = subprocess.Popen(
                cmd, env=full_env, pass_fds=(fd,), stdout=subprocess.DEVNULL, stderr=sink
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def worker_pids(self) -> set[int]:
        """The master's live children, from ``/proc`` (Linux)."""
        pids = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                pids.add(int(entry.name))
        return pids

    def wait_ready(self, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while len(self.worker_pids()) < self.workers or not _pings(self.url):
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("gunicorn did not start in time")
            time.sleep(0.05)  # poll interval of the readiness check

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.listener.close()


def _pings(url: str) -> bool:
    try:
        return requests.get(f"{url}/ping", timeout=2).status_code == 200
    except requests.RequestException:
        return False


# -------------------------------------------------------------------- users
@dataclass
class User:
    index: int
    claims: dict[str, Any]
    http: requests.Session = field(default_factory=requests.Session)
    csrf: str = ""

    @classmethod
    def make(cls, index: int) -> User:
        claims = {
            "sub": f"soak-user-{index}",
            "iss": "https://idp.soak.example",
            "org": f"org-{index:03d}",
            "region": f"region-{index % 5}",
        }
        user = cls(index, claims)
        # No keep-alive: a killed worker can then only take the requests it was serving.
        user.http.headers["Connection"] = "close"
        return user

    def login(self, base: str) -> None:
        resp = self.http.post(f"{base}/login", json=self.claims, timeout=30)
        resp.raise_for_status()
        self.csrf = resp.json()["csrf"]

    def distinct_id(self) -> str:
        return f"{self.claims['iss']}|{self.claims['sub']}"


def client_loop(base: str, users: list[User], recorder: Recorder, stop: threading.Event, seed: int) -> None:
    """Round-robin over this thread's users; a short pause between requests (2 shared cores)."""
    rng = random.Random(seed)  # the load pattern, not a secret
    while not stop.is_set():
        for user in users:
            if stop.wait(PACE):
                return
            if rng.random() < 0.1:
                recorder.add(_page(base, user))
            else:
                recorder.add(_refresh(base, user))


def _refresh(base: str, user: User) -> Outcome:
    started = time.monotonic()
    try:
        resp = user.http.post(
            f"{base}/toucan/token",
            json={"kind": "dashboard"},
            headers={"X-Toucan-CSRF": user.csrf},
            timeout=60,
        )
    except requests.RequestException:
        return Outcome("token", user.index, started, time.monotonic(), None)
    ended = time.monotonic()
    try:
        body = resp.json()
    except ValueError:
        body = {}
    token = body.get("token") if resp.status_code == 200 else None
    error = "" if resp.status_code == 200 else str(body.get("error", "not-json"))
    retry_after = resp.headers.get("Retry-After")
    return Outcome("token", user.index, started, ended, resp.status_code, retry_after, token, error=error)


def _page(base: str, user: User) -> Outcome:
    started = time.monotonic()
    try:
        resp = user.http.get(f"{base}/page", timeout=60)
    except requests.RequestException:
        return Outcome("page", user.index, started, time.monotonic(), None)
    html = resp.text
    state = (
        "component"
        if "<tc-dashboard" in html
        else "unavailable"
        if 'data-toucan-placeholder="unavailable"' in html
        else "other"
    )
    return Outcome("page", user.index, started, time.monotonic(), resp.status_code, page=state)


# ------------------------------------------------------------------- report
@dataclass
class SoakReport:
    seconds: float
    outcomes: list[Outcome]
    upstream: dict[str, Any]
    events: dict[str, float] = field(default_factory=dict)
    chaos: list[str] = field(default_factory=list)  # what went wrong in the chaos steps
    checked_tokens: int = 0
    token_mismatches: list[str] = field(default_factory=list)
    killed_at: float | None = None  # monotonic time of the SIGKILL (requests started before may fail)
    tracebacks: int = 0  # in the workers' log

    def codes(self) -> Counter[str]:
        return Counter(
            f"{o.kind} {o.status if o.status is not None else 'conn-error'}" for o in self.outcomes
        )

    def errors(self) -> Counter[str]:
        """Refused refreshes by status and JSON ``error``."""
        return Counter(f"{o.status} {o.error}" for o in self.outcomes if o.kind == "token" and o.error)

    def latencies(self) -> list[float]:
        return sorted(o.ended - o.started for o in self.outcomes if o.status is not None)

    def problems(self) -> list[str]:
        found = list(self.chaos) + list(self.token_mismatches)
        killed_at = self.killed_at
        for o in self.outcomes:
            if o.status is None:
                if killed_at is None or o.started > killed_at:
                    found.append(f"connection error on a {o.kind} request not in flight at the kill")
            elif o.kind == "token" and o.status not in OK_TOKEN:
                found.append(f"refresh answered {o.status}")
            elif o.kind == "token" and o.status in (429, 503) and not o.retry_after:
                found.append(f"refresh answered {o.status} without Retry-After")
            elif o.kind == "page" and (o.status != 200 or o.page == "other"):
                found.append(f"page answered {o.status} ({o.page})")
        if self.tracebacks:
            found.append(f"{self.tracebacks} traceback(s) in the gunicorn log")
        if self.checked_tokens < 100:
            found.append(f"only {self.checked_tokens} distinct tokens were introspected (need >= 100)")
        return sorted(set(found))

    def format(self) -> str:
        lat = self.latencies()

        def pct(p: float) -> str:
            return f"{lat[min(len(lat) - 1, int(p * len(lat)))] * 1000:.0f} ms" if lat else "n/a"

        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.codes().items()))
        upstream = ", ".join(f"{k}={v}" for k, v in sorted(self.upstream.items()))
        problems = self.problems()
        return "\n".join(
            [
                f"soak: {self.seconds:.0f} s, {len(self.outcomes)} requests",
                f"codes: {codes}",
                "refusals: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.errors().items())),
                f"latency: p50 {pct(0.50)}, p99 {pct(0.99)}",
                f"upstream (sandbox): {upstream}",
                f"tokens introspected: {self.checked_tokens}, wrong owner: {len(self.token_mismatches)}",
                "chaos: " + ", ".join(f"{k} at +{v:.1f}s" for k, v in sorted(self.events.items(), key=_2nd)),
                "result: OK" if not problems else "problems:\n  " + "\n  ".join(problems),
            ]
        )


def _2nd(item: tuple[str, float]) -> float:
    return item[1]


def check_tokens(
    outcomes: list[Outcome], users: list[User], sandbox: Any, sample: int, seed: int
) -> tuple[int, list[str]]:
    """Introspect up to ``sample`` distinct (user, token) pairs: each must be that user's."""
    pairs = sorted({(o.user, o.token) for o in outcomes if o.token})
    rng = random.Random(seed)
    chosen = rng.sample(pairs, min(sample, len(pairs)))
    wrong = []
    for index, token in chosen:
        user = users[index]
        seen_as = sandbox.introspect(token)
        attrs = seen_as.get("attributes", {})
        owner = seen_as.get("user", {}).get("distinctId")
        expected = {"organization_id": user.claims["org"], "region": user.claims["region"]}
        if owner != user.distinct_id() or {k: attrs.get(k) for k in expected} != expected:
            wrong.append(f"user {index} received a token for {owner} / {attrs}")
    return len(chosen), wrong


# -------------------------------------------------------------------- chaos
def redis_outage(redis: Any, recorder: Recorder, report: SoakReport, t0: float) -> None:
    """Stop Redis until 503s show, keep it down a moment, restart, wait for 200s."""
    redis.stop()
    report.events["redis_stopped"] = time.monotonic() - t0
    down = recorder.mark()
    threading.Event().wait(OUTAGE)  # the outage's length: a scenario parameter, not a sync
    if not recorder.wait_for(seen(down, 503, "store_unavailable")):
        report.chaos.append("no store_unavailable 503 while Redis was down")
    redis.start()
    report.events["redis_restarted"] = time.monotonic() - t0
    up = recorder.mark()
    if not recorder.wait_for(seen(up, 200)):
        report.chaos.append("no 200 after Redis came back")
    else:
        report.events["redis_recovered"] = time.monotonic() - t0


def kill_worker(server: Gunicorn, recorder: Recorder, report: SoakReport, t0: float) -> None:
    """SIGKILL one worker; gunicorn must start another, and 200s must follow."""
    victim = min(server.worker_pids())
    report.killed_at = time.monotonic()  # the clock of Outcome.started
    report.events["worker_killed"] = report.killed_at - t0
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + WAIT
    while not (victim not in (pids := server.worker_pids()) and len(pids) >= server.workers):
        if time.monotonic() > deadline:
            report.chaos.append("the killed worker was not replaced")
            return
        time.sleep(0.05)  # poll interval of the check
    report.events["worker_replaced"] = time.monotonic() - t0
    after = recorder.mark()
    if not recorder.wait_for(seen(after, 200)):
        report.chaos.append("no 200 after the worker was replaced")


# --------------------------------------------------------------------- run
@contextmanager
def started_services(workers: int, threads: int, fault_rate: float) -> Iterator[tuple[Any, Any, Gunicorn]]:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.redis_server import RedisServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the sandbox's access log
    redis = RedisServer(persistent=True).start()
    sandbox = SandboxServer(
        token_lifetime=4, latency_ms=5, fail_rate=fault_rate * 0.75, retry_after=1
    ).start()
    server = None
    log = redis.directory / "gunicorn.log"
    try:
        env = {
            "SOAK_BASE_URL": sandbox.url,
            "SOAK_API_KEY": sandbox.api_key,
            "SOAK_STORE": redis.url,
            "SOAK_RATE_LIMIT": RATE_LIMIT,
        }
        server = Gunicorn(workers, threads, env, log)
        server.wait_ready()
        yield redis, sandbox, server
    finally:
        if server is not None:
            server.stop()
        sandbox.stop()
        redis.close()


def run(
    seconds: float,
    *,
    users: int = 50,
    threads: int = 20,
    workers: int = 4,
    fault_rate: float = 0.2,
    sample: int = 150,
    seed: int = 0,
) -> SoakReport:
    with started_services(workers, 4, fault_rate) as (redis, sandbox, server):
        people = [User.make(i) for i in range(users)]
        for person in people:
            person.login(server.url)
        recorder = Recorder()
        report = SoakReport(seconds, recorder.outcomes, {})
        stop = threading.Event()
        clients = [
            threading.Thread(
                target=client_loop,
                args=(server.url, people[i::threads], recorder, stop, seed + i),
                daemon=True,
            )
            for i in range(threads)
        ]
        t0 = time.monotonic()
        for c in clients:
            c.start()
        try:
            _chaos(seconds, redis, sandbox, server, recorder, report, t0, stop)
        finally:
            stop.set()
            for c in clients:
                c.join(timeout=WAIT)
        report.seconds = time.monotonic() - t0
        report.tracebacks = server.log.read_text(errors="replace").count("Traceback")
        report.upstream = {k: v for k, v in sandbox.stats.items() if v}
        report.checked_tokens, report.token_mismatches = check_tokens(
            recorder.outcomes, people, sandbox, sample, seed
        )
        return report


def _chaos(
    seconds: float, redis: Any, sandbox: Any, server: Gunicorn, recorder: Recorder,
    report: SoakReport, t0: float, stop: threading.Event,
) -> None:  # fmt: skip
    """The timeline: warm up, Redis outage at 30 %, worker kill at 60 %, 429 bursts throughout."""
    if not recorder.wait_for(lambda outs: sum(o.status == 200 for o in outs) >= 20):
        report.chaos.append("no 200 during warm-up")
    steps: list[tuple[float, Callable[[], None]]] = [
        (0.3, lambda: redis_outage(redis, recorder, report, t0)),
        (0.6, lambda: kill_worker(server, recorder, report, t0)),
    ]
    for at, step in steps:
        _bursts_until(t0 + at * seconds, sandbox, stop)
        step()
    _bursts_until(t0 + seconds, sandbox, stop)


def _bursts_until(when: float, sandbox: Any, stop: threading.Event) -> None:
    """Until ``when``: every half second the next upstream call answers 429 with Retry-After."""
    while time.monotonic() < when:
        sandbox.set_faults(rate_limit_next=1)
        stop.wait(min(0.5, max(0.0, when - time.monotonic())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="traffic duration (default 60)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    args = parser.parse_args(argv)
    report = run(
        args.seconds, users=args.users, threads=args.threads, workers=args.workers, fault_rate=args.fault_rate
    )
    print(report.format())
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
