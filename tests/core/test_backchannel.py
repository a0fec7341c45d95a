"""Back-Channel Logout 1.0: the logout_token checks, replay, and ending logins by sub / sid.

The provider here is an Authlib registration with its metadata and JWKS given
inline (no network); the tokens are signed with joserfc by the test. The
end-to-end run against a real provider is in tests/integration/test_oidc_provider.py.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from authlib.integrations.flask_client import OAuth
from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from flask_toucan import Toucan
from flask_toucan.logout_token import BACKCHANNEL_EVENT

from ..waiting import wait_until
from .helpers import API_KEY, SECRET_KEY

ISSUER = "https://idp.test"
CLIENT_ID = "host-app"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})


def make(**config: Any) -> tuple[Flask, Toucan]:
    app = Flask("bcl-host")
    app.config.update(SECRET_KEY=SECRET_KEY, TOUCAN_BASE_URL="http://127.0.0.1:9", TOUCAN_API_KEY=API_KEY)
    app.config.update({"TOUCAN_BACKCHANNEL_LOGOUT": True, **config})
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=CLIENT_ID,
        client_secret="not-used-here",
        authorize_url=f"{ISSUER}/auth",
        access_token_url=f"{ISSUER}/token",
        issuer=ISSUER,
        jwks={"keys": [KEY.as_dict(private=False)]},
        client_kwargs={"scope": "openid"},
    )
    toucan = Toucan(app, oauth=oauth)

    @app.post("/login")
    def login() -> Any:
        body = request.get_json()
        from flask import g

        g._toucan_provider_login = {"sid": body.pop("sid", None), "id_token": "id.token.value"}
        toucan.login_user(body, issuer=ISSUER)
        return jsonify({})

    @app.get("/whoami")
    def whoami() -> str:
        user = toucan.current_user
        return user.subject if user is not None else "anonymous"

    return app, toucan


def logout_token(key: Any = KEY, header: dict[str, Any] | None = None, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "iat": int(time.time()),
        "exp": int(time.time()) + 120,
        "jti": uuid.uuid4().hex,
        "events": {BACKCHANNEL_EVENT: {}},
        "sub": "alice",
        "sid": "idp-session-1",
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": "k1", "typ": "logout+jwt", **(header or {})}, claims, key)


@pytest.fixture
def host() -> tuple[Flask, Toucan]:
    return make()


def logged_in(app: Flask, sub: str = "alice", sid: str = "idp-session-1") -> Any:
    client = app.test_client()
    assert client.post("/login", json={"sub": sub, "sid": sid}).status_code == 200
    assert client.get("/whoami").text == sub
    return client


def post(app: Flask, token: Any) -> Any:
    return app.test_client().post("/toucan/backchannel-logout", data={"logout_token": token})


def test_a_valid_logout_token_ends_the_login_by_sid(host: tuple[Flask, Toucan]) -> None:
    app, _ = host
    alice, other = logged_in(app), logged_in(app, sid="idp-session-2")
    resp = post(app, logout_token())
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    assert alice.get("/whoami").text == "anonymous"
    assert other.get("/whoami").text == "alice"  # another provider session of hers stays


def test_a_sub_only_token_ends_every_login_of_the_subject(host: tuple[Flask, Toucan]) -> None:
    app, _ = host
    one, two, bob = logged_in(app), logged_in(app, sid="s2"), logged_in(app, "bob", "s3")
    assert post(app, logout_token(sid=None)).status_code == 200
    assert one.get("/whoami").text == two.get("/whoami").text == "anonymous"
    assert bob.get("/whoami").text == "bob"


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (lambda: logout_token(key=OTHER_KEY), "signature"),
        (lambda: logout_token(aud="someone-else"), "audience"),
        (lambda: logout_token(iss="https://evil.test"), "issuer"),
        (lambda: logout_token(events=None), "events"),
        (lambda: logout_token(events={"urn:other": {}}), "events"),
        (lambda: logout_token(nonce="n-1"), "nonce"),
        (lambda: logout_token(sub=None, sid=None), "neither"),
        (lambda: logout_token(iat=int(time.time()) - 3600, exp=int(time.time()) + 60), "iat"),
        (lambda: logout_token(iat=int(time.time()) + 3600), "iat"),
        (lambda: logout_token(jti=None), "jti"),
        (lambda: logout_token(header={"jku": "https://evil.test/jwks"}), "jku"),
        (lambda: logout_token(header={"typ": "at+jwt"}), "typ"),
        (lambda: jwt.encode({"alg": "HS256"}, {"iss": ISSUER}, OctKey.generate_key(256)), "algorithm"),
        (lambda: "garbage", "compact"),
        (lambda: "a.b.c", "header"),
        (lambda: "W10.e30.sig", "header"),
        (lambda: "", "no logout_token"),
        (lambda: "x" * 20000, "compact"),
    ],
)
def test_a_bad_logout_token_is_a_400_json_and_ends_nothing(
    host: tuple[Flask, Toucan], token: Any, why: str
) -> None:
    app, _ = host
    alice = logged_in(app)
    resp = post(app, token())
    assert resp.status_code == 400, resp.text
    assert resp.get_json()["error"] == "invalid_request"
    assert why in resp.get_json()["error_description"]
    assert resp.headers["Cache-Control"] == "no-store"
    assert alice.get("/whoami").text == "alice"


def test_a_replayed_jti_is_refused(host: tuple[Flask, Toucan]) -> None:
    app, _ = host
    token = logout_token()
    assert post(app, token).status_code == 200
    logged_in(app)
    resp = post(app, token)
    assert resp.status_code == 400 and "replayed" in resp.get_json()["error_description"]


def test_no_form_or_json_body_is_a_400(host: tuple[Flask, Toucan]) -> None:
    app, _ = host
    client = app.test_client()
    assert client.post("/toucan/backchannel-logout").status_code == 400
    assert client.post("/toucan/backchannel-logout", json={"logout_token": logout_token()}).status_code == 400
    assert client.get("/toucan/backchannel-logout").status_code == 405


def test_the_route_is_off_by_default() -> None:
    app, _ = make(TOUCAN_BACKCHANNEL_LOGOUT=False)
    assert post(app, logout_token()).status_code == 404


def test_end_sessions_counts_and_ends_the_subjects_logins(host: tuple[Flask, Toucan]) -> None:
    app, toucan = host
    one, two, bob = logged_in(app), logged_in(app, sid="s2"), logged_in(app, "bob", "s3")
    with app.test_request_context():
        assert toucan.end_sessions(sub="alice") == 2
        assert toucan.end_sessions(sub="alice") == 0
    assert one.get("/whoami").text == two.get("/whoami").text == "anonymous"
    assert bob.get("/whoami").text == "bob"


def test_cli_sessions_end_and_count(host: tuple[Flask, Toucan]) -> None:
    app, _ = host
    one, bob = logged_in(app), logged_in(app, "bob", "s3")
    runner = app.test_cli_runner()
    counted = runner.invoke(args=["toucan", "sessions", "count", "--sub", "alice"])
    assert counted.exit_code == 0 and counted.output.strip() == "1", counted.output
    ended = runner.invoke(args=["toucan", "sessions", "end", "--sub", "alice"])
    assert ended.exit_code == 0 and ended.output.strip() == "ended 1 login(s)", ended.output
    assert one.get("/whoami").text == "anonymous" and bob.get("/whoami").text == "bob"
    assert runner.invoke(args=["toucan", "sessions", "count", "--sub", "alice"]).output.strip() == "0"
    # The memory store lives in each worker: no global count from a CLI process.
    everything = runner.invoke(args=["toucan", "sessions", "count"])
    assert everything.exit_code != 0 and "--sub" in everything.output
    assert runner.invoke(args=["toucan", "sessions", "end"]).exit_code != 0  # --sub is required


def test_cli_sessions_count_all_with_a_redis_store(redis_server: Any) -> None:
    app, _ = make(TOUCAN_STORE=redis_server.url)
    logged_in(app)
    logged_in(app, "bob", "s3")
    counted = app.test_cli_runner().invoke(args=["toucan", "sessions", "count"])
    assert counted.exit_code == 0 and counted.output.strip() == "2", counted.output


def test_back_channel_logout_with_the_redis_store_and_its_near_cache(redis_server: Any) -> None:
    # Two apps on one Redis: two workers, each with its own near cache of login records.
    first, _ = make(TOUCAN_STORE=redis_server.url)
    second, _ = make(TOUCAN_STORE=redis_server.url)
    alice = logged_in(first)
    cookie = alice.get_cookie("session").value
    on_second = second.test_client()
    on_second.set_cookie("session", cookie)
    assert on_second.get("/whoami").text == "alice"  # now cached in the second worker's near cache
    assert post(first, logout_token()).status_code == 200
    wait_until(lambda: on_second.get("/whoami").text == "anonymous", what="the near cache to drop the record")
    assert alice.get("/whoami").text == "anonymous"


def test_the_login_index_never_evicts_a_login_record_of_the_memory_store() -> None:
    app, _ = make(TOUCAN_STORE_MAX_SESSIONS=2)
    first, second = logged_in(app), logged_in(app, "bob", "s2")
    # Two logins fill the records' capacity; their details and indexes live in a map of their own.
    assert first.get("/whoami").text == "alice" and second.get("/whoami").text == "bob"
