"""``flask toucan check`` and ``check --live``: against the sandbox, a stopped sandbox, odd upstreams."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from flask_toucan.serving import ThreadedServer

from ..core.helpers import rsa_pem
from ..core.transport_server import send, start_stub, token_body
from .helpers import API_KEY, make_host

pytestmark = [pytest.mark.integration]


def run_check(app: Any, *args: str) -> Any:
    # Inside the app's own context: a context another test left pushed must not stand in for it.
    with app.app_context():
        return app.test_cli_runner().invoke(args=["toucan", "check", *args])


def test_live_check_passes_against_the_sandbox(sandbox):
    app = make_host(TOUCAN_BASE_URL=sandbox.url, TOUCAN_API_KEY=API_KEY)
    result = run_check(app, "--live", "--attr", "organization_id=acme")
    out = result.output
    assert result.exit_code == 0, out
    assert "Toucan token API at 127.0.0.1:" in out and ": HTTP 200 in " in out
    assert "lifetime 3599 s" in out or "lifetime 3600 s" in out
    assert "server-url http://127.0.0.1:" in out and "(reachable)" in out
    assert "clock skew: " in out and "(ok, within 30 s)" in out
    assert "required attributes: organization_id - given with --attr" in out
    assert out.rstrip().endswith("ok")
    assert sandbox.stats["tokens_issued"] == 1
    assert API_KEY not in out


def test_live_check_uses_the_mappers_with_claims(sandbox):
    app = make_host(TOUCAN_BASE_URL=sandbox.url, TOUCAN_API_KEY=API_KEY)
    result = run_check(app, "--live", "--user", "probe-7", "--claim", "org=globex")
    assert result.exit_code == 0, result.output
    assert "mapped from the probe's claims" in result.output


def test_live_check_names_a_missing_required_attribute(sandbox):
    app = make_host(TOUCAN_BASE_URL=sandbox.url, TOUCAN_API_KEY=API_KEY)
    result = run_check(app, "--live")
    assert result.exit_code == 1
    assert "FAIL required-attributes" in result.output
    assert "live check failed: required-attributes" in result.output


def test_live_check_fails_with_a_named_reason_when_the_sandbox_is_stopped(sandbox):
    app = make_host(TOUCAN_BASE_URL=sandbox.url, TOUCAN_API_KEY=API_KEY, TOUCAN_HTTP_RETRIES=0)
    sandbox.stop()
    result = run_check(app, "--live", "--attr", "organization_id=acme")
    assert result.exit_code == 1
    assert "FAIL token-api: Toucan token API at 127.0.0.1:" in result.output
    assert "is unreachable (connection failed)" in result.output
    assert "FAIL server-url" in result.output
    assert "live check failed: token-api, server-url" in result.output


def test_live_check_reports_a_permanent_refusal_and_clock_skew():
    skewed = format_datetime(datetime.now(UTC) + timedelta(minutes=2), usegmt=True)
    refuse = start_stub(
        lambda h, n: send(h, 403, b'{"code": "NO_ACTIVE_SUBSCRIPTION", "message": "m"}', {"Date": skewed})
    )
    skew = start_stub(lambda h, n: send(h, 200, token_body(), {"Date": skewed}))
    try:
        result = run_check(
            make_host(TOUCAN_BASE_URL=refuse.url, TOUCAN_API_KEY=API_KEY),
            "--live",
            "--attr",
            "organization_id=a",
        )
        assert result.exit_code == 1
        assert "FAIL token-api: refused (HTTP 403, code NO_ACTIVE_SUBSCRIPTION)" in result.output
        assert refuse.calls == 1 + 1  # one token call (not retried) + the server-url probe
        result = run_check(
            make_host(TOUCAN_BASE_URL=skew.url, TOUCAN_API_KEY=API_KEY),
            "--live",
            "--attr",
            "organization_id=a",
        )
        assert result.exit_code == 0, result.output
        shown = re.search(r"warning: clock skew \+(\d+) s", result.output)
        assert shown and 110 <= int(shown.group(1)) <= 121, result.output  # +120 s, Date has 1 s resolution
    finally:
        refuse.stop()
        skew.stop()


def test_live_check_in_signed_mode_reports_the_exchange(toucan_sandbox_factory):
    holder: dict[str, Any] = {}
    host = ThreadedServer(lambda environ, start: holder["app"](environ, start)).start()
    try:
        sandbox = toucan_sandbox_factory(host_jwks_url=f"{host.url}/toucan/.well-known/jwks.json")
        holder["app"] = app = make_host(
            TOUCAN_MODE="signed",
            TOUCAN_BASE_URL=sandbox.url,
            TOUCAN_SIGNING_KEY=rsa_pem(0),
            TOUCAN_ISSUER=host.url,
            TOUCAN_AUDIENCE="toucan-sandbox",
            TOUCAN_EXCHANGE_URL=sandbox.exchange_url,
            TOUCAN_EXCHANGE_CLIENT_SECRET=sandbox.exchange_client_secret,
        )
        result = run_check(app, "--live", "--attr", "organization_id=acme")
        assert result.exit_code == 0, result.output
        assert "token exchange at 127.0.0.1:" in result.output and ": HTTP 200 in " in result.output
        assert sandbox.stats["exchanges"] == 1
    finally:
        host.stop()


def test_check_output_masks_passwords_in_urls():
    app = make_host(
        TOUCAN_BASE_URL="http://127.0.0.1:9",
        TOUCAN_API_KEY=API_KEY,
        TOUCAN_STORE="redis://:s3cret-redis-pw@127.0.0.1:6390/0",
        TOUCAN_HTTP_PROXY="http://egress:s3cret-proxy-pw@127.0.0.1:3128",
    )
    result = run_check(app)
    assert result.exit_code == 0, result.output
    for secret in ("s3cret-redis-pw", "s3cret-proxy-pw", API_KEY):
        assert secret not in result.output
    assert "store: Redis (redis, 127.0.0.1:6390)" in result.output  # kind and place, never the URL
    assert "proxy http://egress:***@127.0.0.1:3128" in result.output
