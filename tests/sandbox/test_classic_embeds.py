"""The sandbox's classic Toucan 3 embeds: ``/scripts/embedLauncher.js``, ``/embed.html``, their data call.

Request level (in process, no browser): only an opaque token from this
sandbox's exchange opens an embed; an expired, garbled, foreign (another
instance's) or Toucan-AI-API token is refused with a clear message in the
frame, 401 and a ``{code, message}`` body on the data call; rows are the
tenant's (RLS from the grant's attributes); variables arrive as passed.
The browser side is tests/sandbox/test_classic_embed_browser.py.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import pytest

from flask_toucan.sandbox import create_app
from flask_toucan.sandbox.grants import Grant

from .helpers import sql, token_request

VIEW = {"dashboard": {"can_view": True}}


def exchange_token(state: Any, org: str = "acme", *, expires_in: int = 60, source: str = "exchange") -> str:
    """What the sandbox's exchange issues (the grant encrypted by its codec), minted directly."""
    now = int(time.time())
    grant = Grant("alice", "USER", {"organization_id": org}, VIEW, now - 10, now + expires_in, source=source)
    return str(state.codec.encode(grant))


def data(client: Any, token: str, embed_id: str = "sales-overview", query: str = "") -> Any:
    return client.get(f"/api/v1/embeds/{embed_id}{query}", headers={"Authorization": f"Bearer {token}"})


def expected(data_file: str, org: str) -> dict[str, int]:
    return dict(
        sql(
            data_file,
            "SELECT month || '|' || product, SUM(amount) FROM sales WHERE organization_id = ? "
            "GROUP BY month, product",
            (org,),
        )
    )


@pytest.mark.parametrize("org", ["acme", "globex"])
def test_data_call_draws_the_tenants_rows(app_client: Any, org: str) -> None:
    _, client, state = app_client
    resp = data(client, exchange_token(state, org))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["tenant"]["id"] == org
    assert {r["id"]: r["amount"] for r in body["rows"]} == expected(state.data_file, org)


def test_frame_page_and_launcher_for_a_valid_token(app_client: Any) -> None:
    _, client, state = app_client
    token = exchange_token(state)
    frame = client.get(f"/embed.html?id=sales-overview&token={token}")
    assert frame.status_code == 200
    html = frame.get_data(as_text=True)
    assert 'data-state="loading"' in html and token not in html  # the script reads it from its URL
    csp = frame.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' http://127.0.0.1:* http://localhost:*" in csp
    assert "script-src 'self'" in csp and frame.headers["Referrer-Policy"] == "no-referrer"
    launcher = client.get(f"/scripts/embedLauncher.js?id=sales-overview&token={token}&view=north")
    assert launcher.status_code == 200 and launcher.mimetype == "text/javascript"
    outcome = launcher.get_data(as_text=True).rsplit("document.currentScript, ", 1)[1].rstrip(");\n")
    frame_url = json.loads(outcome)["frame"]
    assert frame_url.startswith("http://localhost/embed.html?id=sales-overview&token=")
    assert frame_url.endswith("&view=north")


def test_refusals(app_client: Any) -> None:
    _, client, state = app_client
    other = create_app().extensions["toucan_sandbox"]  # another instance: another key
    api = client.post(
        "/embed/generate-token",
        json=token_request({"organization_id": "acme"}, VIEW),
        headers={"x-api-key": state.options.api_key},
    ).get_json()["token"]
    cases = {
        "token_expired": exchange_token(state, expires_in=-1),
        "invalid_token": "not-a-token",
        "foreign": exchange_token(other),
        "api": api,  # Toucan AI's token API: not the embed exchange
        "direct": exchange_token(state, source="direct"),
    }
    for name, token in cases.items():
        code = "token_expired" if name == "token_expired" else "invalid_token"
        resp = data(client, token)
        assert resp.status_code == 401, name
        assert resp.get_json()["code"] == code.upper(), name
        assert f'error="{code}"' in resp.headers["WWW-Authenticate"]
        frame = client.get(f"/embed.html?id=sales-overview&token={quote(token)}")
        assert frame.status_code == 401, name
        page = frame.get_data(as_text=True)
        assert f'data-error="{code}"' in page and 'role="alert"' in page
        assert "expired" in page if code == "token_expired" else "not issued by this Toucan" in page
        launcher = client.get(f"/scripts/embedLauncher.js?id=sales-overview&token={quote(token)}")
        assert launcher.status_code == 200  # a 4xx script never runs: the refusal is drawn instead
        assert f'{{"error": "{code}"' in launcher.get_data(as_text=True)
    assert data(client, "").status_code == 401  # "Bearer " and nothing
    assert client.get("/embed.html?id=sales-overview").status_code == 401
    assert state.stats.snapshot()["embeds_denied"] >= 15


def test_unknown_embed_and_bad_queries(app_client: Any) -> None:
    _, client, state = app_client
    token = exchange_token(state)
    assert data(client, token, "no-such-embed").status_code == 404
    frame = client.get(f"/embed.html?id=no-such-embed&token={token}")
    assert frame.status_code == 404 and 'data-error="not_found"' in frame.get_data(as_text=True)
    for query in ("?variables=%7Bnot-json", "?variables=%5B1%5D", "?variables.x=nope", "?view="):
        resp = data(client, token, query=query)
        assert resp.status_code == 400, query
        assert resp.get_json()["code"] == "INVALID_REQUEST"


def test_variables_arrive_as_passed(app_client: Any) -> None:
    _, client, state = app_client
    token = exchange_token(state)
    extra = {"region": "emea", "ids": [1, 2.5], "q": 'a&b=c"d</script>', "nested": {"k": None}}
    query = "?view=" + quote("North & <South>") + "&variables=" + quote(json.dumps({"extra": extra}))
    body = data(client, token, query=query + "&variables.more=" + quote('["x"]')).get_json()
    assert body["view"] == "North & <South>"
    assert body["variables"] == {"extra": {**extra, "more": ["x"]}}
