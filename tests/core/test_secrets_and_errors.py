"""Every error path renders a JSON body with the right status and no secret in it.

Secrets: the API key, the private signing key (PEM and its base64 body), the
OAuth client secret. They are scanned for in response bodies and headers, log
records, exception text and reprs.
"""

from __future__ import annotations

import logging

import pytest
from authlib.integrations.flask_client import OAuth
from flask import Flask, jsonify

from flask_toucan import Toucan, ToucanError

from .helpers import API_KEY, SECRET_KEY, rsa_pem, signed_config

CLIENT_SECRET = "oauth-client-SECRET-9f8e7d6c5b4a"
EXCHANGE_SECRET = "embed-client-SECRET-1a2b3c4d5e6f"
PEM = rsa_pem(0)
PEM_BODY_FRAGMENT = PEM.splitlines()[5]


def secrets():
    return [API_KEY, CLIENT_SECRET, PEM_BODY_FRAGMENT, SECRET_KEY, EXCHANGE_SECRET]


def build(mode: str):
    app = Flask(f"secrets-{mode}")
    app.config.update(
        SECRET_KEY=SECRET_KEY, TOUCAN_RATE_LIMIT="2/minute", TOUCAN_HTTP_DEADLINE=1, TOUCAN_HTTP_RETRIES=0
    )
    if mode == "api":
        # Port 9 (discard) is closed: every upstream call fails.
        app.config.update(TOUCAN_BASE_URL="http://127.0.0.1:9", TOUCAN_API_KEY=API_KEY)
    else:
        app.config.update(
            signed_config(
                TOUCAN_SIGNING_KEY=PEM,
                TOUCAN_EXCHANGE_URL="http://127.0.0.1:9/oauth/token",
                TOUCAN_EXCHANGE_CLIENT_SECRET=EXCHANGE_SECRET,
            )
        )
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id="cid",
        client_secret=CLIENT_SECRET,
        authorize_url="http://127.0.0.1:9/authorize",
        access_token_url="http://127.0.0.1:9/token",
        client_kwargs={"scope": "openid"},
    )
    toucan = Toucan(app, oauth=oauth)

    @toucan.attribute("organization_id")
    def org(user):
        return user.get("org")

    @app.get("/as/<sub>")
    def as_user(sub):
        claims = {"sub": sub, "iss": "https://idp"}
        if sub != "noorg":
            claims["org"] = "acme"
        toucan.login_user(claims)
        return jsonify(csrf=toucan.csrf_token())

    @app.get("/page")
    def page():
        return str(toucan.issue_token().expires_in)

    return app, toucan


@pytest.mark.parametrize("mode", ["api", "signed"])
def test_every_error_path_is_json_and_secret_free(mode, caplog):
    caplog.set_level(logging.DEBUG)
    app, _toucan = build(mode)
    client = app.test_client()
    seen = []

    def check(resp, status):
        seen.append(resp)
        assert resp.status_code == status, resp.get_data(as_text=True)
        text = resp.get_data(as_text=True) + str(dict(resp.headers))
        for secret in secrets():
            assert secret not in text
        if status not in (302, 405):
            assert resp.is_json and "error" in resp.get_json()
            assert "Traceback" not in text

    check(client.post("/toucan/token", json={}), 401)  # no session
    check(client.get("/toucan/token"), 405)
    check(client.get("/toucan/callback?state=forged&code=x"), 400)  # state mismatch
    check(client.get("/toucan/callback?error=access_denied&error_description=" + API_KEY), 400)
    csrf = client.get("/as/alice").get_json()["csrf"]
    check(client.post("/toucan/token", json={}), 403)  # no CSRF header
    check(client.post("/toucan/token", json={}, headers={"X-Toucan-CSRF": "forged"}), 403)
    check(client.post("/toucan/token", json={"kind": "assistant"}, headers={"X-Toucan-CSRF": csrf}), 403)
    check(client.post("/toucan/token", json=["x"], headers={"X-Toucan-CSRF": csrf}), 400)
    limited = client.post("/toucan/token", json={}, headers={"X-Toucan-CSRF": csrf})  # 3rd hit
    check(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1
    csrf = client.get("/as/bob").get_json()["csrf"]  # a new session: a new rate-limit bucket
    check(client.post("/toucan/token", json={"kind": "nope"}, headers={"X-Toucan-CSRF": csrf}), 400)
    check(client.post("/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": csrf}), 503)
    check(
        client.post(
            "/toucan/token",
            json={"kind": "dashboard"},
            headers={"X-Toucan-CSRF": csrf, "Sec-Fetch-Site": "cross-site"},
        ),
        403,
    )
    csrf = client.get("/as/noorg").get_json()["csrf"]
    check(client.post("/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": csrf}), 403)
    check(client.get("/page"), 403)  # app page: the app-level handler answers too
    check(client.post("/toucan/logout"), 403)  # logout without CSRF
    assert len(seen) >= 12

    for record in caplog.records:
        message = record.getMessage()
        for secret in secrets():
            assert secret not in message


def test_reprs_and_exceptions_hold_no_secret():
    for mode in ("api", "signed"):
        app, toucan = build(mode)
        state = app.extensions["toucan"]
        texts = [
            repr(state),
            repr(state.config),
            repr(state.service.minter),
            repr(toucan),
            repr(state.config.keys) if state.config.keys else "",
        ]
        for text in texts:
            for secret in secrets():
                assert secret not in text


def test_token_repr_redacts_value():
    app, _toucan = build("signed")
    app.config["TOUCAN_EXCHANGE_URL"] = None
    app2 = Flask("x")
    app2.config.update(SECRET_KEY=SECRET_KEY, **signed_config())
    t = Toucan(app2)
    t.attribute("organization_id")(lambda u: "acme")
    with app2.test_request_context():
        token = t.issue_token(t.login_user({"sub": "a", "iss": "i"}))
    assert token.value not in repr(token) and "redacted" in repr(token)


def test_errors_have_codes():
    from flask_toucan import exceptions

    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert issubclass(cls, ToucanError)
        assert cls("m").to_dict()["error"] == cls.code


def test_cross_origin_refresh_refused():
    app, _toucan = build("signed")
    app.config["TOUCAN_EXCHANGE_URL"] = None
    client = app.test_client()
    csrf = client.get("/as/alice").get_json()["csrf"]
    r = client.post(
        "/toucan/token", json={}, headers={"X-Toucan-CSRF": csrf, "Origin": "https://evil.example"}
    )
    assert r.status_code == 403 and r.get_json()["error"] == "csrf_failed"
    assert "Access-Control-Allow-Origin" not in r.headers
