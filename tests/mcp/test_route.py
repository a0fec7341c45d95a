"""``POST {prefix}/assistant/ask``: opt-in, CSRF-guarded, JSON answers and errors."""

from __future__ import annotations

import pytest

from .helpers import ACME, GLOBEX, NO_AI, make_app, sql

pytestmark = pytest.mark.integration

URL = "/toucan/assistant/ask"


def post(client, body, *, csrf=True, **headers):
    if csrf:
        headers["X-Toucan-CSRF"] = client.csrf_token
    return client.post(URL, json=body, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://["},
        {"Origin": "http://[::1"},
        {"Origin": "http://a]b"},
        {"Referer": "http://["},
        {"Sec-Fetch-Mode": "navigate"},
        {"Sec-Fetch-Dest": "document"},
    ],
)
def test_route_malformed_or_navigational_headers_are_403_json_never_500(host, headers):
    """The same header guards as the refresh endpoint (a bad Origin used to crash urlsplit)."""
    app, _ = host
    with app.test_client(user=ACME) as client:
        r = post(client, {"question": "x"}, **headers)
        assert r.status_code == 403 and r.is_json and r.get_json()["error"] == "csrf_failed"
        assert r.headers["Cache-Control"] == "no-store"


def test_route_answers_with_the_envelope(host, toucan_sandbox):
    app, _ = host
    with app.test_client(user=ACME) as client:
        first = post(client, {"question": "What are my total sales?"})
        assert first.status_code == 200, first.json
        assert first.headers["Cache-Control"] == "no-store"
        envelope = first.json
        follow = post(client, {"question": "and by month?", "thread_id": envelope["threadId"]})
    ((amount,),) = sql(toucan_sandbox.data_file, "SELECT SUM(amount) FROM sales WHERE organization_id='acme'")
    assert envelope["visualizations"][0]["rows"][0][0] == amount
    assert follow.status_code == 200
    assert follow.json["threadId"] == envelope["threadId"]


def test_route_refuses_another_users_thread(host):
    app, _ = host
    with app.test_client(user=ACME) as client:
        thread = post(client, {"question": "total sales"}).json["threadId"]
    with app.test_client(user=GLOBEX) as client:
        resp = post(client, {"question": "and by month?", "thread_id": thread})
    assert resp.status_code == 403
    assert resp.json["error"] == "permission_denied"


def test_route_403_without_ai_can_query(host, toucan_sandbox):
    app, _ = host
    with app.test_client(user=NO_AI) as client:
        resp = post(client, {"question": "total sales"})
    assert resp.status_code == 403
    assert resp.json["error"] == "permission_denied"
    assert toucan_sandbox.stats.get("token_requests", 0) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"question": ""},
        {"question": 3},
        {"question": "x", "thread_id": 5},
        {"question": "x", "extra": 1},
        ["question"],
        {"question": "x" * 5000},
    ],
)
def test_route_bad_bodies_are_400(host, body):
    app, _ = host
    with app.test_client(user=ACME) as client:
        resp = post(client, body)
    assert resp.status_code == 400
    assert resp.json["error"] == "bad_request"


def test_route_needs_csrf_login_and_same_origin(host):
    app, _ = host
    with app.test_client() as anonymous:
        assert anonymous.post(URL, json={"question": "x"}).status_code == 401
    with app.test_client(user=ACME) as client:
        assert post(client, {"question": "x"}, csrf=False).status_code == 403
        assert post(client, {"question": "x"}, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert post(client, {"question": "x"}, Origin="https://evil.example").status_code == 403
        assert (
            client.post(URL, data="{not json", headers={"X-Toucan-CSRF": client.csrf_token}).status_code
            == 400
        )


def test_route_upstream_errors_are_json(host, mcp_endpoint):
    app, _ = host
    mcp_endpoint.set_faults(subscription=False)
    with app.test_client(user=ACME) as client:
        resp = post(client, {"question": "total sales"})
    assert resp.status_code == 502
    assert resp.json["upstream_code"] == "NO_ACTIVE_SUBSCRIPTION"


def test_route_is_opt_in(toucan_sandbox):
    app, _ = make_app(toucan_sandbox.url, toucan_sandbox.api_key, TOUCAN_ASSISTANT_ROUTE=False)
    with app.test_client(user=ACME) as client:
        assert client.post(URL, json={"question": "x"}).status_code == 404


def test_route_rate_limited(toucan_sandbox):
    app, _ = make_app(toucan_sandbox.url, toucan_sandbox.api_key, TOUCAN_RATE_LIMIT="2/minute")
    with app.test_client(user=ACME) as client:
        codes = [post(client, {"question": "total sales"}).status_code for _ in range(3)]
        last = post(client, {"question": "total sales"})
    assert codes == [200, 200, 429]
    assert int(last.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"tool_error": ("QUOTA_EXCEEDED", "no more")}, 502, "upstream_rejected"),
        ({"delay": 30}, 503, "upstream_unavailable"),
        ({"subscription": False}, 502, "upstream_rejected"),
    ],
)
def test_route_maps_every_failure_to_json(toucan_sandbox, mcp_endpoint, fault, status, code):
    app, _ = make_app(toucan_sandbox.url, toucan_sandbox.api_key, TOUCAN_HTTP_DEADLINE=0.5)
    mcp_endpoint.set_faults(**fault)
    with app.test_client(user=ACME) as client:
        resp = post(client, {"question": "total sales"})
    assert resp.status_code == status
    assert resp.json["error"] == code
    assert resp.headers["Content-Type"] == "application/json"


def test_route_sandbox_down_is_503(toucan_sandbox):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    app, _ = make_app(
        toucan_sandbox.url, toucan_sandbox.api_key, TOUCAN_SERVER_URL=f"http://127.0.0.1:{dead}/api"
    )
    with app.test_client(user=ACME) as client:
        resp = post(client, {"question": "total sales"})
    assert resp.status_code == 503
    assert resp.json["error"] == "upstream_unavailable"
    assert int(resp.headers["Retry-After"]) >= 1


def test_route_setting_must_be_a_bool(toucan_sandbox):
    from flask_toucan.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="TOUCAN_ASSISTANT_ROUTE"):
        make_app(toucan_sandbox.url, toucan_sandbox.api_key, TOUCAN_ASSISTANT_ROUTE="yes")


def test_importing_the_package_does_not_import_the_sdk():
    import subprocess
    import sys

    code = "import sys, flask_toucan, flask_toucan.extension; print('mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
