"""A real OpenID Provider for the tests: node-oidc-provider (OpenID Certified), see tests/oidc_provider/.

``oidc_provider`` (session-scoped) starts ``node tests/oidc_provider/server.mjs``, reads the
URL it prints once it listens on 127.0.0.1 (port 0), waits for its discovery document, and
stops it at the end. Skipped (failed under CI) when node or the npm package is missing:
``.ci/run`` installs it with ``npm ci`` from the committed lock file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .integration.frontends import stop
from .waiting import wait_until

HERE = Path(__file__).resolve().parent / "oidc_provider"


class OidcProvider:
    """The running provider: ``.url`` (its issuer) and the test-only admin hook."""

    def __init__(self, url: str) -> None:
        self.url = url

    def admin(self, hook: str, **params: Any) -> Any:
        json_body = params.pop("json", None)
        resp = requests.post(f"{self.url}/__admin/{hook}", params=params, json=json_body, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def register_client(self, **metadata: Any) -> None:
        self.admin("client", json=metadata)


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}; .ci/run installs it")
    pytest.skip(why)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed (apt-get install nodejs)")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        _unavailable("oidc-provider is not installed (cd tests/oidc_provider && npm ci)")
    proc = subprocess.Popen(
        [str(node), str(HERE / "server.mjs")],
        cwd=HERE,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("OIDC_PROVIDER_URL="):
                found.append(line.split("=", 1)[1].strip())

    threading.Thread(target=read, daemon=True).start()
    try:
        wait_until(lambda: found or proc.poll() is not None, 60, what="oidc-provider to print its URL")
        assert found, f"oidc-provider exited with {proc.returncode}"
        url = found[0]
        wait_until(
            lambda: requests.get(f"{url}/.well-known/openid-configuration", timeout=5).ok,
            30,
            what="oidc-provider's discovery document",
        )
        yield OidcProvider(url)
    finally:
        stop(proc)
