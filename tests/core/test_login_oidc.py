"""Login through a real OpenID provider: authorization code + PKCE S256, state, nonce.

The provider is Canaille (``pytest-iam``), in-process on ``localhost``; the host
app is served on ``127.0.0.1`` and driven with ``requests`` hop by hop, the way a
browser would follow the redirects.

Canaille registers Authlib's ``CodeChallenge(required=True)``: for a confidential
client PKCE is enforced whenever the authorization request carried a
``code_challenge`` (a token request without ``code_verifier``, or with a wrong
one, is refused); for a public client it is mandatory. The full-login test
proves it on the wire against the host's own authorization code.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from flask import Flask

from flask_toucan import signals
from flask_toucan.redirects import safe_next

from .helpers import make_app

# Fixtures make_host and idp_user come from oidc_fixtures through tests/core/conftest.py.
from .oidc_fixtures import Host, consent, query, resign_id_tokens

# Tests that start the provider and a served host app.
integration = pytest.mark.integration


def _token_request(host: Host, callback_url: str, **extra: str) -> requests.Response:
    """Redeem the host's authorization code ourselves (client credentials, no verifier unless given)."""
    metadata = requests.get(f"{host.provider.url}.well-known/openid-configuration", timeout=10).json()
    data = {
        "grant_type": "authorization_code",
        "code": query(callback_url)["code"],
        "redirect_uri": f"{host.url}/toucan/callback",
        **extra,
    }
    return requests.post(
        metadata["token_endpoint"],
        data=data,
        auth=(host.client_id, host.client_secret),
        timeout=10,
    )


# ---------------------------------------------------------------- full login
@integration
def test_full_login_pkce_state_nonce_rotation(make_host: Any, idp_user: Any) -> None:
    host: Host = make_host()
    consent(host, idp_user)

    # A pre-login session (fixation attempt / leftover data) and its cookie.
    assert host.get("/set-marker").status_code == 200
    pre_login_cookie = host.session_cookie()
    assert pre_login_cookie
    assert host.me() is None

    start = host.start_login("/dashboard")
    params = query(start.headers["Location"])
    assert params["response_type"] == "code"
    assert params["client_id"] == host.client_id
    assert params["redirect_uri"] == f"{host.url}/toucan/callback"
    assert set(params["scope"].split()) >= {"openid"}
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43  # base64url(SHA-256), no padding
    assert params["nonce"] and params["state"]

    callback = host.authorize(start.headers["Location"])
    assert query(callback)["state"] == params["state"]

    # The provider enforces PKCE for this code: no verifier, or a wrong one, is refused ...
    no_verifier = _token_request(host, callback)
    assert no_verifier.status_code == 400, no_verifier.text
    assert no_verifier.json()["error"] == "invalid_request"
    assert "code_verifier" in no_verifier.json().get("error_description", "")
    wrong = _token_request(host, callback, code_verifier="w" * 43)
    assert wrong.status_code == 400, wrong.text
    assert wrong.json()["error"] == "invalid_grant"

    # ... while the host, holding the right verifier, redeems the same code.
    done = host.finish(callback)
    assert done.status_code == 302, done.text
    assert done.headers["Location"] in ("/dashboard", f"{host.url}/dashboard")

    me = host.me()
    assert me["issuer"] == host.issuer
    assert me["subject"] == idp_user.user_name  # Canaille's sub
    for protocol_claim in ("nonce", "at_hash", "aud", "exp"):
        assert protocol_claim not in me["claims"]

    # Session rotated: new cookie value, pre-login keys and Authlib's state gone.
    assert host.session_cookie() != pre_login_cookie
    keys = host.get("/session-keys").json()
    assert "pre_login_marker" not in keys
    assert not [k for k in keys if k.startswith("_state_")]
    assert "_toucan_next" not in keys

    # The code is single-use: redeeming it again fails at the provider.
    replay = _token_request(host, callback, code_verifier="x" * 43)
    assert replay.status_code == 400

    # The pre-login cookie, replayed, is not a logged-in session.
    other = requests.Session()
    other.cookies.set("session", pre_login_cookie, domain="127.0.0.1")
    assert other.get(f"{host.url}/me", timeout=10).json() is None
    other.close()


@integration
def test_login_refused_when_redirect_uri_not_registered(make_host: Any, idp_user: Any) -> None:
    """The provider only sends codes to registered redirect URIs (it does not redirect at all)."""
    host: Host = make_host(register_redirect=False)
    consent(host, idp_user)
    start = host.start_login()
    resp = host.http.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert resp.status_code >= 400
    assert host.url not in resp.headers.get("Location", "")
    assert host.me() is None


# --------------------------------------------------------- id_token checks
def _forge(**changes: Any) -> Any:
    def mutate(claims: dict[str, Any]) -> None:
        for name, value in changes.items():
            value = value(claims) if callable(value) else value
            claims[name] = value

    return mutate


def _aud_cases() -> list[Any]:
    # azp names the host so that Authlib's own azp rule passes: only the
    # extension's exact-aud check stands between this token and a login.
    def azp(claims: dict[str, Any]) -> str:
        return claims["aud"][0] if isinstance(claims["aud"], list) else claims["aud"]

    return [
        pytest.param({"azp": azp, "aud": "someone-else"}, id="aud-other-client"),
        pytest.param({"azp": azp, "aud": ["someone-else"]}, id="aud-list-other-client"),
        pytest.param({"azp": azp, "aud": lambda c: azp(c) + "-evil"}, id="aud-suffix"),
        pytest.param({"azp": azp, "aud": lambda c: azp(c)[:-1]}, id="aud-prefix"),
    ]


def _iss_cases() -> list[Any]:
    return [
        pytest.param({"iss": lambda c: c["iss"] + "evil"}, id="iss-suffix"),
        pytest.param({"iss": lambda c: c["iss"] + "/"}, id="iss-trailing-slash"),
        pytest.param({"iss": lambda c: c["iss"][:-1]}, id="iss-prefix"),
        pytest.param({"iss": lambda c: c["iss"].replace("localhost", "127.0.0.1")}, id="iss-other-host"),
        pytest.param({"iss": "https://evil.example"}, id="iss-foreign"),
    ]


def _other_cases() -> list[Any]:
    return [
        pytest.param({"nonce": "replayed-nonce"}, id="nonce-mismatch"),
        pytest.param({"exp": lambda c: c["iat"] - 3600}, id="expired"),
    ]


@integration
@pytest.mark.parametrize("changes", [*_aud_cases(), *_iss_cases(), *_other_cases()])
def test_id_token_with_foreign_aud_or_iss_is_refused(
    make_host: Any, idp_user: Any, monkeypatch: pytest.MonkeyPatch, iam_configuration: Any, changes: Any
) -> None:
    host: Host = make_host()
    consent(host, idp_user)
    forged = resign_id_tokens(host, monkeypatch, iam_configuration, _forge(**changes))
    resp = host.login("/dashboard")
    assert forged, "the id_token was not intercepted"
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["error"] == "login_failed"
    assert host.me() is None
    assert "_toucan_user" not in host.get("/session-keys").json()


@integration
def test_resigned_id_token_without_changes_logs_in(
    make_host: Any, idp_user: Any, monkeypatch: pytest.MonkeyPatch, iam_configuration: Any
) -> None:
    """Control for the test above: the re-signing harness alone does not break the login."""
    host: Host = make_host()
    consent(host, idp_user)
    forged = resign_id_tokens(host, monkeypatch, iam_configuration, lambda claims: None)
    resp = host.login()
    assert forged and resp.status_code == 302, resp.text
    assert host.me()["subject"] == idp_user.user_name


@integration
def test_id_token_signed_by_another_key_is_refused(
    make_host: Any, idp_user: Any, monkeypatch: pytest.MonkeyPatch, iam_configuration: Any
) -> None:
    from joserfc.jwk import RSAKey

    host: Host = make_host()
    consent(host, idp_user)
    real_kid = iam_configuration["CANAILLE_OIDC"]["ACTIVE_JWKS"][0]["kid"]
    other = RSAKey.generate_key(2048, parameters={"kid": real_kid}, private=True)
    forged = resign_id_tokens(
        host, monkeypatch, {"CANAILLE_OIDC": {"ACTIVE_JWKS": [other.as_dict(private=True)]}}, lambda c: None
    )
    resp = host.login()
    assert forged and resp.status_code == 400
    assert resp.json()["error"] == "login_failed"
    assert host.me() is None


# ------------------------------------------------------------------- state
@integration
def test_state_mismatch_is_refused_and_leaves_no_session(make_host: Any, idp_user: Any) -> None:
    host: Host = make_host()
    consent(host, idp_user)
    start = host.start_login("/dashboard")
    callback = host.authorize(start.headers["Location"])
    params = query(callback)
    bad = callback.replace(f"state={params['state']}", "state=not-the-state")
    assert bad != callback
    resp = host.finish(bad)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "login_failed"
    assert host.me() is None
    keys = host.get("/session-keys").json()
    assert "_toucan_user" not in keys and "_toucan_sid" not in keys


@integration
def test_callback_without_state_or_from_another_browser_is_refused(make_host: Any, idp_user: Any) -> None:
    host: Host = make_host()
    consent(host, idp_user)
    start = host.start_login()
    callback = host.authorize(start.headers["Location"])
    # No state at all.
    params = {k: v for k, v in query(callback).items() if k != "state"}
    no_state = host.finish(f"{host.url}/toucan/callback?{urlencode(params)}")
    assert no_state.status_code == 400
    assert no_state.json()["error"] == "login_failed"
    # The right URL, but in a browser that never started this login (login CSRF).
    victim = requests.Session()
    resp = victim.get(callback, allow_redirects=False, timeout=10)
    assert resp.status_code == 400
    assert resp.json()["error"] == "login_failed"
    assert victim.get(f"{host.url}/me", timeout=10).json() is None
    victim.close()


# ------------------------------------------------------------------- next
REFUSED_NEXT = [
    "//evil.com",
    "/\\evil.com",
    "https:evil.com",
    "https://evil.com",
    "http:/evil.com",
    "javascript:alert(1)",
    "/%2F%2Fevil.com",
    "/%2f%2fevil.com",
    "/%5Cevil.com",
    "%2F%2Fevil.com",
    "/%252F%252Fevil.com",  # double-encoded
    "/\tevil",
    "/\nevil",
    "/\revil",
    "/%09/evil.com",
    "/%0d%0aSet-Cookie:x=1",
    "\\\\evil",
    " /evil",
    "///evil.com",
    "/\x00evil",
    "evil.com",
    "",
    None,
    "/" + "a" * 3000,
]
ALLOWED_NEXT = ["/dashboard?x=1", "/", "/a/b#frag", "/reports/2024?from=x&to=y"]


@pytest.mark.parametrize("target", REFUSED_NEXT)
def test_safe_next_refuses(target: Any) -> None:
    assert safe_next(target) is None


@pytest.mark.parametrize("target", ALLOWED_NEXT)
def test_safe_next_allows_same_origin_paths(target: str) -> None:
    assert safe_next(target) == target


def _landing(host: Host, resp: requests.Response) -> str:
    assert resp.status_code == 302, resp.text
    location = resp.headers["Location"]
    return location[len(host.url) :] if location.startswith(host.url) else location


@integration
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/dashboard?x=1", "/dashboard?x=1"),
        ("//evil.com", "/"),
        ("/\\evil.com", "/"),
        ("https://evil.com", "/"),
        ("/%2F%2Fevil.com", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_through_the_real_login(make_host: Any, idp_user: Any, target: str, expected: str) -> None:
    host: Host = make_host(TOUCAN_LOGIN_REDIRECT="/")
    consent(host, idp_user)
    assert _landing(host, host.login(target)) == expected
    assert host.me()["subject"] == idp_user.user_name


@integration
def test_login_redirect_default_is_configurable(make_host: Any, idp_user: Any) -> None:
    host: Host = make_host(TOUCAN_LOGIN_REDIRECT="/home")
    consent(host, idp_user)
    assert _landing(host, host.login("//evil.com")) == "/home"


# ----------------------------------------------------- (issuer, subject) identity
def test_identity_is_issuer_and_subject_never_email() -> None:
    app, toucan = make_app()
    same_email = {"email": "shared@example.com", "email_verified": True, "org": "acme"}
    with app.test_request_context():
        alice = toucan.login_user({"sub": "alice", **same_email}, issuer="https://idp.example")
        alice_sid = toucan.csrf_token()
    with app.test_request_context():
        mallory = toucan.login_user({"sub": "mallory", **same_email}, issuer="https://idp.example")
        mallory_sid = toucan.csrf_token()
    with app.test_request_context():
        other_idp = toucan.login_user({"sub": "alice", **same_email}, issuer="https://other-idp.example")
    assert alice != mallory and alice.id != mallory.id
    assert alice.distinct_id != mallory.distinct_id
    assert alice != other_idp and alice.distinct_id != other_idp.distinct_id
    assert alice_sid != mallory_sid
    with app.test_request_context():
        again = toucan.login_user(
            {"sub": "alice", "email": "changed@example.com"}, issuer="https://idp.example"
        )
    assert again == alice and again.id == ("https://idp.example", "alice")


@integration
def test_two_provider_users_with_one_email_are_two_users(make_host: Any, iam_server: Any) -> None:
    host: Host = make_host()
    seen = []
    for _ in range(2):
        user = iam_server.random_user(emails=["shared@example.com"])
        iam_server.login(user)
        consent(host, user)
        host.http.cookies.clear()
        assert host.login().status_code == 302
        me = host.me()
        assert me["claims"].get("email") == "shared@example.com"
        assert me["subject"] == user.user_name
        seen.append((me["issuer"], me["subject"]))
    assert seen[0] != seen[1]


# ------------------------------------------------------------------ logout
@integration
def test_logout_requires_csrf_and_sticks(make_host: Any, idp_user: Any) -> None:
    host: Host = make_host(
        TOUCAN_LOGOUT_REDIRECT="/bye", TOUCAN_RP_INITIATED_LOGOUT=False
    )  # local logout; RP logout: test_oidc_provider
    consent(host, idp_user)
    assert host.login().status_code == 302
    assert host.me() is not None
    logged_in_cookie = host.session_cookie()
    csrf_token = host.get("/csrf").json()["token"]

    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": csrf_token + "x"}):
        refused = host.post("/toucan/logout", data=data)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "csrf_failed"
        assert host.me() is not None  # still logged in

    # A token of another session does not work either.
    other: Host = make_host()
    consent(other, idp_user)
    assert other.login().status_code == 302
    foreign = other.get("/csrf").json()["token"]
    assert host.post("/toucan/logout", data={"csrf_token": foreign}).status_code == 403
    assert host.me() is not None

    done = host.post("/toucan/logout", data={"csrf_token": csrf_token})
    assert done.status_code == 302, done.text
    assert _landing(host, done) == "/bye"
    assert host.me() is None

    # Replaying the pre-logout cookie: the server-side record is gone.
    replay = requests.Session()
    replay.cookies.set("session", logged_in_cookie, domain="127.0.0.1")
    assert replay.get(f"{host.url}/me", timeout=10).json() is None
    replay.close()


@integration
def test_logout_accepts_the_csrf_header(make_host: Any, idp_user: Any) -> None:
    host: Host = make_host()
    consent(host, idp_user)
    assert host.login().status_code == 302
    token = host.get("/csrf").json()["token"]
    header = host.app.extensions["toucan"].config.csrf_header
    resp = host.post("/toucan/logout", headers={header: token})
    assert resp.status_code == 302, resp.text
    assert host.me() is None


# ----------------------------------------------------------------- signals
@integration
def test_login_and_logout_signals_carry_the_app(make_host: Any, idp_user: Any) -> None:
    host: Host = make_host()
    consent(host, idp_user)
    events: list[tuple[str, Any, Any]] = []

    def on_login(sender: Any, user: Any = None, **kw: Any) -> None:
        events.append(("in", sender, user))

    def on_logout(sender: Any, user: Any = None, **kw: Any) -> None:
        events.append(("out", sender, user))

    with signals.user_logged_in.connected_to(on_login), signals.user_logged_out.connected_to(on_logout):
        assert host.login().status_code == 302
        token = host.get("/csrf").json()["token"]
        assert host.post("/toucan/logout", data={"csrf_token": token}).status_code == 302

    assert [e[0] for e in events] == ["in", "out"]
    for _, sender, user in events:
        assert sender is host.app  # the real app, not the current_app proxy
        assert type(sender) is Flask
        assert user.id == (host.issuer, idp_user.user_name)


def test_callback_with_foreign_iss_parameter_refused(monkeypatch):
    """RFC 9207: an ``iss`` in the authorization response must be the provider's issuer."""
    from authlib.integrations.flask_client import OAuth
    from flask import Flask

    from flask_toucan import Toucan

    app = Flask("mixup")
    app.config.update(SECRET_KEY="k" * 32, TOUCAN_BASE_URL="http://127.0.0.1:9", TOUCAN_API_KEY="x")
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id="c",
        client_secret="s",
        client_kwargs={"scope": "openid"},
        authorize_url="http://127.0.0.1:9/a",
        access_token_url="http://127.0.0.1:9/t",
    )
    Toucan(app, oauth=oauth)
    client = oauth.create_client("idp")
    monkeypatch.setattr(client, "load_server_metadata", lambda: {"issuer": "https://idp.example"})
    monkeypatch.setattr(client.framework, "get_state_data", lambda session, state: {"nonce": "n"})
    r = app.test_client().get("/toucan/callback?state=s&code=c&iss=https://evil.example")
    assert r.status_code == 400 and r.get_json()["error"] == "login_failed"
