"""The transport through real front ends: nginx (gzip, TLS from a private CA) and tinyproxy.

Each case renders a page with ``tc_dashboard`` and checks that its
``auth-token`` is one the sandbox introspects as valid, i.e. that a real
token came back through the front end.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from flask_toucan import UpstreamError
from flask_toucan.extension import get_state
from flask_toucan.serving import ThreadedServer
from flask_toucan.user import ToucanUser

from ..core.helpers import rsa_pem
from .helpers import API_KEY, auth_tokens, make_host, render_page

pytestmark = [pytest.mark.integration]


def assert_real_token(sandbox: Any, page: str, org: str = "acme") -> dict[str, Any]:
    tokens = auth_tokens(page)
    assert len(tokens) == 1, page
    info = sandbox.introspect(tokens[0])
    assert info["active"] is True, info
    assert info["attributes"]["organization_id"] == org
    return dict(info)


def test_nginx_really_gzips_the_token_api(nginx, sandbox):
    """The front end compresses (so the next tests prove decoding, not a plain pass-through)."""
    r = requests.post(
        f"{nginx.http_url}/embed/generate-token",
        json={"user": {"distinctId": "probe", "attributes": {"organization_id": "acme"}}},
        headers={"x-api-key": API_KEY, "Accept-Encoding": "gzip"},
        stream=True,
        timeout=10,
    )
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.raw.read(decode_content=False)[:2] == b"\x1f\x8b"


def test_api_mode_through_nginx_gzip(nginx, sandbox):
    app = make_host(TOUCAN_BASE_URL=nginx.http_url, TOUCAN_API_KEY=API_KEY)
    status, page = render_page(app)
    assert status == 200
    assert_real_token(sandbox, page)
    served = nginx.logged("POST /embed/generate-token")
    assert len(served) == 1 and " 200 enc=gzip " in served[0], nginx.access_log()
    assert "gzip" in served[0].split('ae="', 1)[1]  # we asked for it


def test_tls_with_a_private_ca_bundle(nginx, sandbox, ca_bundle):
    app = make_host(TOUCAN_BASE_URL=nginx.https_url, TOUCAN_API_KEY=API_KEY, TOUCAN_HTTP_CA_BUNDLE=ca_bundle)
    status, page = render_page(app)
    assert status == 200
    assert_real_token(sandbox, page)
    assert nginx.logged("POST /embed/generate-token HTTP/1.1 200 enc=gzip ")


def test_tls_without_the_ca_bundle_fails_cleanly(nginx, sandbox):
    app = make_host(TOUCAN_BASE_URL=nginx.https_url, TOUCAN_API_KEY=API_KEY)
    status, page = render_page(app)
    assert status == 200  # a placeholder, never a 500
    assert auth_tokens(page) == []
    assert 'data-toucan-placeholder="unavailable"' in page
    with app.test_request_context(), pytest.raises(UpstreamError, match="TLS verification failed") as info:
        get_state().manager.issue_token(ToucanUser("https://idp.test", "bob", {"org": "acme"}))
    assert API_KEY not in str(info.value)
    assert sandbox.stats.get("token_requests", 0) == 0  # nothing got past the handshake


def test_forward_proxy_for_https_sees_a_connect_only(nginx, sandbox, ca_bundle, tinyproxy):
    app = make_host(
        TOUCAN_BASE_URL=nginx.https_url,
        TOUCAN_API_KEY=API_KEY,
        TOUCAN_HTTP_CA_BUNDLE=ca_bundle,
        TOUCAN_HTTP_PROXY=tinyproxy.url,
    )
    status, page = render_page(app)
    assert status == 200
    assert_real_token(sandbox, page)
    assert tinyproxy.requests() == [f"CONNECT 127.0.0.1:{nginx.https_port}"]
    assert API_KEY not in tinyproxy.log()
    reached = [seen for seen in sandbox.recorder.seen if seen["path"] == "/embed/generate-token"]
    assert [seen["x-api-key"] for seen in reached] == [API_KEY]  # the key reached Toucan, once


def test_forward_proxy_for_http_carries_the_call(sandbox, tinyproxy):
    app = make_host(TOUCAN_BASE_URL=sandbox.url, TOUCAN_API_KEY=API_KEY, TOUCAN_HTTP_PROXY=tinyproxy.url)
    status, page = render_page(app)
    assert status == 200
    assert_real_token(sandbox, page)
    assert tinyproxy.requests() == [f"POST {sandbox.url}/embed/generate-token"]
    (reached,) = [seen for seen in sandbox.recorder.seen if seen["path"] == "/embed/generate-token"]
    assert "tinyproxy" in reached["via"]  # it came through the proxy...
    assert reached["x-api-key"] == API_KEY  # ...to Toucan, with the key as the only credential
    assert "proxy-authorization" not in reached


def test_environment_proxy_is_ignored_by_default(sandbox, tinyproxy, monkeypatch):
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url)
    monkeypatch.setenv("http_proxy", tinyproxy.url)
    status, page = render_page(make_host(TOUCAN_BASE_URL=sandbox.url, TOUCAN_API_KEY=API_KEY))
    assert status == 200
    assert_real_token(sandbox, page)
    assert tinyproxy.requests() == []
    status, page = render_page(
        make_host(TOUCAN_BASE_URL=sandbox.url, TOUCAN_API_KEY=API_KEY, TOUCAN_HTTP_TRUST_ENV=True), "globex"
    )
    assert status == 200
    assert_real_token(sandbox, page, "globex")
    assert len(tinyproxy.requests()) == 1


def test_signed_exchange_through_nginx_tls(toucan_sandbox_factory, nginx_factory, ca_bundle):
    """The classic profile's exchange behind a TLS front end with a private CA.

    The realm token endpoint, with client authentication (the client secret).
    """
    holder: dict[str, Any] = {}
    host = ThreadedServer(lambda environ, start: holder["app"](environ, start)).start()
    try:
        sandbox = toucan_sandbox_factory(
            host_jwks_url=f"{host.url}/toucan/.well-known/jwks.json", audience="toucan-sandbox"
        )
        fe = nginx_factory(sandbox.url)
        holder["app"] = app = make_host(
            TOUCAN_MODE="signed",
            TOUCAN_BASE_URL=fe.https_url,
            TOUCAN_SIGNING_KEY=rsa_pem(0),
            TOUCAN_ISSUER=host.url,
            TOUCAN_AUDIENCE="toucan-sandbox",
            TOUCAN_EXCHANGE_URL=fe.https_url + sandbox.exchange_url.removeprefix(sandbox.url),
            TOUCAN_EXCHANGE_CLIENT_SECRET=sandbox.exchange_client_secret,
            TOUCAN_HTTP_CA_BUNDLE=ca_bundle,
        )
        status, page = render_page(app)
        assert status == 200
        info = assert_real_token(sandbox, page)
        assert info["source"] == "exchange"
        assert sandbox.stats["exchanges"] == 1
        assert fe.logged("POST /api/auth/realms/sandbox/protocol/openid-connect/token HTTP/1.1 200 ")
    finally:
        host.stop()
