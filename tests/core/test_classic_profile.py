"""The classic profile (self-hosted Toucan, docs-v3) on our minting side.

A fake realm token endpoint records what we send: the RFC 7523 jwt-bearer
grant with ``scope=embed``, client authentication through Authlib's
``ClientAuth`` (``client_secret_basic`` by default, ``client_secret_post`` on
request), an assertion whose ``sub`` is the client id and whose
``embed_context`` follows docs-v3. Refusals: a 4xx is a permanent
:class:`UpstreamRejected` (one call, no retry), a 5xx is transient, a 4 KB
``embed_context`` never leaves the host. The client secret and the mapped
``secrets`` appear in no log, error, repr or token claims.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from flask import Flask, jsonify, request

from flask_toucan import (
    AttributeMappingError,
    ConfigurationError,
    EmbedContextTooLarge,
    UpstreamError,
    UpstreamRejected,
    verify_token,
)
from flask_toucan.config import ToucanConfig

from .helpers import make_app, signed_config

ISS = "https://host.example"
EXCHANGE_SECRET = "embed-client-SECRET-77aa88bb99cc"
DB_PASSWORD = "db-password-SECRET-0f1e2d3c"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class Realm:
    """A fake ``/api/auth/realms/{tenant}/protocol/openid-connect/token`` endpoint."""

    def __init__(self, live_server: Any) -> None:
        self.seen: list[dict[str, Any]] = []
        self.answers: list[tuple[Any, int]] = []
        app = Flask("realm")

        @app.post("/api/auth/realms/acme/protocol/openid-connect/token")
        def token() -> Any:
            self.seen.append({"form": request.form.to_dict(), "auth": request.headers.get("Authorization")})
            if self.answers:
                body, status = self.answers.pop(0)
                return jsonify(body), status
            return jsonify(access_token=f"opaque-{len(self.seen)}", token_type="Bearer", expires_in=600)

        self.server = live_server(app)
        self.url = f"{self.server.url}/api/auth/realms/acme/protocol/openid-connect/token"


@pytest.fixture
def realm(live_server: Any) -> Realm:
    return Realm(live_server)


def classic_app(realm: Realm, **extra: Any) -> tuple[Flask, Any]:
    config = signed_config(
        TOUCAN_EXCHANGE_URL=realm.url, TOUCAN_EXCHANGE_CLIENT_SECRET=EXCHANGE_SECRET, TOUCAN_HTTP_RETRIES=1
    )
    config["TOUCAN_AUDIENCE"] = realm.url  # required (no default): here the token endpoint
    config.update(extra)
    return make_app(**config)


def issue(app: Flask, toucan: Any, **claims: Any) -> Any:
    with app.test_request_context():
        user = toucan.login_user({"sub": "alice", "iss": "https://idp", "org": "acme", **claims})
        return toucan.issue_token(user)


def assertion_claims(app: Flask, toucan: Any, form: dict[str, str], audience: str) -> dict[str, Any]:
    with app.app_context():
        return verify_token(form["assertion"], toucan.jwks(), audience=audience, issuer=ISS)


@pytest.mark.integration
def test_exchange_sends_grant_scope_and_basic_auth(realm: Realm) -> None:
    app, toucan = classic_app(realm)

    @toucan.roles
    def roles(user: Any) -> list[str]:
        return ["ADMIN"] if user.get("admin") else ["USER"]

    toucan.privileges(lambda user: {"sales-app": ["view"]})
    toucan.groups(lambda user: ["emea-team"])
    token = issue(app, toucan, admin=True)
    assert token.value == "opaque-1" and 590 <= token.expires_in <= 600
    sent = realm.seen[0]
    assert sent["form"]["grant_type"] == JWT_BEARER and sent["form"]["scope"] == "embed"
    assert "client_secret" not in sent["form"] and "client_id" not in sent["form"]
    scheme, _, encoded = sent["auth"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"toucan-embed-client:{EXCHANGE_SECRET}"
    claims = assertion_claims(app, toucan, sent["form"], audience=realm.url)  # aud = the token endpoint
    assert claims["sub"] == "toucan-embed-client" and claims["iss"] == ISS
    for name in ("exp", "iat", "jti"):
        assert name in claims
    assert claims["embed_context"] == {
        "username": "https://idp|alice",
        "workspace_id": None,
        "roles": ["ADMIN"],
        "privileges": {"sales-app": ["view"]},
        "groups": ["emea-team"],
        "attributes": {"organization_id": "acme"},
        "secrets": {},
    }


@pytest.mark.integration
def test_client_secret_post_and_custom_subject(realm: Realm) -> None:
    app, toucan = classic_app(
        realm,
        TOUCAN_EXCHANGE_AUTH_METHOD="client_secret_post",
        TOUCAN_EXCHANGE_CLIENT_ID="embed-42",
        TOUCAN_EXCHANGE_SCOPE="embed extra",
        TOUCAN_ASSERTION_SUBJECT="shared-value",
        TOUCAN_WORKSPACE_ID="ws-1",
    )
    issue(app, toucan)
    sent = realm.seen[0]
    assert sent["auth"] is None
    assert sent["form"]["client_id"] == "embed-42" and sent["form"]["client_secret"] == EXCHANGE_SECRET
    assert sent["form"]["scope"] == "embed extra"
    claims = assertion_claims(app, toucan, sent["form"], audience=realm.url)
    assert claims["sub"] == "shared-value" and claims["embed_context"]["workspace_id"] == "ws-1"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (401, {"error": "invalid_client"}, "invalid_client"),
        (400, {"error": "invalid_scope", "error_description": "x"}, "invalid_scope"),
        (400, {"error": "invalid_grant"}, "invalid_grant"),
        (400, {"error": "<script>alert(1)</script>"}, None),  # not a code we repeat
        (403, {"unexpected": True}, None),
    ],
)
def test_4xx_is_permanent_not_retried(realm: Realm, status: int, body: Any, code: str | None, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    realm.answers = [(body, status)]
    app, toucan = classic_app(realm)
    with pytest.raises(UpstreamRejected) as info:
        issue(app, toucan)
    assert info.value.upstream_code == code and info.value.upstream_status == status
    assert info.value.retry_after is None and info.value.status_code == 502
    assert len(realm.seen) == 1  # a permanent answer is not retried
    assert "<script>" not in str(info.value)
    assert EXCHANGE_SECRET not in str(info.value) + caplog.text


@pytest.mark.integration
def test_5xx_is_transient(realm: Realm) -> None:
    realm.answers = [({"error": "server_error"}, 500)]
    app, toucan = classic_app(realm)
    with pytest.raises(UpstreamError) as info:
        issue(app, toucan)
    assert not isinstance(info.value, UpstreamRejected) and info.value.retry_after


@pytest.mark.integration
def test_oversized_embed_context_is_refused_before_sending(realm: Realm) -> None:
    app, toucan = classic_app(realm)
    toucan.groups(lambda user: [f"group-{i:04d}-" + "x" * 30 for i in range(100)])  # ~4 KB
    with pytest.raises(EmbedContextTooLarge) as info:
        issue(app, toucan)
    assert isinstance(info.value, AttributeMappingError)
    assert info.value.size > 3584 and f"{info.value.size} bytes" in str(info.value)
    assert "3584" in str(info.value)
    assert realm.seen == []  # nothing sent


@pytest.mark.integration
def test_secrets_reach_the_assertion_only(realm: Realm, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    app, toucan = classic_app(realm)
    toucan.secrets(lambda user: {"db_password": DB_PASSWORD})
    captured: list[Any] = []
    from flask_toucan import token_issued

    token_issued.connect(lambda sender, **kw: captured.append(kw["token"]), app, weak=False)
    token = issue(app, toucan)
    claims = assertion_claims(app, toucan, realm.seen[0]["form"], audience=realm.url)
    assert claims["embed_context"]["secrets"] == {"db_password": DB_PASSWORD}  # Toucan gets them
    for shown in (repr(token), str(token.claims), str(captured[0].claims), caplog.text, token.value):
        assert DB_PASSWORD not in shown
    from flask_toucan.user import ToucanUser

    assert DB_PASSWORD not in repr(toucan.mappers.map_classic(ToucanUser("i", "s", {})))


def test_secrets_refused_without_exchange() -> None:
    app, toucan = make_app(**signed_config())
    toucan.secrets(lambda user: {"db_password": DB_PASSWORD})
    with pytest.raises(AttributeMappingError) as info:
        issue(app, toucan)
    assert "TOUCAN_EXCHANGE_URL" in str(info.value) and DB_PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    ("decorator", "value"),
    [
        ("roles", ["SUPERUSER"]),
        ("roles", "admin"),
        ("privileges", {"dashboard": {"can_view": True}}),  # Toucan AI's object is not privileges
        ("privileges", ["view"]),
        ("groups", [1, 2]),
        ("secrets", {"k": {"nested": DB_PASSWORD}}),
    ],
)
def test_classic_mappers_are_checked(decorator: str, value: Any) -> None:
    app, toucan = make_app(**signed_config())
    getattr(toucan, decorator)(lambda user: value)
    with pytest.raises(AttributeMappingError) as info:
        issue(app, toucan)
    assert DB_PASSWORD not in str(info.value)


def test_config_of_the_exchange() -> None:
    url = "https://toucan.example/api/auth/realms/t/protocol/openid-connect/token"
    base = signed_config(TOUCAN_EXCHANGE_URL=url)
    with pytest.raises(ConfigurationError, match="TOUCAN_EXCHANGE_CLIENT_SECRET is required"):
        ToucanConfig.from_mapping(base)
    with pytest.raises(ConfigurationError, match="TOUCAN_EXCHANGE_AUTH_METHOD"):
        ToucanConfig.from_mapping(
            {**base, "TOUCAN_EXCHANGE_CLIENT_SECRET": "s", "TOUCAN_EXCHANGE_AUTH_METHOD": "private_key_jwt"}
        )
    no_aud = {k: v for k, v in base.items() if k != "TOUCAN_AUDIENCE"}
    cfg = ToucanConfig.from_mapping({**base, "TOUCAN_EXCHANGE_CLIENT_SECRET": f" {EXCHANGE_SECRET}\n"})
    assert cfg.audience == base["TOUCAN_AUDIENCE"]
    assert cfg.exchange_client_secret == EXCHANGE_SECRET
    assert (cfg.exchange_client_id, cfg.assertion_subject, cfg.exchange_scope, cfg.exchange_auth_method) == (
        "toucan-embed-client",
        "toucan-embed-client",
        "embed",
        "client_secret_basic",
    )
    assert EXCHANGE_SECRET not in repr(cfg)
    with pytest.raises(ConfigurationError, match="TOUCAN_ISSUER"):
        ToucanConfig.from_mapping(
            {**no_aud, "TOUCAN_ISSUER": None, "TOUCAN_EXCHANGE_CLIENT_SECRET": EXCHANGE_SECRET}
        )
    with pytest.raises(ConfigurationError, match="TOUCAN_AUDIENCE"):  # signed-direct keeps it required
        ToucanConfig.from_mapping({k: v for k, v in signed_config().items() if k != "TOUCAN_AUDIENCE"})


@pytest.mark.parametrize("audience", [None, "", "  "])
def test_the_classic_profile_has_no_default_audience(audience: Any) -> None:
    """A wrong ``aud`` fails every exchange: no guess, an error naming the setting and its forms."""
    url = "https://toucan.example/api/auth/realms/acme/protocol/openid-connect/token"
    config = signed_config(
        TOUCAN_EXCHANGE_URL=url, TOUCAN_EXCHANGE_CLIENT_SECRET=EXCHANGE_SECRET, TOUCAN_AUDIENCE=audience
    )
    with pytest.raises(ConfigurationError) as info:
        make_app(**config)
    message = str(info.value)
    assert "TOUCAN_AUDIENCE is required with TOUCAN_EXCHANGE_URL" in message
    assert "OAUTH_URL/TENANT_ID/oauth/oauth-token" in message and "admin interface" in message
    assert "https://toucan.example/api/auth/realms/acme" in message and url in message  # Keycloak's two
    assert EXCHANGE_SECRET not in message


def test_keycloaks_own_path_names_its_realm_issuer_too() -> None:
    """Keycloak 26 serves ``/realms/{r}/...`` (no ``/api/auth``): the error names its issuer as well."""
    url = "https://kc.example/realms/acme/protocol/openid-connect/token"
    config = signed_config(TOUCAN_EXCHANGE_URL=url, TOUCAN_EXCHANGE_CLIENT_SECRET="s", TOUCAN_AUDIENCE=None)
    with pytest.raises(ConfigurationError, match=r"realm issuer \(https://kc\.example/realms/acme\)"):
        make_app(**config)


def test_classic_profile_signs_rs512_by_default_and_refuses_hmac() -> None:
    url = "https://toucan.example/api/auth/realms/acme/protocol/openid-connect/token"
    classic = signed_config(TOUCAN_EXCHANGE_URL=url, TOUCAN_EXCHANGE_CLIENT_SECRET="s", TOUCAN_AUDIENCE=url)
    cfg = ToucanConfig.from_mapping(classic)
    assert cfg.keys is not None and cfg.keys.current.algorithm == "RS512"  # docs-v3's example
    assert cfg.keys.jwks()["keys"][0]["alg"] == "RS512"
    direct = ToucanConfig.from_mapping(signed_config())
    assert direct.keys is not None and direct.keys.current.algorithm == "RS256"  # elsewhere: unchanged
    explicit = ToucanConfig.from_mapping({**classic, "TOUCAN_SIGNING_ALGORITHM": "PS256"})
    assert explicit.keys is not None and explicit.keys.current.algorithm == "PS256"
    hmac = {**classic, "TOUCAN_SIGNING_KEY": "h" * 40, "TOUCAN_SIGNING_ALGORITHM": "HS256"}
    with pytest.raises(ConfigurationError, match="HS256 cannot be used with TOUCAN_EXCHANGE_URL") as info:
        ToucanConfig.from_mapping(hmac)
    assert "h" * 40 not in str(info.value)


@pytest.mark.parametrize(
    ("url", "issuer"),
    [
        (
            "https://t.example/api/auth/realms/acme/protocol/openid-connect/token",
            "https://t.example/api/auth/realms/acme",
        ),
        ("https://kc.example/realms/acme/protocol/openid-connect/token", "https://kc.example/realms/acme"),
        (
            "https://kc.example/auth/realms/a.b/protocol/openid-connect/token",
            "https://kc.example/auth/realms/a.b",
        ),
        ("https://t.example/oauth/token", None),
        ("https://t.example/realms/acme/protocol/openid-connect/token/extra", None),
    ],
)
def test_realm_issuer_of_both_token_endpoint_forms(url: str, issuer: str | None) -> None:
    from flask_toucan.realm import realm_issuer

    assert realm_issuer(url) == issuer
