"""Shared pieces of the benchmarks: settings, the interleaved timer, host apps, result rows.

Every benchmark compares flask-toucan with a baseline *in the same run*, in
interleaved rounds (the order of the sides rotates each round), and reports the
median of the per-round ratios: machine drift (other jobs, CPU frequency, a
noisy neighbour) hits both sides of a round alike, so it cancels in the ratio.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, g, session
from werkzeug.test import EnvironBuilder

from flask_toucan import Toucan
from flask_toucan.keys import generate_private_key_pem
from flask_toucan.user import ToucanUser

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
TEMPLATES = BENCH_DIR / "templates"

SECRET_KEY = "bench-secret-key-0123456789abcdef0123456789abcdef"
ISSUER = "https://host.bench.example"
AUDIENCE = "toucan-embed"
IDP = "https://idp.bench.example"
NONCE = "bench-nonce-0123456789"
FAKE_BASE_URL = "https://toucan.bench.example"
#: Leeway (seconds) for the honesty checks that decode the benchmarks' tokens.
#: The ``signing`` sides use one-second tokens whose ``iat`` is rounded down to
#: the second, so without leeway a busy machine sees a fresh token as expired
#: between signing and decoding. The checks are about the signature and the
#: claims, not the lifetime, so a generous leeway costs nothing.
DECODE_LEEWAY = 60

#: The identity every in-process benchmark logs in (three attributes, AI allowed).
CLAIMS: dict[str, Any] = {
    "sub": "alice",
    "iss": IDP,
    "email": "alice@acme.example",
    "org": "acme",
    "region": "emea",
    "groups": ["finance", "emea-managers"],
    "ai": True,
}


def claims_for(n: int) -> dict[str, Any]:
    """Bench user ``n`` (several users for the load test; same shape as :data:`CLAIMS`)."""
    return {**CLAIMS, "sub": f"user{n}", "email": f"user{n}@acme.example"}


# ----------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """How long each benchmark runs (``--quick`` shrinks everything)."""

    quick: bool
    mint_rounds: int
    mint_ops: int
    render_rounds: int
    render_ops: int
    load_rounds: int
    load_seconds: float
    load_warmup: float
    load_processes: int
    load_threads: int
    gunicorn_workers: int
    gunicorn_threads: int
    concurrent_renders: int = 100

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if quick:
            return cls(
                quick=True,
                mint_rounds=9,
                mint_ops=5,
                render_rounds=5,
                render_ops=20,
                load_rounds=1,
                load_seconds=0.6,
                load_warmup=0.3,
                load_processes=2,
                load_threads=3,
                gunicorn_workers=2,
                gunicorn_threads=4,
            )
        return cls(
            quick=False,
            mint_rounds=101,
            mint_ops=10,
            render_rounds=25,
            render_ops=50,
            load_rounds=5,
            load_seconds=3.0,
            load_warmup=1.0,
            load_processes=2,
            load_threads=3,
            gunicorn_workers=2,
            gunicorn_threads=4,
        )


# -------------------------------------------------------------------- rows
@dataclass
class Row:
    """One line of the results table."""

    key: str  # "1", "2", "3a", ...
    title: str
    toucan: str  # absolute figure(s) of the flask-toucan side
    baseline: str  # absolute figure(s) of the baseline side
    ratio: float | None
    ratio_text: str
    target: str
    passed: bool
    notes: list[str] = field(default_factory=list)

    @property
    def result(self) -> str:
        return "PASS" if self.passed else "MISS"


# ------------------------------------------------------------------ timing
def interleaved(
    sides: Mapping[str, Callable[[int], float]], rounds: int, ops: int, warmup_rounds: int = 2
) -> dict[str, list[float]]:
    """Run ``rounds`` rounds; each round runs every side ``ops`` times, order rotating.

    A side is ``fn(n) -> seconds`` (it times its own work, so set-up that is not
    part of the measured operation stays outside the clock). Returns the
    seconds *per operation* of each side, one value per round. The garbage
    collector is off while timing (as in :mod:`timeit`), for both sides.
    """
    names = list(sides)
    out: dict[str, list[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    try:
        for r in range(warmup_rounds + rounds):
            gc.collect()
            gc.disable()
            order = names[r % len(names) :] + names[: r % len(names)]
            timings = {name: sides[name](ops) / ops for name in order}
            gc.enable()
            if r >= warmup_rounds:
                for name, t in timings.items():
                    out[name].append(t)
    finally:
        if gc_was_enabled:
            gc.enable()
    return out


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median of per-round ratios ``a[i] / b[i]`` (drift cancels within a round)."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


# -------------------------------------------------------------------- apps
@lru_cache(maxsize=1)
def rsa_pem() -> str:
    """One RSA-2048 key per run (RS256, the signed-mode default)."""
    return generate_private_key_pem("RSA", 2048).decode()


def build_app(
    mode: str,
    *,
    name: str = "bench-host",
    store: Any = "memory",
    ttl: int | None = None,
    base_url: str | None = FAKE_BASE_URL,
    api_key: str | None = None,
    signing_key: str | None = None,
    **extra: Any,
) -> tuple[Flask, Toucan]:
    """A host app configured the way the docs tell users to, for one mode.

    Mappers: ``organization_id`` and ``region`` (scalars), ``groups`` (a list);
    permissions: dashboards for everyone, the assistant for users with ``ai``.
    The refresh endpoint's rate limit is off (the load test would trip it).
    """
    app = Flask(name, template_folder=str(TEMPLATES))
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TOUCAN_MODE=mode,
        TOUCAN_STORE=store,
        TOUCAN_RATE_LIMIT=None,
        TOUCAN_BASE_URL=base_url,
    )
    if ttl is not None:
        app.config["TOUCAN_TOKEN_TTL"] = ttl
    if mode == "signed":
        app.config.update(
            TOUCAN_SIGNING_KEY=signing_key or rsa_pem(),
            TOUCAN_SIGNING_ALGORITHM="RS256",
            TOUCAN_ISSUER=ISSUER,
            TOUCAN_AUDIENCE=AUDIENCE,
        )
    else:
        app.config["TOUCAN_API_KEY"] = api_key
    app.config.update(extra)

    toucan = Toucan()

    @toucan.attribute("organization_id")
    def organization(user: ToucanUser) -> Any:
        return user["org"]

    @toucan.attribute("region")
    def region(user: ToucanUser) -> Any:
        return user.get("region")

    @toucan.attribute("groups", many=True)
    def groups(user: ToucanUser) -> Any:
        return user.get("groups")

    @toucan.permissions
    def permissions(user: ToucanUser) -> dict[str, dict[str, bool]]:
        granted = {"dashboard": {"can_view": True}}
        if user.get("ai"):
            granted["ai"] = {"can_query": True}
        return granted

    toucan.init_app(app)
    return app, toucan


def login_cookie(app: Flask, toucan: Toucan, claims: Mapping[str, Any]) -> tuple[str, str]:
    """Log ``claims`` in through ``toucan.login_user``; return (Cookie header, CSRF token)."""
    with app.test_request_context("/"):
        toucan.login_user(claims)
        csrf = toucan.csrf_token()
        value = app.session_interface.get_signing_serializer(app).dumps(dict(session))  # type: ignore[attr-defined]
    return f"{app.config['SESSION_COOKIE_NAME']}={value}", csrf


def page_environ(cookie: str, path: str = "/page") -> dict[str, Any]:
    """A WSGI environ for a logged-in GET, built once and copied per request."""
    return EnvironBuilder(
        path=path, base_url="http://127.0.0.1:8000", headers={"Cookie": cookie}
    ).get_environ()


def request_timer(
    app: Flask, environ: Mapping[str, Any], render: Callable[[], str]
) -> Callable[[int], float]:
    """``fn(n)``: n fresh request contexts; only ``render()`` is on the clock.

    A fresh context per render, as a real request has: nothing memoised on
    ``g`` by the previous render (the kit's per-request token memo, the CSRF
    token, the loaded user) carries over.
    """

    def run(n: int) -> float:
        total = 0.0
        for _ in range(n):
            with app.request_context(dict(environ)):
                g.csp_nonce = NONCE
                t0 = time.perf_counter()
                render()
                total += time.perf_counter() - t0
        return total

    return run


def machine_summary() -> str:
    import platform
    from importlib.metadata import version

    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load avg {os.getloadavg()[0]:.2f} at start"
    return (
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs{load}; Flask {version('flask')}, PyJWT {version('pyjwt')}, "
        f"cryptography {version('cryptography')}, gunicorn {version('gunicorn')}"
    )
