"""Refusals and failures: each a clear exception from the extension's hierarchy, never a hang."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from flask_toucan.assistant import AssistantSession
from flask_toucan.exceptions import PermissionDenied, UpstreamError, UpstreamRejected
from flask_toucan.signals import token_issued
from flask_toucan.tokens import EmbedToken, utc_from_timestamp

from .helpers import ACME, NO_AI, make_app

pytestmark = pytest.mark.integration


def test_user_without_ai_can_query_gets_no_token(as_user, toucan_sandbox):
    issued = []
    with as_user(NO_AI) as toucan:
        with token_issued.connected_to(lambda *a, **kw: issued.append(kw)), pytest.raises(PermissionDenied):
            toucan.assistant()
    assert issued == []
    assert toucan_sandbox.stats.get("token_requests", 0) == 0


def test_no_active_subscription(as_user, mcp_endpoint):
    mcp_endpoint.set_faults(subscription=False)
    with as_user(ACME) as toucan, pytest.raises(UpstreamRejected) as info:
        with toucan.assistant() as assistant:
            assistant.ask("total sales")
    assert info.value.upstream_code == "NO_ACTIVE_SUBSCRIPTION"
    assert info.value.upstream_status == 403
    assert info.value.status_code == 502


def test_tool_error(as_user, mcp_endpoint):
    mcp_endpoint.set_faults(tool_error=("QUOTA_EXCEEDED", "the workspace used its AI quota"))
    with as_user(ACME) as toucan, toucan.assistant() as assistant:
        with pytest.raises(UpstreamRejected) as info:
            assistant.ask("total sales")
        # The session survives a tool error: the next call works.
        mcp_endpoint.set_faults(tool_error=None)
        assert assistant.ask("total sales")["answer"]
    assert info.value.upstream_code == "QUOTA_EXCEEDED"
    assert "quota" not in info.value.message  # Toucan's free text is not echoed


def test_slow_server_past_the_deadline(toucan_sandbox, mcp_endpoint):
    app, toucan = make_app(toucan_sandbox.url, toucan_sandbox.api_key, TOUCAN_HTTP_DEADLINE=0.5)
    mcp_endpoint.set_faults(delay=30)
    with app.test_request_context():
        toucan.login_user(ACME)
        started = time.monotonic()
        with toucan.assistant() as assistant, pytest.raises(UpstreamError) as info:
            assistant.ask("total sales")
    assert time.monotonic() - started < 10
    assert "deadline" in info.value.message
    assert not isinstance(info.value, UpstreamRejected)


def test_sandbox_down(toucan_sandbox):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed when the block ends: nothing listens there
    app, toucan = make_app(
        toucan_sandbox.url, toucan_sandbox.api_key, TOUCAN_SERVER_URL=f"http://127.0.0.1:{dead}/api"
    )
    with app.test_request_context():
        toucan.login_user(ACME)
        with pytest.raises(UpstreamError) as info:
            with toucan.assistant() as assistant:
                assistant.ask("total sales")
    assert "unreachable" in info.value.message
    assert not isinstance(info.value, UpstreamRejected)


def test_server_5xx_is_transient(toucan_sandbox, live_server):
    from flask import Flask

    broken = Flask("broken")

    @broken.post("/api/mcp")
    def fail():
        return {"code": "INTERNAL", "message": "boom"}, 503

    srv = live_server(broken)
    token = EmbedToken("opaque", utc_from_timestamp(time.time() + 3600))
    with pytest.raises(UpstreamError) as info:
        with AssistantSession(srv.url + "/api/mcp", lambda: token, deadline=3) as assistant:
            assistant.tools()
    assert not isinstance(info.value, UpstreamRejected)
    assert "503" in info.value.message


def test_server_refuses_without_token_or_permission(toucan_sandbox):
    url = toucan_sandbox.url + "/api/mcp"
    init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    anonymous = requests.post(url, json=init, timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["Date"]
    assert anonymous.json()["code"] == "MISSING_TOKEN"
    viewer = toucan_sandbox.issue_token({"organization_id": "acme"}, {"dashboard": {"can_view": True}})
    refused = requests.post(url, json=init, headers={"Authorization": f"Bearer {viewer}"}, timeout=5)
    assert refused.status_code == 403
    assert refused.json() == {"code": "FORBIDDEN", "message": "the token lacks the ai.can_query permission"}
    bogus = requests.post(url, json=init, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bogus.status_code == 401


def test_token_refreshed_when_near_expiry(toucan_sandbox):
    minted = []

    def provider():
        value = toucan_sandbox.issue_token({"organization_id": "acme"}, {"ai": {"can_query": True}})
        # The first token "expires" within the margin, so the next call must mint again.
        lifetime = 10 if not minted else 3600
        minted.append(value)
        return EmbedToken(value, utc_from_timestamp(time.time() + lifetime))

    with AssistantSession(toucan_sandbox.url + "/api/mcp", provider, refresh_margin=30) as assistant:
        assistant.tools()
        assistant.tools()
    assert len(minted) == 2


def test_errors_never_quote_the_token(toucan_sandbox, mcp_endpoint):
    secret = toucan_sandbox.issue_token({"organization_id": "acme"}, {"ai": {"can_query": True}})
    token = EmbedToken(secret, utc_from_timestamp(time.time() + 3600))
    mcp_endpoint.set_faults(subscription=False)
    with pytest.raises(UpstreamRejected) as info:
        with AssistantSession(toucan_sandbox.url + "/api/mcp", lambda: token) as assistant:
            assistant.tools()
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert secret not in str(info.value.to_dict())


def test_silent_server_is_bounded():
    """A server that accepts the connection and never answers: UpstreamError within the deadline."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        token = EmbedToken("opaque", utc_from_timestamp(time.time() + 3600))
        started = time.monotonic()
        with pytest.raises(UpstreamError) as info:
            with AssistantSession(
                f"http://127.0.0.1:{port}/api/mcp", lambda: token, deadline=0.5
            ) as assistant:
                assistant.tools()
        elapsed = time.monotonic() - started
    assert not isinstance(info.value, UpstreamRejected)
    assert elapsed < 4, elapsed  # the SDK alone took ~6 s here (probe + fallback handshake)
