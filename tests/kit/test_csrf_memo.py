"""The per-process memo of verified CSRF tokens and of handed-out ones (csrf.py) keeps every rule."""

from __future__ import annotations

import itsdangerous
from flask import Flask, session

from flask_toucan import Toucan, csrf

from ..core.helpers import signed_config
from ..waiting import FakeClock

SECRET_KEY = "csrf-memo-test-secret-key-0123456789abcdef"


def test_a_remembered_token_still_expires_and_stays_bound_to_its_session(monkeypatch):
    app = Flask("csrf-memo")
    app.config["SECRET_KEY"] = SECRET_KEY
    clock = FakeClock().install(monkeypatch, itsdangerous.timed)
    token = csrf.make_token(app, "sid-a")
    assert csrf.check_token(app, token, "sid-a", 60)  # verified, then remembered
    assert csrf.check_token(app, token, "sid-a", 60)
    assert not csrf.check_token(app, token, "sid-b", 60)  # another session: still no
    clock.advance(61)
    assert not csrf.check_token(app, token, "sid-a", 60)  # expired, memo or not
    assert not csrf.check_token(app, token + "x", "sid-a", 60)


def test_handed_out_tokens_are_per_session(monkeypatch):
    app = Flask("csrf-memo")
    app.config.update(SECRET_KEY=SECRET_KEY, TOUCAN_RATE_LIMIT=None, **signed_config())
    toucan = Toucan(app)
    tokens = {}
    for sub in ("alice", "bob"):
        with app.test_request_context("/"):
            toucan.login_user({"sub": sub, "iss": "https://idp.test", "org": "acme"})
            tokens[sub] = (toucan.csrf_token(), session["_toucan_sid"])
    (a_token, a_sid), (b_token, b_sid) = tokens["alice"], tokens["bob"]
    assert a_token != b_token
    assert csrf.check_token(app, a_token, a_sid, 3600) and not csrf.check_token(app, a_token, b_sid, 3600)
