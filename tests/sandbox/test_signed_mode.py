"""The sandbox's classic token endpoint, tested directly with hand-built assertions.

``POST {base}/api/auth/realms/{tenant}/protocol/openid-connect/token`` is
Authlib's authorization server with a jwt-bearer grant; the assertions here are
written claim by claim and signed with PyJWT, not by flask-toucan's minting,
so the endpoint is checked against docs-v3, not against our own client. Also:
host JWKS refetch cool-down, jti replay, signed-direct on the data API.
"""

from __future__ import annotations

import json
import time
import uuid
from functools import lru_cache
from typing import Any

import jwt
import pytest
import requests
from flask import Flask, jsonify

from flask_toucan.keys import KeySet, generate_private_key_pem, load_key_set
from flask_toucan.sandbox import hostkeys
from tests.waiting import FakeClock

from .helpers import sql

pytestmark = pytest.mark.integration

ISSUER = "https://host.example"
AUDIENCE = "toucan-embed"
CLIENT_ID = "toucan-embed-client"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@lru_cache(maxsize=4)
def key_set(kid: str) -> KeySet:
    return load_key_set(generate_private_key_pem("RSA", 2048), kid=kid, algorithm="RS512")  # docs-v3 example


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


def embed_context(**overrides: Any) -> dict[str, Any]:
    """docs-v3's ``embed_context``; privileges on the sandbox's app id ``sandbox``."""
    ctx: dict[str, Any] = {
        "username": "alice@host.example",
        "workspace_id": "ws-1",
        "roles": ["USER"],
        "privileges": {"sandbox": ["view"]},
        "groups": ["emea-team"],
        "attributes": {"organization_id": "acme", "region": "emea"},
        "secrets": {"warehouse_token": "never-shown"},
    }
    ctx.update(overrides)
    return ctx


def assertion(kid: str = "host-a", *, ctx: dict[str, Any] | None = None, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": CLIENT_ID,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "embed_context": ctx if ctx is not None else embed_context(),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    key = key_set(kid).current
    return jwt.encode(claims, key.signing_material, algorithm=key.algorithm, headers={"kid": key.kid})


def exchange(
    sandbox: Any,
    jwt_: str,
    *,
    secret: str | None = "<right>",
    method: str = "basic",
    scope: str | None = "embed",
    tenant: str = "sandbox",
) -> requests.Response:
    secret = sandbox.exchange_client_secret if secret == "<right>" else secret
    form: dict[str, str] = {"grant_type": JWT_BEARER, "assertion": jwt_}
    if scope is not None:
        form["scope"] = scope
    auth = None
    if secret is not None and method == "basic":
        auth = (CLIENT_ID, secret)
    elif secret is not None:
        form.update(client_id=CLIENT_ID, client_secret=secret)
    url = sandbox.exchange_url.replace("/realms/sandbox/", f"/realms/{tenant}/")
    return requests.post(url, data=form, auth=auth, timeout=10)


def refused(resp: requests.Response, status: int, error: str, words: str = "") -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == error  # RFC 6749 error JSON, not Toucan's {code, message}
    assert words in body.get("error_description", "")
    assert resp.headers["Cache-Control"] == "no-store"


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


@pytest.mark.parametrize("method", ["basic", "post"])
def test_exchange_accepted_and_data_scoped(signed_sandbox: Any, host: Host, method: str) -> None:
    resp = exchange(signed_sandbox, assertion(), method=method)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["scope"] == "embed"
    assert body["access_token"].count(".") == 4  # opaque JWE, not the host's JWT
    assert resp.headers["Cache-Control"] == "no-store"
    info = signed_sandbox.introspect(body["access_token"])
    assert info["active"] and info["source"] == "exchange"
    assert info["user"] == {"distinctId": "alice@host.example", "role": "USER"}
    assert info["attributes"] == {
        "organization_id": "acme",
        "region": "emea",
        "roles": ["USER"],
        "groups": ["emea-team"],
    }
    assert "never-shown" not in json.dumps(info)  # secrets are never shown

    data = dashboard(signed_sandbox, body["access_token"]).json()
    expected = sql(
        signed_sandbox.data_file,
        "SELECT region, SUM(amount) FROM sales WHERE organization_id = ? AND region = ? GROUP BY region",
        ("acme", "emea"),
    )
    assert [(r["region"], r["amount"]) for r in data["rows"]] == expected
    assert data["tenant"] == {"id": "acme", "name": "Acme Corporation"}
    assert signed_sandbox.stats["exchanges"] == 1 and host.hits == 1


@pytest.mark.parametrize(
    ("secret", "method", "error"),
    [
        (None, "basic", "invalid_client"),  # no client id at all
        ("wrong", "basic", "unauthorized_client"),  # Keycloak: the known client, bad credentials
        ("wrong", "post", "unauthorized_client"),
        ("", "post", "unauthorized_client"),
    ],
)
def test_client_authentication_refusals_are_keycloaks(
    signed_sandbox: Any, secret: str | None, method: str, error: str
) -> None:
    resp = exchange(signed_sandbox, assertion(), secret=secret, method=method)
    refused(resp, 401, error)
    assert signed_sandbox.exchange_client_secret not in resp.text
    assert signed_sandbox.stats.get("exchanges", 0) == 0


@pytest.mark.parametrize("scope", [None, "", "openid profile", "embedded"])
def test_missing_embed_scope_is_invalid_scope(signed_sandbox: Any, scope: str | None) -> None:
    refused(exchange(signed_sandbox, assertion(), scope=scope), 400, "invalid_scope", "embed")
    assert exchange(signed_sandbox, assertion(), scope="openid embed").status_code == 200


def test_sub_other_than_client_id_is_invalid_grant(signed_sandbox: Any) -> None:
    for sub in ("alice@host.example", "https://idp.example|alice"):
        refused(exchange(signed_sandbox, assertion(sub=sub)), 400, "invalid_grant", "sub")
    refused(exchange(signed_sandbox, assertion(sub=None)), 400, "invalid_grant", "sub")


def test_embed_context_over_3_5_kb_is_invalid_grant(signed_sandbox: Any) -> None:
    groups = [f"group-{i:04d}-" + "x" * 30 for i in range(100)]  # ~4 KB
    resp = exchange(signed_sandbox, assertion(ctx=embed_context(groups=groups)))
    refused(resp, 400, "invalid_grant", "3584")
    small = [f"g{i}" for i in range(10)]
    assert exchange(signed_sandbox, assertion(ctx=embed_context(groups=small))).status_code == 200


def test_replayed_jti_is_refused(signed_sandbox: Any) -> None:
    jwt_ = assertion()
    assert exchange(signed_sandbox, jwt_).status_code == 200
    refused(exchange(signed_sandbox, jwt_), 400, "invalid_grant", "Token reuse detected")
    assert exchange(signed_sandbox, assertion()).status_code == 200  # a fresh jti is fine


def test_jti_is_spent_before_the_signature_check(signed_sandbox: Any) -> None:
    """Keycloak records the jti first: even a refused (forged) assertion spends it."""
    jti = uuid.uuid4().hex
    genuine = assertion(jti=jti)
    forged = ".".join([*genuine.split(".")[:2], assertion("host-b").split(".")[2]])
    refused(exchange(signed_sandbox, forged), 400, "invalid_grant", "signature")
    refused(exchange(signed_sandbox, genuine), 400, "invalid_grant", "Token reuse detected")


def test_a_lost_answer_spends_the_jti(signed_sandbox: Any) -> None:
    """``lose_next``: served, answer lost (a proxy 504); the same assertion again is reuse."""
    signed_sandbox.set_faults(lose_next=1)
    jwt_ = assertion()
    lost = exchange(signed_sandbox, jwt_)
    assert lost.status_code == 504 and signed_sandbox.stats["exchanges"] == 1
    refused(exchange(signed_sandbox, jwt_), 400, "invalid_grant", "Token reuse detected")
    assert exchange(signed_sandbox, assertion()).status_code == 200


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        (lambda now: {"iat": now - 1, "exp": now + 300}, "300 s"),  # one second too long
        (lambda now: {"nbf": now + 5}, "not active"),  # no clock skew on nbf
        (lambda now: {"aud": ["toucan-embed"]}, "one string"),  # a list, even of an accepted value
        (lambda now: {"aud": "https://toucan.example/oauth/oauth-token"}, "audience"),
    ],
)
def test_keycloak_assertion_rules(signed_sandbox: Any, claims: Any, words: str) -> None:
    jwt_ = assertion(**claims(int(time.time())))
    refused(exchange(signed_sandbox, jwt_), 400, "invalid_grant", words)


def test_audience_is_the_realm_issuer_or_the_token_endpoint(signed_sandbox: Any) -> None:
    endpoint = signed_sandbox.exchange_url
    issuer = endpoint.removesuffix("/protocol/openid-connect/token")
    for aud in (issuer, endpoint):
        assert exchange(signed_sandbox, assertion(aud=aud)).status_code == 200
    # Keycloak 26's own path, without Toucan's /api/auth in front, is served too.
    bare = endpoint.replace("/api/auth/realms/", "/realms/")
    auth = (CLIENT_ID, signed_sandbox.exchange_client_secret)
    form = {"grant_type": JWT_BEARER, "scope": "embed", "assertion": assertion(aud=bare)}
    assert requests.post(bare, data=form, auth=auth, timeout=10).status_code == 200


def test_hmac_assertions_are_refused_by_name(signed_sandbox: Any) -> None:
    now = int(time.time())
    claims = {"sub": CLIENT_ID, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    hs = jwt.encode({**claims, "jti": uuid.uuid4().hex, "embed_context": embed_context()}, "k" * 32)
    refused(exchange(signed_sandbox, hs), 400, "invalid_grant", "asymmetric algorithms only")


def test_unknown_scope_is_invalid_scope(signed_sandbox: Any) -> None:
    refused(exchange(signed_sandbox, assertion(), scope="embed admin"), 400, "invalid_scope", "admin")


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
        ({"iss": "https://evil.example"}, "issuer"),
        ({"aud": "someone-else"}, "audience"),
        ({"exp": int(time.time()) - 4000, "iat": int(time.time()) - 4300}, "expired"),
        ({"exp": str(int(time.time()) + 300)}, "NumericDate"),
        ({"iat": True}, "NumericDate"),
        ({"nbf": "0"}, "NumericDate"),
        ({"jti": None}, "jti"),
        ({"ctx": embed_context(attributes={"organization_id": "acme", "tenant": "x"})}, "tenant"),
        ({"ctx": embed_context(roles=["SUPERUSER"])}, "roles"),
        ({"ctx": embed_context(privileges={"sandbox": {"can_view": True}})}, "privileges"),
        ({"ctx": embed_context(secrets={"k": {"nested": 1}})}, "secrets"),
        ({"padding": "x" * 9000}, "8 KB"),
    ],
)
def test_bad_assertions_are_invalid_grant(signed_sandbox: Any, kwargs: dict[str, Any], reason: str) -> None:
    refused(exchange(signed_sandbox, assertion(**kwargs)), 400, "invalid_grant", reason)


def test_grant_type_realm_and_mode_errors(signed_sandbox: Any, toucan_sandbox_factory: Any) -> None:
    url = signed_sandbox.exchange_url
    auth = (CLIENT_ID, signed_sandbox.exchange_client_secret)
    wrong = requests.post(url, data={"grant_type": "password", "scope": "embed"}, auth=auth, timeout=5)
    refused(wrong, 400, "unsupported_grant_type")
    missing = requests.post(url, data={"grant_type": JWT_BEARER, "scope": "embed"}, auth=auth, timeout=5)
    refused(missing, 400, "invalid_request")
    refused(exchange(signed_sandbox, assertion(), tenant="other"), 404, "invalid_request", "realm")
    off = toucan_sandbox_factory()  # started without a host JWKS URL
    refused(exchange(off, assertion()), 400, "invalid_grant", "signed mode is off")


def test_reject_fault_on_the_token_endpoint(signed_sandbox: Any) -> None:
    signed_sandbox.set_faults(reject={"status": 400, "code": "INVALID_CLIENT"})
    refused(exchange(signed_sandbox, assertion()), 400, "invalid_client", "injected")
    signed_sandbox.set_faults(reject=None)
    assert exchange(signed_sandbox, assertion()).status_code == 200


def test_privileges_and_roles_decide_permissions(signed_sandbox: Any) -> None:
    def token(ctx: dict[str, Any]) -> str:
        resp = exchange(signed_sandbox, assertion(ctx=ctx))
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])

    nothing = token(embed_context(privileges={}))
    assert dashboard(signed_sandbox, nothing).status_code == 403
    other_app = token(embed_context(privileges={"another-app": ["view"]}))
    assert dashboard(signed_sandbox, other_app).status_code == 403
    admin = signed_sandbox.introspect(token(embed_context(roles=["ADMIN"], privileges={})))
    assert admin["permissions"]["ai"] == {"can_query": True}
    assert admin["user"]["role"] == "ADMIN"


def test_direct_mode_accepts_host_jwt_on_data_api(signed_sandbox: Any) -> None:
    jwt_ = assertion(ctx=embed_context(attributes={"organization_id": "globex"}))
    first, second = dashboard(signed_sandbox, jwt_), dashboard(signed_sandbox, jwt_)
    assert first.status_code == second.status_code == 200  # a page reuses its token: no jti rule here
    assert first.json()["tenant"]["id"] == "globex"
    assert {r["region"] for r in first.json()["rows"]} == {"emea", "amer", "apac"}
    expired = dashboard(signed_sandbox, assertion(exp=int(time.time()) - 4000, iat=int(time.time()) - 4300))
    assert expired.status_code == 401 and expired.json()["code"] == "TOKEN_EXPIRED"
    forged = dashboard(signed_sandbox, assertion(iss="https://evil.example"))
    assert forged.status_code == 401 and forged.json()["code"] == "INVALID_TOKEN"
    assert signed_sandbox.introspect(jwt_)["source"] == "direct"


def test_host_jwt_not_accepted_without_signed_mode(toucan_sandbox: Any) -> None:
    resp = dashboard(toucan_sandbox, assertion())
    assert resp.status_code == 401 and resp.json()["code"] == "INVALID_TOKEN"


def test_client_secret_option_and_reprs(host: Host, toucan_sandbox_factory: Any) -> None:
    sandbox = toucan_sandbox_factory(
        host_jwks_url=host.jwks_url,
        issuer=ISSUER,
        audience=AUDIENCE,
        exchange_client_secret="fixed-SECRET-for-tests",
        tenant="acme",
    )
    assert sandbox.exchange_client_secret == "fixed-SECRET-for-tests"
    assert sandbox.exchange_url.endswith("/api/auth/realms/acme/protocol/openid-connect/token")
    assert exchange(sandbox, assertion(), tenant="acme").status_code == 200
    shown = repr(sandbox) + repr(sandbox.state) + repr(sandbox.state.options)
    assert "fixed-SECRET-for-tests" not in shown and sandbox.api_key not in shown


def test_forged_signature_is_invalid_grant(signed_sandbox: Any) -> None:
    genuine = assertion()
    other = assertion("host-b")  # a key the host never published, signing under kid host-a below
    header = genuine.split(".")[0]
    forged = ".".join([header, *other.split(".")[1:]])
    refused(exchange(signed_sandbox, forged), 400, "invalid_grant", "signature")
    tampered = genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB")
    refused(exchange(signed_sandbox, tampered), 400, "invalid_grant", "signature")
