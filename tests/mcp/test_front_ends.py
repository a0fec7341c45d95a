"""The MCP session uses the token API's network settings: a private CA (TLS front end) and a proxy."""

from __future__ import annotations

import pytest
import trustme

from tests.integration.frontends import start_nginx, start_tinyproxy

from .helpers import ACME, make_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_mcp_through_nginx_tls_with_the_private_ca(toucan_sandbox, tmp_path):
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    cert = ca.issue_cert("127.0.0.1")
    front = start_nginx(
        toucan_sandbox.url.split("://", 1)[1],
        tmp_path / "nginx",
        b"".join(blob.bytes() for blob in cert.cert_chain_pems),
        cert.private_key_pem.bytes(),
    )
    try:
        app, toucan = make_app(front.https_url, toucan_sandbox.api_key, TOUCAN_HTTP_CA_BUNDLE=str(bundle))
        with app.test_request_context():
            toucan.login_user(ACME)
            with toucan.assistant() as assistant:
                envelope = assistant.ask("What are my total sales?")
            dashboard = toucan.api.dashboard("regional-performance")
        assert envelope["answer"].startswith("Total sales for Acme")
        assert dashboard["tenant"]["id"] == "acme"
        assert any("/api/mcp" in line for line in front.logged("/api/mcp"))
    finally:
        front.stop()


def test_mcp_through_the_proxy(toucan_sandbox, tmp_path):
    proxy = start_tinyproxy(tmp_path / "tinyproxy")
    try:
        app, toucan = make_app(toucan_sandbox.url, toucan_sandbox.api_key, TOUCAN_HTTP_PROXY=proxy.url)
        with app.test_request_context():
            toucan.login_user(ACME)
            with toucan.assistant() as assistant:
                assert assistant.tools()[0]["name"] == "ask_toucan_assistant"
        assert any("/api/mcp" in line for line in proxy.requests())
    finally:
        proxy.stop()
