"""Fixtures of this folder; the plain helpers are in helpers.py.

The whole demo stack for browser tests, started by the demo's own start-up code.

``demo_stack`` is one provider + sandbox + portal per module, on free ports,
with a 5-second token lifetime so refreshes happen within the test budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from demo.stack import DemoStack, StackOptions

from .helpers import CSP_PROBE, TOKEN_LIFETIME, Visitor


@pytest.fixture(scope="module")
def demo_stack() -> Iterator[DemoStack]:
    stack = DemoStack(StackOptions(port=0, idp_port=0, sandbox_port=0, token_lifetime=TOKEN_LIFETIME))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def visitor(browser: Any, demo_stack: DemoStack) -> Iterator[Callable[[], Visitor]]:
    contexts: list[Any] = []

    def factory(width: int = 1280, height: int = 900) -> Visitor:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.add_init_script(CSP_PROBE)
        contexts.append(context)
        v = Visitor(demo_stack, context)

        def on_response(resp: Any) -> None:
            if resp.request.method == "POST" and resp.url.endswith("/toucan/token"):
                import time

                v.token_posts.append((time.monotonic(), resp.status))

        context.on("response", on_response)
        return v

    yield factory
    for context in contexts:
        context.close()
