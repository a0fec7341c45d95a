"""``POST {prefix}/token``: every status of issue 4 item 2, and no secret in any answer."""

from __future__ import annotations

from typing import Any

import pytest

from flask_toucan.test_client import ToucanTestClient
from tests.core.helpers import rsa_pem
from tests.kit.conftest import API_KEY

ALICE = {"sub": "alice", "iss": "https://idp.test", "org": "acme"}
SEEN: list[Any] = []  # every response of this module, for the secret scan


def client_for(app: Any, user: dict[str, Any] | None = ALICE) -> ToucanTestClient:
    app.test_client_class = ToucanTestClient
    return app.test_client(user=user)  # type: ignore[return-value]


def post(client: ToucanTestClient, body: Any = None, *, csrf: str | None = "auto", **headers: str) -> Any:
    if csrf == "auto":
        csrf = client.csrf_token
    if csrf is not None:
        headers["X-Toucan-CSRF"] = csrf
    resp = client.post("/toucan/token", json={"kind": "dashboard"} if body is None else body, headers=headers)
    SEEN.append(resp)
    return resp


def assert_error(resp: Any, status: int, code: str) -> None:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.is_json and resp.get_json()["error"] == code
    assert "token" not in resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_200_shape_no_store_no_cors(host, toucan_sandbox):
    app, _ = host()
    client = client_for(app)
    resp = post(client, Origin="http://localhost", **{"Sec-Fetch-Site": "same-origin"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) == {"token", "expires_at", "expires_in"}
    assert body["expires_at"].endswith("Z") and 3000 < body["expires_in"] <= 3600
    assert resp.headers["Cache-Control"] == "no-store"
    assert (
        "Access-Control-Allow-Origin" not in resp.headers
        and "Access-Control-Allow-Credentials" not in resp.headers
    )
    assert toucan_sandbox.introspect(body["token"])["attributes"]["organization_id"] == "acme"


def test_200_for_every_permitted_kind(host, toucan_sandbox):
    app, _ = host()
    client = client_for(app, {**ALICE, "ai": True})
    for kind, perms in (
        ("dashboard", {"dashboard": {"can_view": True}}),
        ("chart", {"dashboard": {"can_view": True}}),
        ("assistant", {"ai": {"can_query": True}}),
    ):
        resp = post(client, {"kind": kind})
        assert resp.status_code == 200
        assert toucan_sandbox.introspect(resp.get_json()["token"])["permissions"] == perms


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_405_on_other_methods(host, method):
    app, _ = host()
    resp = getattr(client_for(app), method)("/toucan/token")
    SEEN.append(resp)
    assert resp.status_code == 405 and "POST" in resp.headers["Allow"]
    if method == "get":
        assert resp.is_json and resp.get_json()["error"] == "method_not_allowed"


def test_403_csrf_missing(host, toucan_sandbox):
    app, _ = host()
    assert_error(post(client_for(app), csrf=None), 403, "csrf_failed")
    assert toucan_sandbox.stats.get("token_requests", 0) == 0


def test_403_csrf_mismatch(host):
    app, _ = host()
    other = client_for(app, {**ALICE, "sub": "mallory"})
    client = client_for(app)
    assert_error(post(client, csrf=other.csrf_token), 403, "csrf_failed")  # another session's token
    assert_error(post(client, csrf=client.csrf_token + "x"), 403, "csrf_failed")
    assert_error(post(client, csrf="garbage"), 403, "csrf_failed")


def test_csrf_token_rotates_at_login(host):
    app, _ = host()
    client = client_for(app)
    before = client.csrf_token
    client.login(ALICE)
    assert client.csrf_token != before
    assert_error(post(client, csrf=before), 403, "csrf_failed")
    assert post(client).status_code == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_403_cross_site(host, site):
    app, _ = host()
    assert_error(post(client_for(app), **{"Sec-Fetch-Site": site}), 403, "csrf_failed")


def test_403_foreign_origin(host):
    app, _ = host()
    assert_error(post(client_for(app), Origin="https://evil.example"), 403, "csrf_failed")


def test_401_without_session(host):
    app, _ = host()
    assert_error(post(client_for(app, None), csrf="anything"), 401, "not_authenticated")


def test_401_after_logout_even_with_the_old_cookie_replayed(host, toucan_sandbox):
    app, _ = host()
    client = client_for(app)
    assert post(client).status_code == 200
    old_cookie, old_csrf = client.get_cookie("session").value, client.csrf_token
    resp = client.post("/toucan/logout", data={"csrf_token": old_csrf})
    assert resp.status_code == 302
    client.set_cookie("session", old_cookie)  # the attacker (or a stale tab) replays it
    assert_error(post(client, csrf=old_csrf), 401, "not_authenticated")


def test_logout_refuses_a_bad_csrf_token(host):
    app, _ = host()
    client = client_for(app)
    resp = client.post("/toucan/logout", data={"csrf_token": "nope"})
    assert resp.status_code == 403
    assert post(client).status_code == 200  # still logged in


def test_403_kind_not_permitted(host, toucan_sandbox):
    app, _ = host()
    assert_error(post(client_for(app), {"kind": "assistant"}), 403, "permission_denied")
    assert toucan_sandbox.stats.get("token_requests", 0) == 0


@pytest.mark.parametrize(
    "body", [{"kind": "database"}, {"kind": "dashboard", "attributes": {"organization_id": "x"}}, [1]]
)
def test_400_bad_body(host, body):
    app, _ = host()
    assert_error(post(client_for(app), body), 400, "bad_request")


def test_429_with_retry_after(host, toucan_sandbox):
    app, _ = host(TOUCAN_RATE_LIMIT="3/minute")
    client = client_for(app)
    for _ in range(3):
        assert post(client).status_code == 200
    resp = post(client)
    assert_error(resp, 429, "rate_limited")
    assert 1 <= int(resp.headers["Retry-After"]) <= 61
    other = client_for(app, {**ALICE, "sub": "bob"})  # the limit is per session
    assert post(other).status_code == 200


def test_503_with_retry_after_and_no_token(host, toucan_sandbox):
    app, _ = host()
    toucan_sandbox.set_faults(fail_next=1, retry_after=7)
    resp = post(client_for(app))
    assert_error(resp, 503, "upstream_unavailable")
    assert int(resp.headers["Retry-After"]) >= 1
    assert toucan_sandbox.stats["token_requests"] == 1 and toucan_sandbox.stats.get("tokens_issued", 0) == 0


def test_the_next_refresh_after_a_503_succeeds(host, toucan_sandbox):
    app, _ = host()
    client = client_for(app)
    toucan_sandbox.set_faults(fail_next=1)
    assert post(client).status_code == 503
    assert post(client).status_code == 200


def test_signed_mode_endpoint_never_shows_the_private_key(host):
    pem = rsa_pem(0)
    app, _ = host(
        TOUCAN_MODE="signed",
        TOUCAN_SIGNING_KEY=pem,
        TOUCAN_ISSUER="https://host.test",
        TOUCAN_AUDIENCE="toucan-sandbox",
    )
    client = client_for(app)
    ok = post(client)
    assert ok.status_code == 200 and ok.get_json()["token"].count(".") == 2
    for resp in (
        ok,
        post(client, csrf=None),
        post(client, {"kind": "x"}),
        client.get("/toucan/token"),
        client.get("/page"),
    ):
        SEEN.append(resp)
        blob = resp.get_data(as_text=True) + str(resp.headers)
        assert "PRIVATE KEY" not in blob
        assert not any(line in blob for line in pem.splitlines()[1:-1] if len(line) > 20)


def test_no_response_contains_the_api_key(host, toucan_sandbox):
    """Runs last in this module: scans every response collected above, plus fresh ones."""
    app, _ = host()
    client = client_for(app)
    fresh = [post(client), post(client, csrf=None), client.get("/page"), client.get("/toucan/token")]
    toucan_sandbox.set_faults(fail_next=1)
    fresh.append(post(client_for(app, {**ALICE, "sub": "carol"})))
    assert len(SEEN) > 30
    for resp in [*SEEN, *fresh]:
        blob = resp.get_data(as_text=True) + str(resp.headers)
        assert API_KEY not in blob and toucan_sandbox.api_key == API_KEY
        assert "x-api-key" not in blob.lower()
