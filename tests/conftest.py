"""Shared test harness: real servers on 127.0.0.1 and headless Chromium.

Sub-folders (core/, sandbox/, kit/, demo/) hold their own fixtures; what every
folder needs lives here.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest

from flask_toucan.serving import ThreadedServer

# One OpenID provider per run for every test directory (pytest-iam's own fixture,
# overridden to drop the app context it keeps pushed; see oidc_fixtures).
from .core.oidc_fixtures import iam_server  # noqa: F401 - pytest fixture

# A second real provider: node-oidc-provider (back-channel and RP-initiated logout, refresh tokens).
from .oidc_provider_fixture import oidc_provider  # noqa: F401 - pytest fixture

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that drives Chromium is a ``browser`` test, marked or not.

    Runs before the ``-m`` selection, so plain ``pytest`` (``-m 'not browser
    and not slow'``, see pyproject.toml) never starts a browser by accident.
    """
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def live_server() -> Iterator[Callable[..., ThreadedServer]]:
    """Factory: ``live_server(app)`` serves ``app`` on a free loopback port until the test ends."""
    started: list[ThreadedServer] = []

    def factory(app: Any, port: int = 0) -> ThreadedServer:
        srv = ThreadedServer(app, "127.0.0.1", port).start()
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def artifacts_dir() -> str:
    """Where browser tests save screenshots (kept by CI as artefacts)."""
    path = os.path.join(os.path.dirname(__file__), "..", "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return os.path.abspath(path)


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[..., Any]]:
    """Factory: ``redis_server_factory(persistent=False)`` -> a started real ``redis-server``.

    On a unix socket in a directory of its own; ``.url``, ``.stop()``,
    ``.start()``, ``.restart()``. All are stopped and removed after the test.
    """
    from .redis_server import REDIS_SERVER, RedisServer

    if not os.path.exists(REDIS_SERVER):
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run installs it with apt-get")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    started: list[RedisServer] = []

    def factory(*, persistent: bool = False) -> RedisServer:
        server = RedisServer(persistent=persistent)
        started.append(server)
        return server.start()

    yield factory
    for server in started:
        server.close()


@pytest.fixture
def redis_server(redis_server_factory: Callable[..., Any]) -> Any:
    """A real ``redis-server`` without persistence (see ``redis_server_factory``)."""
    return redis_server_factory()


# Hypothesis: a loaded 2-core CI box is slow, not wrong. No per-example deadline and
# no "too slow" health check (both fail by timing alone), no example database on
# disk; under CI the examples are derandomised, so a run is repeatable.
hypothesis.settings.register_profile(
    "toucan",
    deadline=None,
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
    derandomize=bool(os.environ.get("CI")),
)
hypothesis.settings.load_profile("toucan")
