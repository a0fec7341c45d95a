"""``toucan.api.dashboard(id)`` / ``.chart(id)``: the headless API as the current user."""

from __future__ import annotations

import pytest

from flask_toucan.exceptions import BadRequest, PermissionDenied, UpstreamError, UpstreamRejected

from .helpers import ACME, GLOBEX, make_app, sql

pytestmark = pytest.mark.integration


def test_dashboard_and_chart_are_tenant_scoped(as_user, toucan_sandbox):
    seen = {}
    for claims in (ACME, GLOBEX):
        with as_user(claims) as toucan:
            seen[claims["org"]] = (
                toucan.api.dashboard("regional-performance"),
                toucan.api.chart("revenue-by-region"),
            )
    for org, (dashboard, chart) in seen.items():
        expected = dict(
            sql(
                toucan_sandbox.data_file,
                "SELECT region, SUM(amount) FROM sales WHERE organization_id=? GROUP BY region",
                org,
            )
        )
        assert dashboard["tenant"]["id"] == org
        assert {row["id"]: row["amount"] for row in dashboard["rows"]} == expected
        assert {p["label"]: p["value"] for p in chart["chart"]["points"]} == expected


def test_unknown_and_malformed_ids(as_user):
    with as_user(ACME) as toucan:
        with pytest.raises(UpstreamRejected) as info:
            toucan.api.dashboard("no-such-dashboard")
        assert info.value.upstream_status == 404
        with pytest.raises(BadRequest):
            toucan.api.dashboard("../embed/generate-token")


def test_permission_checked_before_any_request(toucan_sandbox):
    app, toucan = make_app(toucan_sandbox.url, toucan_sandbox.api_key)

    @toucan.permissions
    def only_ai(user):
        return {"ai": {"can_query": True}}

    before = toucan_sandbox.stats.get("data_requests", 0)
    with app.test_request_context():
        toucan.login_user(ACME)
        with pytest.raises(PermissionDenied):
            toucan.api.dashboard("sales-overview")
    assert toucan_sandbox.stats.get("data_requests", 0) == before


def test_upstream_down_is_transient(toucan_sandbox):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    app, toucan = make_app(
        toucan_sandbox.url,
        toucan_sandbox.api_key,
        TOUCAN_SERVER_URL=f"http://127.0.0.1:{dead}/api",
        TOUCAN_HTTP_RETRIES=0,
    )
    with app.test_request_context():
        toucan.login_user(ACME)
        with pytest.raises(UpstreamError) as info:
            toucan.api.chart("revenue-by-region")
    assert not isinstance(info.value, UpstreamRejected)
