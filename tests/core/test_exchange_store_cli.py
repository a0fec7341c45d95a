"""RFC 7523 exchange, the shared store, signals and the CLI."""

from __future__ import annotations

import json
import os
import stat

import pytest
from flask import Flask, jsonify, request

from flask_toucan import Toucan, UpstreamRejected, token_issued, verify_token

from .helpers import make_app, rsa_pem, signed_config

ISS, AUD = "https://host.example", "toucan-embed"


@pytest.mark.integration
def test_jwt_bearer_exchange(live_server):
    seen = []
    endpoint = Flask("exchange")

    @endpoint.post("/oauth/token")
    def token():
        seen.append(request.form.to_dict())
        if len(seen) == 1:
            return jsonify(error="temporarily_unavailable"), 503
        return jsonify(access_token=f"opaque-{len(seen)}", token_type="Bearer", expires_in=600)

    srv = live_server(endpoint)
    app, toucan = make_app(
        **signed_config(TOUCAN_EXCHANGE_URL=srv.url + "/oauth/token", TOUCAN_EXCHANGE_CLIENT_SECRET="s3")
    )
    with app.test_request_context():
        user = toucan.login_user({"sub": "alice", "iss": "https://idp", "org": "acme"})
        tok = toucan.issue_token(user)
        again = toucan.issue_token(user)
    assert tok.value == "opaque-2" and again.value == tok.value  # retried once, then cached
    assert 590 <= tok.expires_in <= 600
    form = seen[-1]
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    with app.app_context():
        claims = verify_token(form["assertion"], toucan.jwks(), audience=AUD, issuer=ISS)
    assert claims["embed_context"]["attributes"] == {"organization_id": "acme"}


@pytest.mark.integration
def test_exchange_refusal_is_upstream_error(live_server):
    endpoint = Flask("exchange-refuses")
    endpoint.post("/oauth/token")(lambda: (jsonify(error="invalid_grant", error_description="x"), 400))
    srv = live_server(endpoint)
    app, toucan = make_app(
        **signed_config(TOUCAN_EXCHANGE_URL=srv.url + "/oauth/token", TOUCAN_EXCHANGE_CLIENT_SECRET="s3")
    )
    with app.test_request_context():
        user = toucan.login_user({"sub": "alice", "iss": "https://idp", "org": "acme"})
        with pytest.raises(UpstreamRejected, match="invalid_grant") as info:
            toucan.issue_token(user)
    assert "BEGIN" not in str(info.value)


def test_redis_store_shares_sessions_and_tokens_between_apps():
    """Two app instances (think: two workers) sharing one Redis see the same login and cache."""
    import fakeredis
    from cachelib import RedisCache

    server = fakeredis.FakeServer()

    def store():
        return RedisCache(host=fakeredis.FakeRedis(server=server), key_prefix="toucan:")

    app1, t1 = make_app(Toucan(), **signed_config(TOUCAN_STORE=store()))
    app2, t2 = make_app(Toucan(), **signed_config(TOUCAN_STORE=store()))
    for app, t in ((app1, t1), (app2, t2)):

        @app.get("/login")
        def login(t=t):
            t.login_user({"sub": "alice", "iss": "i", "org": "acme"})
            return jsonify(csrf=t.csrf_token())

        @app.post("/logout-now")
        def logout_now(t=t):
            t.logout_user()
            return "bye"

        @app.get("/me")
        def me(t=t):
            return jsonify(user=t.current_user.subject if t.current_user else None)

    c1 = app1.test_client()
    csrf = c1.get("/login").get_json()["csrf"]
    cookie = c1.get_cookie("session").value
    c2 = app2.test_client()
    c2.set_cookie("session", cookie)
    assert c2.get("/me").get_json()["user"] == "alice"
    r1 = c1.post("/toucan/token", json={}, headers={"X-Toucan-CSRF": csrf})
    r2 = c2.post("/toucan/token", json={}, headers={"X-Toucan-CSRF": csrf})
    assert r1.get_json()["token"] == r2.get_json()["token"]  # the cache is shared
    c1.post("/logout-now")
    c2.set_cookie("session", cookie)  # replay the pre-logout cookie on the other worker
    assert c2.get("/me").get_json()["user"] is None
    assert c2.post("/toucan/token", json={}, headers={"X-Toucan-CSRF": csrf}).status_code == 401


def test_token_issued_signal():
    app, toucan = make_app(**signed_config())
    received = []

    def listener(sender, **kw):
        received.append((sender, kw))

    with token_issued.connected_to(listener, app):
        with app.test_request_context():
            user = toucan.login_user({"sub": "alice", "iss": "i", "org": "acme"})
            toucan.issue_token(user)
    assert received and received[0][0] is app
    assert received[0][1]["user"].subject == "alice" and received[0][1]["cached"] is False


# ----------------------------------------------------------------------- CLI
def test_cli_keygen_jwks_mint_check(tmp_path):
    key_path = tmp_path / "toucan.pem"
    app, _ = make_app(**signed_config())
    runner = app.test_cli_runner()
    result = runner.invoke(args=["toucan", "keygen", "--out", str(key_path), "--bits", "2048"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert "PRIVATE" not in result.output
    assert runner.invoke(args=["toucan", "keygen", "--out", str(key_path)]).exit_code != 0  # no overwrite

    app2, _ = make_app(**signed_config(TOUCAN_SIGNING_KEY=str(key_path)))
    runner2 = app2.test_cli_runner()
    jwks = json.loads(runner2.invoke(args=["toucan", "jwks"]).output)
    assert jwks["keys"][0]["kty"] == "RSA" and "d" not in jwks["keys"][0]

    out = runner2.invoke(args=["toucan", "mint", "--sub", "alice", "--claim", "org=acme"])
    assert out.exit_code == 0, out.output
    minted = json.loads(out.output)
    with app2.app_context():
        claims = verify_token(minted["token"], jwks, audience=AUD, issuer=ISS)
    assert claims["embed_context"]["attributes"]["organization_id"] == "acme"

    refused = runner2.invoke(args=["toucan", "mint", "--sub", "alice"])  # no org: fail closed
    assert refused.exit_code != 0 and "AttributeMappingError" in refused.output

    check = runner2.invoke(args=["toucan", "check"])
    assert check.exit_code == 0 and "RS256" in check.output and "BEGIN" not in check.output


def test_cli_check_api_mode_hides_key():
    from .helpers import API_KEY

    app, _ = make_app()
    out = app.test_cli_runner().invoke(args=["toucan", "check"])
    assert "api key: set" in out.output and API_KEY not in out.output


def test_rsa_pem_helper_is_strong():
    assert "PRIVATE KEY" in rsa_pem(0)


def test_apps_sharing_a_store_never_swap_tokens():
    """Same user, same attributes, one shared Redis: a token minted for one audience stays there."""
    import fakeredis
    from cachelib import RedisCache

    server = fakeredis.FakeServer()
    store = RedisCache(host=fakeredis.FakeRedis(server=server), key_prefix="toucan:")
    app1, t1 = make_app(Toucan(), **signed_config(TOUCAN_STORE=store, TOUCAN_AUDIENCE="aud-one"))
    app2, t2 = make_app(Toucan(), **signed_config(TOUCAN_STORE=store, TOUCAN_AUDIENCE="aud-two"))
    tokens = []
    for app, t in ((app1, t1), (app2, t2)):
        with app.test_request_context():
            user = t.login_user({"sub": "alice", "iss": "i", "org": "acme"})
            tokens.append(t.issue_token(user))
    assert tokens[0].value != tokens[1].value
    with app2.app_context():
        assert verify_token(tokens[1].value, t2.jwks(), audience="aud-two", issuer=ISS)
