"""Signed mode: host JWKS, the RFC 7523 exchange, kid refetch cool-down, jti replay, direct mode."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import pytest
import requests
from flask import Flask, jsonify

from flask_toucan.keys import KeySet, generate_private_key_pem, load_key_set
from flask_toucan.sandbox import hostkeys
from flask_toucan.signing import build_claims, sign
from tests.waiting import FakeClock

from .conftest import sql

pytestmark = pytest.mark.integration

ISSUER = "https://host.example"
AUDIENCE = "toucan-embed"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@lru_cache(maxsize=4)
def key_set(kid: str) -> KeySet:
    return load_key_set(generate_private_key_pem("RSA", 2048), kid=kid)


class Host:
    """A stand-in host app publishing its JWKS at /toucan/.well-known/jwks.json."""

    def __init__(self, live_server: Any) -> None:
        self.published = [key_set("host-a")]
        self.hits = 0
        app = Flask("host-jwks")

        @app.get("/toucan/.well-known/jwks.json")
        def jwks() -> Any:
            self.hits += 1
            return jsonify({"keys": [k for ks in self.published for k in ks.jwks()["keys"]]})

        self.server = live_server(app)
        self.jwks_url = f"{self.server.url}/toucan/.well-known/jwks.json"


def assertion(
    kid: str = "host-a",
    attributes: dict[str, Any] | None = None,
    *,
    now: float | None = None,
    ttl: int = 300,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    permissions: dict[str, Any] | None = None,
) -> str:
    claims = build_claims(
        subject="https://idp.example|alice",
        attributes=attributes or {"organization_id": "acme", "region": "emea", "roles": ["analyst"]},
        permissions=permissions or {"dashboard": {"can_view": True}, "ai": {"can_query": True}},
        issuer=issuer,
        audience=audience,
        ttl=ttl,
        role="explorer",
        now=now,
    )
    return sign(claims, key_set(kid).current)


def exchange(sandbox: Any, jwt_: str) -> requests.Response:
    return requests.post(
        f"{sandbox.url}/oauth/token", data={"grant_type": JWT_BEARER, "assertion": jwt_}, timeout=10
    )


@pytest.fixture
def host(live_server: Any) -> Host:
    return Host(live_server)


@pytest.fixture
def signed_sandbox(host: Host, toucan_sandbox_factory: Any) -> Any:
    return toucan_sandbox_factory(
        host_jwks_url=host.jwks_url, issuer=ISSUER, audience=AUDIENCE, jwks_cooldown=1.0
    )


def dashboard(sandbox: Any, token: str, dashboard_id: str = "regional-performance") -> requests.Response:
    return requests.get(
        f"{sandbox.url}/api/v1/dashboards/{dashboard_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_exchange_accepted_and_data_scoped(signed_sandbox: Any, host: Host) -> None:
    resp = exchange(signed_sandbox, assertion())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["access_token"].count(".") == 4  # opaque JWE, not the host's JWT
    assert resp.headers["Cache-Control"] == "no-store"
    info = signed_sandbox.introspect(body["access_token"])
    assert info["active"] and info["source"] == "exchange"
    assert info["attributes"] == {
        "organization_id": "acme",
        "region": "emea",
        "roles": ["analyst"],
        "groups": [],
    }

    data = dashboard(signed_sandbox, body["access_token"]).json()
    expected = sql(
        signed_sandbox.data_file,
        "SELECT region, SUM(amount) FROM sales WHERE organization_id = ? AND region = ? GROUP BY region",
        ("acme", "emea"),
    )
    assert [(r["region"], r["amount"]) for r in data["rows"]] == expected
    assert data["tenant"] == {"id": "acme", "name": "Acme Corporation"}
    assert signed_sandbox.stats["exchanges"] == 1 and host.hits == 1


def test_replayed_jti_is_refused(signed_sandbox: Any) -> None:
    jwt_ = assertion()
    assert exchange(signed_sandbox, jwt_).status_code == 200
    again = exchange(signed_sandbox, jwt_)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert "replay" in again.json()["error_description"]
    assert exchange(signed_sandbox, assertion()).status_code == 200  # a fresh jti is fine


def test_unknown_kid_refetches_once_per_cooldown(
    signed_sandbox: Any, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cool-down runs on an injected clock: it moves only when the test says
    # so, so "within the cool-down" holds however slow the machine is.
    clock = FakeClock().install(monkeypatch, hostkeys)
    assert exchange(signed_sandbox, assertion("host-a")).status_code == 200
    assert host.hits == 1
    # The host rotates: key B is published. Past the cool-down, the first token
    # with kid B triggers one refetch; the following ones use the cache.
    host.published = [key_set("host-a"), key_set("host-b")]
    clock.advance(1.1)  # past the 1 s cool-down
    assert [exchange(signed_sandbox, assertion("host-b")).status_code for _ in range(5)] == [200] * 5
    assert host.hits == 2
    # A kid the host never published: refused, and no refetch within the cool-down.
    statuses = [exchange(signed_sandbox, assertion("host-c")) for _ in range(6)]
    assert {r.status_code for r in statuses} == {400}
    assert {r.json()["error"] for r in statuses} == {"invalid_grant"}
    assert host.hits == 2
    assert signed_sandbox.stats["jwks_fetches"] == 2


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"issuer": "https://evil.example"}, "issuer"),
        ({"audience": "someone-else"}, "audience"),
        ({"now": time.time() - 4000}, "expired"),
        ({"attributes": {"organization_id": "acme", "tenant": "x"}}, "tenant"),
    ],
)
def test_bad_assertions_are_invalid_grant(signed_sandbox: Any, kwargs: dict[str, Any], reason: str) -> None:
    resp = exchange(signed_sandbox, assertion(**kwargs))
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"
    assert reason in resp.json()["error_description"]


def test_grant_type_and_mode_errors(signed_sandbox: Any, toucan_sandbox: Any) -> None:
    wrong = requests.post(f"{signed_sandbox.url}/oauth/token", data={"grant_type": "password"}, timeout=5)
    assert wrong.status_code == 400 and wrong.json()["error"] == "unsupported_grant_type"
    missing = requests.post(f"{signed_sandbox.url}/oauth/token", data={"grant_type": JWT_BEARER}, timeout=5)
    assert missing.json()["error"] == "invalid_request"
    off = exchange(toucan_sandbox, assertion())  # a sandbox started without a host JWKS URL
    assert off.status_code == 400 and off.json()["error"] == "unsupported_grant_type"


def test_direct_mode_accepts_host_jwt_on_data_api(signed_sandbox: Any) -> None:
    jwt_ = assertion(attributes={"organization_id": "globex"})
    first, second = dashboard(signed_sandbox, jwt_), dashboard(signed_sandbox, jwt_)
    assert first.status_code == second.status_code == 200  # a page reuses its token: no jti rule here
    assert first.json()["tenant"]["id"] == "globex"
    assert {r["region"] for r in first.json()["rows"]} == {"emea", "amer", "apac"}
    expired = dashboard(signed_sandbox, assertion(now=time.time() - 4000))
    assert expired.status_code == 401 and expired.json()["error"] == "token_expired"
    forged = dashboard(signed_sandbox, assertion(issuer="https://evil.example"))
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_token"
    assert signed_sandbox.introspect(jwt_)["source"] == "direct"


def test_host_jwt_not_accepted_without_signed_mode(toucan_sandbox: Any) -> None:
    resp = dashboard(toucan_sandbox, assertion())
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_token"


def test_flask_toucan_signed_mode_end_to_end(live_server: Any, toucan_sandbox_factory: Any) -> None:
    """A host app in ``signed`` mode with the exchange: its token shows only its tenant's rows."""
    from flask_toucan import Toucan
    from flask_toucan.user import ToucanUser

    # The host and the sandbox each need the other's URL: serve the host through
    # a holder first (its port is then known), build the real app afterwards.
    holder: dict[str, Any] = {}
    host_server = live_server(lambda environ, start_response: holder["app"](environ, start_response))
    sandbox = toucan_sandbox_factory(
        host_jwks_url=f"{host_server.url}/toucan/.well-known/jwks.json", issuer=ISSUER, audience=AUDIENCE
    )
    app = Flask("signed-host")
    app.config.update(
        SECRET_KEY="s" * 40,
        TOUCAN_MODE="signed",
        TOUCAN_SIGNING_KEY=generate_private_key_pem("RSA", 2048).decode(),
        TOUCAN_ISSUER=ISSUER,
        TOUCAN_AUDIENCE=AUDIENCE,
        TOUCAN_BASE_URL=sandbox.url,
        TOUCAN_EXCHANGE_URL=f"{sandbox.url}/oauth/token",
    )
    toucan = Toucan()
    toucan.attribute("organization_id")(lambda user: user["org"])
    toucan.init_app(app)
    holder["app"] = app
    with app.test_request_context():
        token = toucan.issue_token(ToucanUser(ISSUER, "bob", {"org": "initech"}), kind="dashboard")
    assert token.value.count(".") == 4
    data = dashboard(sandbox, token.value).json()
    assert data["tenant"]["id"] == "initech"
    expected = sql(sandbox.data_file, "SELECT COUNT(*) FROM sales WHERE organization_id = 'initech'")[0][0]
    assert data["source_row_count"] == expected
