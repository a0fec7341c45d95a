"""Against a real OpenID Provider (node-oidc-provider): login with PKCE, back-channel logout.

The host app is served on 127.0.0.1 (its own port); each test registers its own
client at the provider through the test-only admin hook, with the host's exact
callback and back-channel logout URIs. The browser is a ``requests.Session``
that follows every redirect and submits the provider's login and consent forms.
"""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.integrations.flask_client import OAuth
from flask import Flask

from flask_toucan import Toucan

from ..core.helpers import API_KEY, SECRET_KEY

pytestmark = [pytest.mark.integration]

FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
INPUT = re.compile(r"<input([^>]*)>")
ATTR = re.compile(r'(\w+)="([^"]*)"')


class Host:
    def __init__(self, provider: Any, live_server: Any, **config: Any) -> None:
        self.client_id = f"host-{uuid.uuid4().hex[:8]}"
        self.secret = uuid.uuid4().hex
        app = Flask(f"op-host-{self.client_id}")
        app.config.update(SECRET_KEY=SECRET_KEY, TOUCAN_BASE_URL="http://127.0.0.1:9", TOUCAN_API_KEY=API_KEY)
        app.config.update(config)
        oauth = OAuth(app)
        oauth.register(
            "idp",
            client_id=self.client_id,
            client_secret=self.secret,
            server_metadata_url=f"{provider.url}/.well-known/openid-configuration",
            client_kwargs={"scope": "openid email profile offline_access"},
        )
        self.toucan = Toucan(app, oauth=oauth)

        @app.get("/whoami")
        def whoami() -> Any:
            user = self.toucan.current_user
            return {"sub": user.subject, "org": user.get("org")} if user is not None else {"sub": None}

        self.app = app
        self.server = live_server(app)
        self.url = self.server.url.rstrip("/")
        provider.register_client(
            client_id=self.client_id,
            client_secret=self.secret,
            redirect_uris=[f"{self.url}/toucan/callback"],
            post_logout_redirect_uris=[f"{self.url}/toucan/logged-out"],
            backchannel_logout_uri=f"{self.url}/toucan/backchannel-logout",
            backchannel_logout_session_required=True,
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="client_secret_basic",
        )
        self.http = requests.Session()

    def whoami(self) -> Any:
        return self.http.get(f"{self.url}/whoami", timeout=10).json()


def browse(http: requests.Session, url: str, login: str, *, stop_at: str) -> requests.Response:
    """Follow redirects and submit the provider's forms (login as ``login``) until ``stop_at``."""
    method, data = "GET", None
    for _ in range(20):
        resp = http.request(method, url, data=data, allow_redirects=False, timeout=10)
        if url.startswith(stop_at):
            return resp
        if resp.is_redirect:
            url, method, data = urljoin(url, resp.headers["Location"]), "GET", None
            continue
        form = FORM.search(resp.text)
        assert resp.status_code == 200 and form, (resp.status_code, resp.text[:500])
        fields = {}
        for tag in INPUT.findall(form.group(2)):
            attrs = dict(ATTR.findall(tag))
            if "name" in attrs:
                fields[attrs["name"]] = unescape(attrs.get("value", ""))
        if "login" in fields:
            fields.update(login=login, password="any")
        if "xsrf" in fields:  # the provider's logout confirmation: "Yes, sign me out" (its button)
            fields["logout"] = "yes"
        url, method, data = urljoin(url, unescape(form.group(1))), "POST", fields
    raise AssertionError("too many hops")


def log_in(host: Host, login: str = "alice") -> requests.Response:
    start = host.http.get(f"{host.url}/toucan/login", allow_redirects=False, timeout=10)
    assert start.status_code == 302
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]  # PKCE
    return browse(host.http, start.headers["Location"], login, stop_at=f"{host.url}/toucan/callback")


def test_login_with_pkce_against_oidc_provider(oidc_provider: Any, live_server: Any) -> None:
    host = Host(oidc_provider, live_server)
    done = log_in(host)
    assert done.status_code == 302, done.text
    assert host.whoami() == {"sub": "alice", "org": "acme"}


def test_the_providers_end_session_logs_the_user_out_by_back_channel(
    oidc_provider: Any, live_server: Any
) -> None:
    host = Host(oidc_provider, live_server, TOUCAN_BACKCHANNEL_LOGOUT=True)
    bob = Host.__new__(Host)  # a second browser of another user on the same host app
    bob.__dict__.update(host.__dict__, http=requests.Session())
    log_in(host)
    log_in(bob, "bob")
    assert host.whoami()["sub"] == "alice" and bob.whoami()["sub"] == "bob"
    result = oidc_provider.admin("end-session", sub="alice")
    # Earlier tests' provider sessions of alice are ended too (their hosts are gone: errors).
    assert host.client_id in result["notified"], result
    assert host.whoami() == {"sub": None}
    assert bob.whoami()["sub"] == "bob"


def test_end_sessions_ends_a_login_made_through_the_provider(oidc_provider: Any, live_server: Any) -> None:
    host = Host(oidc_provider, live_server)
    log_in(host)
    with host.app.test_request_context():
        assert host.toucan.end_sessions(sub="alice") == 1
    assert host.whoami() == {"sub": None}


def test_logout_also_ends_the_providers_session_rp_initiated(oidc_provider: Any, live_server: Any) -> None:
    host = Host(oidc_provider, live_server, TOUCAN_LOGOUT_REDIRECT="/bye")

    @host.app.get("/csrf")
    def csrf() -> Any:
        return {"token": host.toucan.csrf_token()}

    log_in(host)
    cookie = host.http.cookies.get("session", domain="127.0.0.1")
    in_cookie = host.app.session_interface.get_signing_serializer(host.app).loads(cookie)  # type: ignore[attr-defined]
    assert "eyJ" not in str(in_cookie)  # the id_token (a JWT) stays server-side
    token = host.http.get(f"{host.url}/csrf", timeout=10).json()["token"]
    out = host.http.post(f"{host.url}/toucan/logout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status_code == 302
    at_provider = out.headers["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(at_provider).query).items()}
    assert at_provider.startswith(f"{oidc_provider.url}/session/end?")
    assert params["post_logout_redirect_uri"] == f"{host.url}/toucan/logged-out"
    assert params["client_id"] == host.client_id and params["id_token_hint"] and params["state"]
    assert host.whoami() == {"sub": None}  # the local login ended at once
    # The provider's logout confirmation form, then back to us with the state, then /bye.
    back = browse(host.http, at_provider, "alice", stop_at=f"{host.url}/toucan/logged-out")
    assert back.status_code == 302 and back.headers["Location"].endswith("/bye"), back.headers
    # The provider's session is gone: a new login asks for the password again.
    start = host.http.get(f"{host.url}/toucan/login", allow_redirects=False, timeout=10)
    page = host.http.get(start.headers["Location"], timeout=10)
    assert 'name="password"' in page.text


def test_a_logged_out_visit_with_a_wrong_state_goes_to_the_logout_redirect(
    oidc_provider: Any, live_server: Any
) -> None:
    host = Host(oidc_provider, live_server, TOUCAN_LOGOUT_REDIRECT="/bye")
    resp = host.http.get(
        f"{host.url}/toucan/logged-out?state=forged&next=https://evil.test/", allow_redirects=False
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/bye")
