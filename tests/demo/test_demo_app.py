"""The demo without a browser: the command line, the app factory, mappers and pages.

Fast: the sandbox fixture (milliseconds to start) stands in for Toucan and
the flask-toucan test client stands in for the OpenID login.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from demo import create_app
from demo.stack import DemoStack, StackError, StackOptions
from demo.users import DEMO_USERS, find_user
from flask_toucan.test_client import ToucanTestClient

ROOT = Path(__file__).resolve().parents[2]
CLIENT_SECRET = "demo-client-secret-never-rendered"
IDP = "http://127.0.0.1:9"


def claims_of(username: str, **changes: Any) -> dict[str, Any]:
    """The claims the local provider sends for a demo user (scopes profile, email, address, groups)."""
    u = find_user(username)
    claims: dict[str, Any] = {
        "iss": IDP,
        "sub": u.username,
        "name": u.name,
        "email": u.email,
        "groups": u.groups,
        "address": {"region": u.region},
    }
    claims.update(changes)
    return claims


def base_config(**extra: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "demo-test-secret-key-0123456789abcdef",
        "DEMO_OIDC_METADATA_URL": f"{IDP}/.well-known/openid-configuration",
        "DEMO_OIDC_CLIENT_ID": "toucan-demo",
        "DEMO_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "TOUCAN_BASE_URL": "http://127.0.0.1:9",
        "TOUCAN_API_KEY": "not-a-real-key",
        **extra,
    }


@pytest.fixture
def portal(toucan_sandbox: Any, toucan_config: dict[str, str]) -> Any:
    app = create_app(
        base_config(
            DEMO_INTROSPECTION_URL=f"{toucan_sandbox.url}/embed/introspect",
            DEMO_SHOW_DEMO_USERS=True,
            **toucan_config,
        )
    )
    app.test_client_class = ToucanTestClient
    return app


def test_help_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "demo", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "--token-lifetime" in out.stdout
    for env in ("DEMO_PORT", "DEMO_OIDC_METADATA_URL", "TOUCAN_BASE_URL", "TOUCAN_API_KEY"):
        assert env in out.stdout


def test_factory_renders_the_sign_in_page_under_a_strict_csp() -> None:
    app = create_app(base_config(DEMO_SHOW_DEMO_USERS=True))
    resp = app.test_client().get("/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'id="sign-in"' in html and "/toucan/login?next=/overview" in html
    for user in DEMO_USERS:
        assert f'data-demo-user="{user.username}"' in html
    csp = resp.headers["Content-Security-Policy"]
    assert re.search(r"script-src 'self' 'nonce-[\w-]+'", csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "<script>" not in html and "style=" not in html
    assert CLIENT_SECRET not in html
    assert app.config["SESSION_COOKIE_NAME"] == "demo_session"


def test_demo_users_are_only_listed_for_the_local_provider() -> None:
    html = create_app(base_config()).test_client().get("/").get_data(as_text=True)
    assert "data-demo-user" not in html
    assert "alice-demo-pass" not in html


def test_missing_settings_are_named() -> None:
    with pytest.raises(RuntimeError, match=r"DEMO_OIDC_METADATA_URL.*python -m demo"):
        create_app({"DEMO_OIDC_CLIENT_ID": "x", "DEMO_OIDC_CLIENT_SECRET": "y"} | {"TESTING": True})


def test_pages_need_a_login() -> None:
    client = create_app(base_config()).test_client()
    resp = client.get("/overview")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/?next=/overview")


def test_overview_token_carries_tenant_and_region(portal: Any, toucan_sandbox: Any) -> None:
    with portal.test_client(user=claims_of("alice")) as client:
        resp = client.get("/overview")
        html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    tokens = set(re.findall(r'auth-token="([^"]+)"', html))
    assert len(re.findall(r"<tc-dashboard ", html)) == 2 and len(tokens) == 1  # one token, two dashboards
    grant = toucan_sandbox.introspect(tokens.pop())
    assert grant["attributes"] == {"organization_id": "acme", "region": "emea"}
    assert grant["permissions"] == {"dashboard": {"can_view": True}}
    # The grant panel shows claims, never the token, the API key or the client secret.
    assert 'data-granted-attribute="organization_id">acme<' in html
    assert html.count(grant["user"]["distinctId"]) >= 1
    panel = html[html.index('id="grant"') :]
    assert "auth-token" not in panel and not re.search(r"\beyJ", panel)
    assert toucan_sandbox.api_key not in html and CLIENT_SECRET not in html


def test_assistant_for_analysts_only(portal: Any, toucan_sandbox: Any) -> None:
    with portal.test_client(user=claims_of("erin")) as client:
        html = client.get("/assistant").get_data(as_text=True)
    token = re.search(r'<tc-ai-assistant [^>]*auth-token="([^"]+)"', html)
    assert token, "an analyst gets the assistant"
    assert toucan_sandbox.introspect(token.group(1))["permissions"] == {"ai": {"can_query": True}}

    with portal.test_client(user=claims_of("dave")) as client:
        html = client.get("/assistant").get_data(as_text=True)
    assert "<tc-ai-assistant" not in html
    assert 'data-toucan-placeholder="not_permitted"' in html


@pytest.mark.parametrize(
    "groups", [["analysts"], ["org:acme", "org:globex"], []], ids=["no-org", "two-orgs", "no-groups"]
)
def test_no_single_organisation_means_no_token(portal: Any, toucan_sandbox: Any, groups: list[str]) -> None:
    with portal.test_client(user=claims_of("alice", groups=groups)) as client:
        html = client.get("/overview").get_data(as_text=True)
    assert "<tc-dashboard" not in html
    assert html.count('data-toucan-placeholder="no_attributes"') == 2
    assert toucan_sandbox.stats.get("tokens_issued", 0) == 0


def test_no_region_claim_means_the_whole_organisation(portal: Any, toucan_sandbox: Any) -> None:
    with portal.test_client(user=claims_of("bob", address=None)) as client:
        html = client.get("/overview").get_data(as_text=True)
    token = re.search(r'auth-token="([^"]+)"', html)
    assert token
    assert toucan_sandbox.introspect(token.group(1))["attributes"] == {"organization_id": "acme"}


def test_stack_options_from_env() -> None:
    opts = StackOptions.from_env({"DEMO_PORT": "8000", "DEMO_TOKEN_LIFETIME": "30"}, idp_port=0)
    assert (opts.port, opts.idp_port, opts.sandbox_port, opts.token_lifetime) == (8000, 0, 5100, 30)
    with pytest.raises(StackError, match="DEMO_PORT"):
        StackOptions.from_env({"DEMO_PORT": "http"})


def test_external_services_need_their_credentials() -> None:
    with pytest.raises(StackError, match="DEMO_OIDC_CLIENT_ID"):
        DemoStack(
            StackOptions(oidc_metadata_url="https://idp.example/.well-known/openid-configuration")
        ).start()
    with pytest.raises(StackError, match="TOUCAN_API_KEY"):
        DemoStack(StackOptions(port=0, toucan_base_url="https://toucan.example")).start()


def test_other_host_names_go_to_the_registered_url() -> None:
    client = create_app(base_config(DEMO_CANONICAL_URL="http://127.0.0.1:5000")).test_client()
    resp = client.get("/overview?tab=1", base_url="http://localhost:5000")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "http://127.0.0.1:5000/overview?tab=1"
    assert client.get("/", base_url="http://127.0.0.1:5000").status_code == 200


@pytest.mark.integration
def test_external_provider_and_toucan_are_used_instead_of_local_ones(toucan_sandbox: Any) -> None:
    """Pointing at "real" services: neither local stand-in starts, the portal talks to them."""
    import requests

    from demo.provider import ClientRegistration, ProviderServer
    from flask_toucan.serving import listen

    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    portal_url = f"http://127.0.0.1:{port}"
    idp = ProviderServer(port=0).start(
        ClientRegistration("external-client", "external-secret", f"{portal_url}/toucan/callback", portal_url)
    )
    env = {
        "DEMO_PORT": str(port),
        "DEMO_OIDC_METADATA_URL": idp.metadata_url,
        "DEMO_OIDC_CLIENT_ID": "external-client",
        "DEMO_OIDC_CLIENT_SECRET": "external-secret",
        "TOUCAN_BASE_URL": toucan_sandbox.url,
        "TOUCAN_API_KEY": toucan_sandbox.api_key,
    }
    try:
        with DemoStack(StackOptions.from_env(env)) as stack:
            assert stack.provider is None and stack.sandbox is None
            assert stack.url == portal_url
            assert stack.app is not None
            assert stack.app.config["DEMO_INTROSPECTION_URL"] is None
            page = requests.get(portal_url + "/", timeout=5)
            assert page.status_code == 200 and "data-demo-user" not in page.text
            login = requests.get(portal_url + "/toucan/login", allow_redirects=False, timeout=5)
            assert login.status_code == 302
            assert login.headers["Location"].startswith(f"{idp.url}/oauth/authorize?")
            assert "client_id=external-client" in login.headers["Location"]
    finally:
        idp.stop()


def test_switch_account_without_a_reachable_provider_goes_back_to_sign_in() -> None:
    resp = create_app(base_config()).test_client().get("/switch-account")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


def test_token_pages_send_the_security_headers(portal: Any) -> None:
    """What docs/security.md asks of pages that carry tokens, on the demo's own pages."""
    with portal.test_client(user=claims_of("alice")) as client:
        resp = client.get("/overview")
    assert resp.status_code == 200 and "auth-token=" in resp.get_data(as_text=True)
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and re.search(r"script-src 'self' 'nonce-[\w-]+'", csp)


def test_unknown_page_is_the_portals_error_page() -> None:
    app = create_app(base_config())
    resp = app.test_client().get("/no-such-page")
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    assert "data-error-page" in page and "Page not found" in page and "Toucan analytics portal" in page
    assert "Werkzeug" not in page and "The requested URL was not found" not in page
    wrong = app.test_client().post("/overview")
    assert wrong.status_code == 405 and "data-error-page" in wrong.get_data(as_text=True)


def test_console_banner_names_the_servers_but_prints_no_credential() -> None:
    """The banner ends up in terminals, CI logs and screen shares: no API key in it."""
    from types import SimpleNamespace

    from demo.__main__ import banner

    key = "sandbox-key-that-must-not-be-printed"
    stack: Any = SimpleNamespace(
        url="http://127.0.0.1:5000",
        provider=None,
        sandbox=SimpleNamespace(url="http://127.0.0.1:5100", api_key=key),
        options=SimpleNamespace(
            oidc_metadata_url=f"{IDP}/.well-known/openid-configuration", token_lifetime=300
        ),
    )
    text = banner(stack)
    assert "http://127.0.0.1:5100" in text and "http://127.0.0.1:5000" in text
    assert key not in text and "TOUCAN_API_KEY" not in text
