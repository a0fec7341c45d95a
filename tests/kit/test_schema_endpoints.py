"""The attribute schema end to end (issue 9 item 2).

A value no tenant key should have is refused before anything leaves the host:
the refresh endpoint answers 403 JSON, a page renders the ``no_attributes``
placeholder, the sandbox sees no token request (api mode) and nothing is
signed (signed mode). The refused value appears in no body and no log line.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

import flask_toucan.signing
from flask_toucan.test_client import ToucanTestClient
from tests.core.helpers import rsa_pem
from tests.kit.conftest import make_host

pytestmark = pytest.mark.integration

MARK = "PERSONAL-DATA-7f3a"
#: case -> (the ``org`` claim, extra attributes from a bulk mapper, schema only?)
CASES: dict[str, tuple[Any, dict[str, Any], bool]] = {
    "crlf": (f"acme\r\nX-Injected: {MARK}", {}, False),
    "nul": (f"acme\x00{MARK}", {}, False),
    "esc": (f"acme\x1b[31m{MARK}", {}, False),
    "tab": (f"acme\t{MARK}", {}, False),
    "rlo": (f"acme\u202e{MARK}", {}, False),
    "long": (MARK + "a" * 300, {}, False),
    "huge": ("acme", {"region": MARK * 1000}, False),  # too big for the session as a claim
    "true": (True, {}, False),
    "false": (False, {}, False),
    "nan": ("acme", {"score": float("nan")}, False),
    "inf": ("acme", {"score": float("inf")}, False),
    "zero-for-str": (0, {}, True),
    "undeclared": ("acme", {"plan": MARK}, True),
}
SCHEMA = {"organization_id": "Text", "region": "Text", "score": "Float"}


def build(sandbox: Any, mode: str, with_schema: bool) -> Any:
    config: dict[str, Any] = {"TOUCAN_ATTRIBUTES": SCHEMA} if with_schema else {}
    if mode == "signed":
        config.update(
            TOUCAN_MODE="signed",
            TOUCAN_SIGNING_KEY=rsa_pem(0),
            TOUCAN_ISSUER="https://host.test",
            TOUCAN_AUDIENCE="toucan-embed",
        )
    app, toucan = make_host(sandbox, **config)

    @toucan.attributes
    def extra(user: Any) -> dict[str, Any]:
        return CASES[user["case"]][1] if user.get("case") else {}

    app.test_client_class = ToucanTestClient
    return app


def client(app: Any, case: str | None) -> Any:
    claims: dict[str, Any] = {"sub": "alice", "iss": "https://idp.test", "org": "acme"}
    if case is not None:
        claims.update(org=CASES[case][0], case=case)
    return app.test_client(user=claims)


@pytest.fixture
def signatures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every JWT signed in this test (signed mode signs through flask_toucan.signing.sign)."""
    signed: list[Any] = []
    real = flask_toucan.signing.sign

    def counting(claims: Any, key: Any, **kwargs: Any) -> str:
        signed.append(claims)
        return real(claims, key, **kwargs)

    monkeypatch.setattr(flask_toucan.signing, "sign", counting)
    return signed


def assert_refused_everywhere(app: Any, case: str, caplog: pytest.LogCaptureFixture) -> None:
    c = client(app, case)
    resp = c.post("/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": c.csrf_token})
    assert resp.status_code == 403, resp.get_data(as_text=True)
    assert resp.is_json and resp.get_json()["error"] == "attribute_mapping_failed"
    assert "token" not in resp.get_json()
    page = c.get("/page")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-toucan-placeholder="no_attributes"' in html and "auth-token" not in html
    for text in (resp.get_data(as_text=True), html, caplog.text):
        assert MARK not in text


@pytest.mark.parametrize("case", [c for c, (_, _, schema_only) in CASES.items() if not schema_only])
@pytest.mark.parametrize("with_schema", [False, True], ids=["no-schema", "schema"])
def test_api_mode_refuses_before_calling_toucan(toucan_sandbox, caplog, case, with_schema):
    caplog.set_level(logging.DEBUG)
    app = build(toucan_sandbox, "api", with_schema)
    assert_refused_everywhere(app, case, caplog)
    assert toucan_sandbox.stats.get("token_requests", 0) == 0
    # The same app serves a clean user: the counter would have moved.
    c = client(app, None)
    ok = c.post("/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": c.csrf_token})
    assert ok.status_code == 200 and toucan_sandbox.stats.get("token_requests", 0) == 1


@pytest.mark.parametrize("case", [c for c, (_, _, schema_only) in CASES.items() if schema_only])
def test_api_mode_schema_only_refusals(toucan_sandbox, caplog, case):
    app = build(toucan_sandbox, "api", True)
    assert_refused_everywhere(app, case, caplog)
    assert toucan_sandbox.stats.get("token_requests", 0) == 0


@pytest.mark.parametrize("case", ["crlf", "rlo", "long", "true", "nan", "undeclared"])
def test_signed_mode_signs_nothing(toucan_sandbox, caplog, signatures, case):
    app = build(toucan_sandbox, "signed", True)
    assert_refused_everywhere(app, case, caplog)
    assert signatures == []
    c = client(app, None)
    ok = c.post("/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": c.csrf_token})
    assert ok.status_code == 200 and len(signatures) == 1


def test_signed_mode_without_schema_does_not_sign_nan(toucan_sandbox, caplog, signatures):
    app = build(toucan_sandbox, "signed", False)
    assert_refused_everywhere(app, "nan", caplog)
    assert signatures == []


def test_datetime_reaches_toucan_as_iso_utc(toucan_sandbox_factory):
    from datetime import datetime, timedelta, timezone

    # The sandbox stores attributes as JSON types: a datetime arrives as a string.
    sandbox = toucan_sandbox_factory(attributes={"organization_id": "string", "renewal": "string"})
    app, toucan = make_host(sandbox, TOUCAN_ATTRIBUTES={"organization_id": "str", "renewal": "Datetime"})

    @toucan.attribute("renewal")
    def renewal(user: Any) -> datetime:
        return datetime(2026, 11, 29, 9, 0, tzinfo=timezone(timedelta(hours=1)))

    app.test_client_class = ToucanTestClient
    c = client(app, None)
    resp = c.post("/toucan/token", json={"kind": "dashboard"}, headers={"X-Toucan-CSRF": c.csrf_token})
    assert resp.status_code == 200
    attributes = sandbox.introspect(resp.get_json()["token"])["attributes"]
    assert attributes == {"organization_id": "acme", "renewal": "2026-11-29T08:00:00Z"}
