"""Fixtures of this folder; the plain helpers are in helpers.py.

Fixtures for the front-end tests: a test CA, nginx, tinyproxy, a host app, a recording sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from .frontends import Nginx, Tinyproxy, start_nginx, start_tinyproxy
from .helpers import API_KEY, Recorder


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def sandbox(toucan_sandbox_factory: Callable[..., Any]) -> Any:
    """A sandbox whose ``.recorder.seen`` lists the headers of what reached it."""
    server = toucan_sandbox_factory(api_key=API_KEY)
    server.recorder = Recorder(server.app.wsgi_app)
    server.app.wsgi_app = server.recorder
    return server


@pytest.fixture
def nginx_factory(ca: trustme.CA, tmp_path: Path) -> Iterator[Callable[[str], Nginx]]:
    started: list[Nginx] = []

    def factory(upstream_url: str) -> Nginx:
        cert = ca.issue_cert("127.0.0.1", "localhost")
        upstream = upstream_url.split("://", 1)[1]
        fe = start_nginx(
            upstream,
            tmp_path / f"nginx{len(started)}",
            b"".join(blob.bytes() for blob in cert.cert_chain_pems),
            cert.private_key_pem.bytes(),
        )
        started.append(fe)
        return fe

    yield factory
    for fe in started:
        fe.stop()


@pytest.fixture
def nginx(nginx_factory: Callable[[str], Nginx], sandbox: Any) -> Nginx:
    """nginx (gzip, TLS from the test CA) in front of this test's sandbox."""
    return nginx_factory(sandbox.url)


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    proxy = start_tinyproxy(tmp_path / "tinyproxy")
    yield proxy
    proxy.stop()
