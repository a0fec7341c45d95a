"""Fixtures for the front-end tests: a test CA, nginx, tinyproxy, a host app, a recording sandbox."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from flask import Flask, render_template_string

from flask_toucan import Toucan

from .frontends import Nginx, Tinyproxy, start_nginx, start_tinyproxy

SECRET_KEY = "integration-secret-key-0123456789abcdef0123"
#: Fixed so that the tests can look for it in proxy logs.
API_KEY = "tk_integration_SECRET_api_key_0123456789"

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>fe</title>
{% from "toucan/components.html" import toucan_scripts, tc_dashboard %}{{ toucan_scripts() }}</head>
<body>{{ tc_dashboard("sales-overview") }}</body></html>"""


def auth_tokens(page: str) -> list[str]:
    """The ``auth-token`` attributes of the page's components."""
    return [html.unescape(v) for v in re.findall(r'auth-token="([^"]*)"', page)]


def make_host(**config: Any) -> Flask:
    """A host app rendering ``tc_dashboard`` for ``/as/<org>`` (logs the user in first)."""
    app = Flask(f"fe-host-{id(config)}")
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True, TOUCAN_RATE_LIMIT=None)
    app.config.update(config)
    toucan = Toucan()

    @toucan.attribute("organization_id")
    def organization(user: Any) -> Any:
        return user["org"]

    toucan.init_app(app)

    @app.get("/as/<org>")
    def as_org(org: str) -> str:
        toucan.login_user({"sub": f"user-{org}", "iss": "https://idp.test", "org": org})
        return render_template_string(PAGE)

    app.extensions["fe_toucan"] = toucan
    return app


def render_page(app: Flask, org: str = "acme") -> tuple[int, str]:
    resp = app.test_client().get(f"/as/{org}")
    return resp.status_code, resp.get_data(as_text=True)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


class Recorder:
    """WSGI middleware around the sandbox: the headers of every request that reached it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        self.seen.append({"path": environ.get("PATH_INFO", ""), **headers})
        return self.app(environ, start_response)


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
