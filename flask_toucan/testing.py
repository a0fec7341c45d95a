"""pytest plugin: a Toucan sandbox for the tests of apps that use flask-toucan.

Registered through the ``pytest11`` entry point, so installing
``flask-toucan[sandbox]`` makes these fixtures available everywhere:

``toucan_sandbox``
    A sandbox started on a free 127.0.0.1 port for one test, stopped after it.
    Yields a :class:`flask_toucan.sandbox.SandboxServer` (``.url``,
    ``.api_key``, ``.introspect(token)``, ``.stats``, ``.set_faults(...)``,
    ``.issue_token(...)``, ``.data_file``).
``toucan_sandbox_factory``
    ``toucan_sandbox_factory(**options)`` starts one with options (token
    lifetime, origins, host JWKS URL, faults, your own ``tenants`` and
    ``sales`` rows...); all stop at the end of the test.
``toucan_config``
    ``{"TOUCAN_BASE_URL": ..., "TOUCAN_API_KEY": ...}`` of ``toucan_sandbox``,
    ready for ``app.config.update(toucan_config)``.

Function scope: every test gets a fresh sandbox (new key, zero counters, no
faults left over from another test); starting one takes a few milliseconds.
The sandbox is imported inside the fixtures, so users without the ``sandbox``
extra (joserfc) can still run pytest: only tests using these fixtures fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .sandbox import SandboxServer


@pytest.fixture
def toucan_sandbox_factory() -> Iterator[Callable[..., SandboxServer]]:
    """Factory: ``toucan_sandbox_factory(**options)`` -> a started sandbox."""
    try:
        from .sandbox import SandboxServer
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        pytest.fail(
            f"the Toucan sandbox needs the 'sandbox' extra: pip install flask-toucan[sandbox] ({exc})"
        )
    started: list[SandboxServer] = []

    def factory(**options: Any) -> SandboxServer:
        server = SandboxServer(**options).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def toucan_sandbox(toucan_sandbox_factory: Callable[..., SandboxServer]) -> SandboxServer:
    """A sandbox with default options on a free loopback port."""
    return toucan_sandbox_factory()


@pytest.fixture
def toucan_config(toucan_sandbox: SandboxServer) -> dict[str, str]:
    """The ``TOUCAN_*`` settings that point an app (api mode) at ``toucan_sandbox``."""
    return {"TOUCAN_BASE_URL": toucan_sandbox.url, "TOUCAN_API_KEY": toucan_sandbox.api_key}
