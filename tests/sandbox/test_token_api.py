"""The token API: key check, strict validation, opaque tokens, lifetime, faults."""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from flask_toucan.sandbox import create_app

from .helpers import mint, token_request

ATTRS = {"organization_id": "acme", "region": "emea", "roles": ["analyst"], "groups": ["sales"]}


def post(client, state, body, key: str | None = "default"):
    headers = {} if key is None else {"x-api-key": state.options.api_key if key == "default" else key}
    return client.post("/embed/generate-token", json=body, headers=headers)


def test_success_returns_token_and_lifetime(app_client):
    _, client, state = app_client
    resp = post(client, state, token_request(ATTRS))
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) == {"token", "expiresIn"}
    assert body["expiresIn"] == 3600
    assert resp.headers["Cache-Control"] == "no-store"
    info = state.codec.decode(body["token"]).introspection()
    assert info["attributes"] == ATTRS
    assert info["user"] == {"distinctId": "https://idp.example|alice", "role": "explorer"}
    assert state.stats["tokens_issued"] == 1


@pytest.mark.parametrize("key", [None, "", "wrong-key", "x" * 200])
def test_missing_or_wrong_key_is_401_without_echo(app_client, key):
    _, client, state = app_client
    resp = post(client, state, token_request(ATTRS), key=key)
    assert resp.status_code == 401
    assert resp.get_json()["code"] == "UNAUTHORIZED"
    assert state.options.api_key not in resp.get_data(as_text=True)
    assert state.stats["tokens_issued"] == 0


def _bad_bodies():
    ok = token_request(ATTRS)
    yield "unknown top-level field", {**ok, "admin": True}, "admin"
    yield "unknown user field", {**ok, "user": {**ok["user"], "email": "a@b"}}, "user.email"
    yield "missing user", {"permissions": ok["permissions"]}, "user"
    yield "distinctId mistyped", {**ok, "user": {**ok["user"], "distinctId": 42}}, "user.distinctId"
    yield "role not allowed", {**ok, "user": {**ok["user"], "role": "superuser"}}, "user.role"
    yield (
        "undeclared attribute",
        {**ok, "user": {**ok["user"], "attributes": {"tenant": "x"}}},
        "user.attributes.tenant",
    )
    yield (
        "attribute of the wrong type",
        {**ok, "user": {**ok["user"], "attributes": {"region": ["emea"]}}},
        "user.attributes.region",
    )
    yield (
        "list attribute item of the wrong type",
        {**ok, "user": {**ok["user"], "attributes": {"roles": ["a", 3]}}},
        "user.attributes.roles[1]",
    )
    yield (
        "unknown permission resource",
        {**ok, "permissions": {"admin": {"can_view": True}}},
        "permissions.admin",
    )
    yield (
        "unknown permission flag",
        {**ok, "permissions": {"ai": {"can_view": True}}},
        "permissions.ai.can_view",
    )
    yield (
        "mistyped permission flag",
        {**ok, "permissions": {"dashboard": {"can_view": "yes"}}},
        "permissions.dashboard.can_view",
    )
    yield "body not an object", [1, 2], "body"


@pytest.mark.parametrize(("case", "body", "field"), list(_bad_bodies()), ids=[c[0] for c in _bad_bodies()])
def test_invalid_body_is_400_naming_the_field(app_client, case, body, field):
    _, client, state = app_client
    resp = post(client, state, body)
    assert resp.status_code == 400, case
    data = resp.get_json()
    assert data["code"] == "INVALID_REQUEST"
    assert data["field"] == field
    assert state.stats["tokens_issued"] == 0


def test_non_json_body_is_400(app_client):
    _, client, state = app_client
    resp = client.post("/embed/generate-token", data="user=x", headers={"x-api-key": state.options.api_key})
    assert resp.status_code == 400
    assert resp.get_json()["field"] == "body"


def test_token_is_an_opaque_jwe_not_a_jwt(app_client):
    _, client, state = app_client
    token = post(client, state, token_request(ATTRS)).get_json()["token"]
    assert token.count(".") == 4  # JWE compact: header.key.iv.ciphertext.tag
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(token, options={"verify_signature": False})
    assert b"acme" not in token.encode()
    header = jwt.utils.base64url_decode(token.split(".")[0])
    assert b'"enc":"A256GCM"' in header and b'"alg":"dir"' in header


def test_token_of_another_sandbox_or_tampered_is_rejected(app_client):
    _, client, state = app_client
    token = post(client, state, token_request(ATTRS)).get_json()["token"]
    other = create_app().extensions["toucan_sandbox"]
    from flask_toucan.sandbox.codec import TokenRejected

    with pytest.raises(TokenRejected):
        other.codec.decode(token)
    parts = token.split(".")
    parts[3] = parts[3][:-2] + ("AA" if parts[3][-2:] != "AA" else "BB")
    with pytest.raises(TokenRejected):
        state.codec.decode(".".join(parts))


def test_lifetime_option_is_honoured():
    app = create_app(token_lifetime=7)
    state = app.extensions["toucan_sandbox"]
    resp = app.test_client().post(
        "/embed/generate-token", json=token_request(ATTRS), headers={"x-api-key": state.options.api_key}
    )
    assert resp.get_json()["expiresIn"] == 7
    info = state.codec.decode(resp.get_json()["token"]).introspection()
    assert 5 <= info["expires_in"] <= 7


def test_introspection_endpoint(app_client):
    _, client, state = app_client
    token = post(client, state, token_request(ATTRS)).get_json()["token"]
    resp = client.post(
        "/embed/introspect", json={"token": token}, headers={"x-api-key": state.options.api_key}
    )
    info = resp.get_json()
    assert info["active"] is True
    assert info["attributes"]["organization_id"] == "acme"
    assert info["permissions"]["ai"] == {"can_query": True}
    assert info["expires_at"].endswith("+00:00") and 3590 <= info["expires_in"] <= 3600
    assert client.post("/embed/introspect", json={"token": token}).status_code == 401
    garbled = client.post(
        "/embed/introspect", json={"token": "a.b.c.d.e"}, headers={"x-api-key": state.options.api_key}
    )
    assert garbled.get_json() == {"active": False, "error": "invalid_token"}


@pytest.mark.integration
def test_fault_injection_fail_next_then_success(toucan_sandbox):
    toucan_sandbox.set_faults(fail_next=2, retry_after=3)
    url = f"{toucan_sandbox.url}/embed/generate-token"
    headers = {"x-api-key": toucan_sandbox.api_key}
    statuses = []
    for _ in range(3):
        resp = requests.post(url, json=token_request(ATTRS), headers=headers, timeout=10)
        statuses.append(resp.status_code)
        if resp.status_code == 503:
            assert resp.headers["Retry-After"] == "3"
            assert resp.json()["code"] == "SERVICE_UNAVAILABLE"
    assert statuses == [503, 503, 200]
    assert toucan_sandbox.stats["token_requests"] == 3
    assert toucan_sandbox.stats["tokens_issued"] == 1


@pytest.mark.integration
def test_fault_injection_429_with_retry_after_via_admin_endpoint(toucan_sandbox):
    headers = {"x-api-key": toucan_sandbox.api_key}
    assert (
        requests.post(
            f"{toucan_sandbox.url}/_sandbox/faults", json={"rate_limit_next": 1}, timeout=5
        ).status_code
        == 401
    )
    resp = requests.post(
        f"{toucan_sandbox.url}/_sandbox/faults",
        json={"rate_limit_next": 1, "retry_after": 7},
        headers=headers,
        timeout=5,
    )
    assert resp.json()["rate_limit_next"] == 1
    bad = requests.post(
        f"{toucan_sandbox.url}/_sandbox/faults", json={"fail_rate": 2}, headers=headers, timeout=5
    )
    assert bad.status_code == 400
    first = requests.post(
        f"{toucan_sandbox.url}/embed/generate-token", json=token_request(ATTRS), headers=headers, timeout=5
    )
    assert first.status_code == 429 and first.headers["Retry-After"] == "7"
    second = requests.post(
        f"{toucan_sandbox.url}/embed/generate-token", json=token_request(ATTRS), headers=headers, timeout=5
    )
    assert second.status_code == 200
    stats = requests.get(f"{toucan_sandbox.url}/_sandbox/stats", headers=headers, timeout=5).json()
    assert stats["token_requests"] == 2 and stats["faults_injected"] == 1


@pytest.mark.integration
def test_fault_injection_latency_and_fail_rate(toucan_sandbox_factory):
    slow = toucan_sandbox_factory(latency_ms=300)
    started = time.monotonic()
    mint(slow, ATTRS)
    assert time.monotonic() - started >= 0.3

    flaky = toucan_sandbox_factory(fail_rate=0.5, fault_seed=1)
    statuses = [
        requests.post(
            f"{flaky.url}/embed/generate-token",
            json=token_request(ATTRS),
            headers={"x-api-key": flaky.api_key},
            timeout=5,
        ).status_code
        for _ in range(40)
    ]
    assert set(statuses) == {200, 503}
    assert 8 <= statuses.count(503) <= 32
    flaky.set_faults(fail_rate=0)
    flaky.reset()
    assert flaky.faults["fail_rate"] == 0.5  # reset restores the start-up settings
    assert flaky.stats.get("token_requests", 0) == 0
