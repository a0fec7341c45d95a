"""flask-toucan's classic profile against the sandbox's Authlib-based token endpoint.

The host app signs its assertion, exchanges it with client authentication,
and only the opaque token reaches a page or the refresh endpoint. Each
refusal (wrong secret, no ``embed`` scope, ``sub`` other than the client id,
4 KB ``embed_context``) is a clear, secret-free error on our side, and the
client secret and mapped ``secrets`` never show in logs, pages or errors.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, render_template_string

from flask_toucan import EmbedContextTooLarge, Toucan, UpstreamRejected, signing
from flask_toucan.test_client import ToucanTestClient
from flask_toucan.user import ToucanUser

from ..core.helpers import rsa_pem
from .test_signed_mode import dashboard

pytestmark = pytest.mark.integration

ISSUER = "https://host.example"
WAREHOUSE_SECRET = "warehouse-SECRET-5e4d3c2b1a"
PAGE = """{% from "toucan/components.html" import toucan_scripts, tc_dashboard %}
<html><head>{{ toucan_scripts() }}</head><body>{{ tc_dashboard("sales-overview") }}</body></html>"""


class Classic:
    """A host app in the classic profile and the sandbox it exchanges with."""

    def __init__(self, live_server: Any, factory: Any, **config: Any) -> None:
        holder: dict[str, Any] = {}
        host = live_server(lambda environ, start: holder["app"](environ, start))
        self.sandbox = factory(host_jwks_url=f"{host.url}/toucan/.well-known/jwks.json", issuer=ISSUER)
        app = Flask("classic-host")
        app.config.update(
            SECRET_KEY="classic-secret-key-0123456789abcdef",
            TOUCAN_MODE="signed",
            TOUCAN_SIGNING_KEY=rsa_pem(3),
            TOUCAN_SIGNING_ALGORITHM="RS512",  # as docs-v3's example
            TOUCAN_ISSUER=ISSUER,
            TOUCAN_BASE_URL=self.sandbox.url,
            TOUCAN_EXCHANGE_URL=self.sandbox.exchange_url,
            TOUCAN_AUDIENCE=self.sandbox.exchange_url,  # required: Keycloak takes the token endpoint
            TOUCAN_EXCHANGE_CLIENT_SECRET=self.sandbox.exchange_client_secret,
            TOUCAN_HTTP_RETRIES=0,
        )
        app.config.update(config)
        self.toucan = Toucan(app)
        self.toucan.attribute("organization_id")(lambda user: user["org"])
        self.toucan.privileges(lambda user: {"sandbox": ["view"]})
        app.get("/page")(lambda: render_template_string(PAGE))
        holder["app"] = self.app = app

    def issue(self, org: str = "initech") -> Any:
        with self.app.test_request_context():
            return self.toucan.issue_token(ToucanUser(ISSUER, "bob", {"org": org}), kind="dashboard")


@pytest.fixture
def classic(live_server: Any, toucan_sandbox_factory: Any) -> Any:
    return lambda **config: Classic(live_server, toucan_sandbox_factory, **config)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_classic_token_scopes_the_data(classic: Any, method: str) -> None:
    env = classic(TOUCAN_EXCHANGE_AUTH_METHOD=method)
    token = env.issue()
    assert token.value.count(".") == 4  # the sandbox's opaque JWE, not our JWS
    data = dashboard(env.sandbox, token.value).json()
    assert data["tenant"]["id"] == "initech"
    assert env.sandbox.stats["exchanges"] == 1


def test_no_assertion_or_secret_in_page_refresh_or_logs(
    classic: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = classic()
    env.toucan.secrets(lambda user: {"warehouse_token": WAREHOUSE_SECRET})
    # The refresh asks for a chart token: another permission set, so a fresh mint (not the cache).
    env.toucan.permissions(lambda user: {"dashboard": {"can_view": True}, "chart": {"can_view": True}})
    assertions: list[str] = []
    real_sign = signing.sign

    def spy(claims: Any, key: Any, **kwargs: Any) -> str:
        assertions.append(real_sign(claims, key, **kwargs))
        return assertions[-1]

    monkeypatch.setattr(signing, "sign", spy)
    env.app.test_client_class = ToucanTestClient
    client = env.app.test_client(user={"sub": "carol", "iss": "https://idp", "org": "acme"})
    page = client.get("/page")
    assert page.status_code == 200 and 'auth-token="' in page.get_data(as_text=True)
    refresh = client.post(
        "/toucan/token", json={"kind": "chart"}, headers={"X-Toucan-CSRF": client.csrf_token}
    )
    assert refresh.status_code == 200, refresh.get_data(as_text=True)
    assert len(assertions) == 2  # one for the page, one for the refresh
    shown = page.get_data(as_text=True) + refresh.get_data(as_text=True) + caplog.text
    for jws in assertions:
        header_and_payload = jws.rsplit(".", 1)[0]
        assert header_and_payload not in shown
    assert refresh.get_json()["token"].count(".") == 4
    for secret in (WAREHOUSE_SECRET, env.sandbox.exchange_client_secret):
        assert secret not in shown


@pytest.mark.parametrize(
    ("config", "code"),
    [
        ({"TOUCAN_EXCHANGE_CLIENT_SECRET": "wrong-SECRET-value"}, "unauthorized_client"),
        ({"TOUCAN_EXCHANGE_SCOPE": "openid"}, "invalid_scope"),
        ({"TOUCAN_ASSERTION_SUBJECT": "alice"}, "invalid_grant"),
        ({"TOUCAN_EXCHANGE_CLIENT_ID": "someone-else"}, "invalid_client"),
    ],
)
def test_sandbox_refusals_are_permanent_and_secret_free(
    classic: Any, config: dict[str, str], code: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = classic(**config)
    with pytest.raises(UpstreamRejected) as info:
        env.issue()
    assert info.value.upstream_code == code and info.value.retry_after is None
    assert env.sandbox.stats["exchange_requests"] == 1  # not retried
    text = str(info.value) + repr(info.value) + caplog.text
    for secret in ("wrong-SECRET-value", env.sandbox.exchange_client_secret):
        assert secret not in text


def test_4kb_embed_context_refused_before_the_exchange(classic: Any) -> None:
    env = classic()
    env.toucan.groups(lambda user: [f"group-{i:04d}-" + "x" * 30 for i in range(100)])
    with pytest.raises(EmbedContextTooLarge, match=r"\d+ bytes"):
        env.issue()
    assert env.sandbox.stats.get("exchange_requests", 0) == 0


def test_cli_output_holds_no_client_secret_or_secrets(classic: Any) -> None:
    env = classic()
    env.toucan.secrets(lambda user: {"warehouse_token": WAREHOUSE_SECRET})
    wrong = classic(TOUCAN_EXCHANGE_CLIENT_SECRET="wrong-SECRET-value").app

    def cli(app: Flask, *args: str) -> Any:
        with app.app_context():  # this app, whatever context another test may have left pushed
            return app.test_cli_runner().invoke(args=["toucan", *args])

    minted = cli(env.app, "mint", "--sub", "erin", "--claim", "org=acme")
    assert minted.exit_code == 0, minted.output
    assert '"username"' in minted.output and '"secrets"' not in minted.output
    failed = cli(wrong, "mint", "--sub", "erin", "--claim", "org=acme")
    assert failed.exit_code != 0 and "unauthorized_client" in failed.output
    checked = cli(env.app, "check")
    realm = env.sandbox.exchange_url.removesuffix("/protocol/openid-connect/token")
    assert f"(realm issuer {realm})" in checked.output  # Toucan's /api/auth prefix is accepted
    for output in (minted.output, failed.output, checked.output):
        for secret in (WAREHOUSE_SECRET, env.sandbox.exchange_client_secret, "wrong-SECRET-value"):
            assert secret not in output


def test_a_retry_after_a_lost_answer_signs_a_new_assertion(classic: Any) -> None:
    """A proxy 504 after the exchange spent the jti: the retry must carry a new assertion.

    Keycloak records an assertion's ``jti`` before anything else, so resending the same
    assertion is "token reuse" (400 ``invalid_grant``), a permanent refusal of a good request.
    """
    env = classic(TOUCAN_HTTP_RETRIES=1)
    env.sandbox.set_faults(lose_next=1)
    token = env.issue()
    assert dashboard(env.sandbox, token.value).json()["tenant"]["id"] == "initech"
    assert env.sandbox.stats["exchange_requests"] == 2
    assert env.sandbox.stats["exchanges"] == 2  # both served: the first answer was lost


@pytest.mark.parametrize(
    ("config", "status", "code"),
    [
        ({"TOUCAN_EXCHANGE_CLIENT_SECRET": "wrong-SECRET-value"}, 401, "unauthorized_client"),
        ({"TOUCAN_EXCHANGE_CLIENT_ID": "someone-else"}, 401, "invalid_client"),
        ({"TOUCAN_ASSERTION_SUBJECT": "alice"}, 400, "invalid_grant"),
        ({"TOUCAN_EXCHANGE_SCOPE": "embed admin"}, 400, "invalid_scope"),
    ],
)
def test_each_refusal_is_misconfigured_on_the_page_and_a_502_refresh(
    classic: Any, config: dict[str, str], status: int, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Keycloak's refusals: the placeholder, a 502 without Retry-After, the code alone in the log."""
    caplog.set_level(logging.DEBUG)
    env = classic(**config)
    env.app.test_client_class = ToucanTestClient
    client = env.app.test_client(user={"sub": "dave", "iss": "https://idp", "org": "acme"})
    page = client.get("/page").get_data(as_text=True)
    assert 'data-toucan-placeholder="misconfigured"' in page and "auth-token" not in page
    refresh = client.post(
        "/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": client.csrf_token}
    )
    assert refresh.status_code == 502 and "Retry-After" not in refresh.headers
    assert refresh.get_json()["upstream_code"] == code
    assert f"code {code}, HTTP {status}" in caplog.text
    for description in ("Invalid client", "Invalid scopes", "sub must be", "wrong-SECRET-value"):
        assert description not in caplog.text + page + refresh.get_data(as_text=True)
