from __future__ import annotations

from flask import jsonify

from flask_toucan.test_client import ToucanTestClient

from .helpers import make_app, signed_config


def test_test_client_logs_in_and_out():
    app, toucan = make_app(**signed_config())
    app.test_client_class = ToucanTestClient

    @app.get("/me")
    def me():
        u = toucan.current_user
        return jsonify(sub=u.subject if u else None)

    anonymous = app.test_client()
    assert anonymous.get("/me").get_json()["sub"] is None

    client = app.test_client(user={"sub": "alice", "iss": "https://idp", "org": "acme"})
    assert client.get("/me").get_json()["sub"] == "alice"
    r = client.post("/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": client.csrf_token})
    assert r.status_code == 200 and r.get_json()["expires_in"] > 0
    client.logout()
    assert client.get("/me").get_json()["sub"] is None
