"""The sandbox behaves like a production front end of Toucan.

gzip for clients that accept it, a ``Date`` on every answer, Toucan's
``{"code": "UPPER_SNAKE", "message"}`` envelope on every API error, a fault
that refuses the token API with a chosen status and code, and both documented
token paths (``/embed/generate-token`` and the older ``/api/generate-token``).
"""

from __future__ import annotations

import gzip
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from flask import Flask

from flask_toucan import Toucan, UpstreamError
from flask_toucan.user import ToucanUser

from .helpers import token_request

pytestmark = pytest.mark.integration


def raw_post(sandbox: Any, path: str, encoding: str | None, **kwargs: Any) -> requests.Response:
    headers = {"x-api-key": sandbox.api_key, **kwargs.pop("headers", {})}
    if encoding is not None:
        headers["Accept-Encoding"] = encoding
    return requests.post(f"{sandbox.url}{path}", headers=headers, stream=True, timeout=10, **kwargs)


def test_gzip_only_for_clients_that_accept_it(toucan_sandbox: Any) -> None:
    body = token_request({"organization_id": "acme"})
    zipped = raw_post(toucan_sandbox, "/embed/generate-token", "gzip, deflate", json=body)
    assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(zipped.raw.read(decode_content=False)).startswith(b'{"expiresIn"')
    plain = raw_post(toucan_sandbox, "/embed/generate-token", "identity", json=body)
    assert "Content-Encoding" not in plain.headers
    assert plain.raw.read(decode_content=False).startswith(b"{")
    script = requests.get(f"{toucan_sandbox.url}/embed/embed.js", timeout=10)  # requests accepts gzip
    assert script.headers["Content-Encoding"] == "gzip" and "customElements" in script.text


def test_date_header_on_every_response(toucan_sandbox: Any) -> None:
    answers = [
        requests.get(f"{toucan_sandbox.url}/", timeout=10),
        requests.get(f"{toucan_sandbox.url}/nowhere", timeout=10),
        raw_post(toucan_sandbox, "/embed/generate-token", None, json={}),
        requests.post(toucan_sandbox.exchange_url, data={}, timeout=10),
    ]
    for resp in answers:
        assert len(resp.raw.headers.getlist("Date")) == 1, resp.url
        assert parsedate_to_datetime(resp.headers["Date"]).tzinfo is not None


def test_every_api_error_is_toucans_envelope(toucan_sandbox: Any) -> None:
    base = toucan_sandbox.url
    answers = {
        "NOT_FOUND": requests.get(f"{base}/api/v1/nowhere", timeout=10),
        "METHOD_NOT_ALLOWED": requests.get(f"{base}/embed/generate-token", timeout=10),
        "UNAUTHORIZED": requests.post(f"{base}/embed/generate-token", json={}, timeout=10),
        "INVALID_REQUEST": raw_post(toucan_sandbox, "/embed/generate-token", None, json={"user": 1}),
        "MISSING_TOKEN": requests.get(f"{base}/api/v1/dashboards/sales-overview", timeout=10),
        "INVALID_TOKEN": requests.get(
            f"{base}/api/v1/dashboards/sales-overview", headers={"Authorization": "Bearer x"}, timeout=10
        ),
    }
    for code, resp in answers.items():
        body = resp.json()
        assert body["code"] == code, (code, body)
        assert isinstance(body["message"], str) and body["message"]
        assert "error" not in body
    # The OAuth token endpoint keeps RFC 6749's shape.
    oauth = requests.post(toucan_sandbox.exchange_url, data={"grant_type": "password"}, timeout=10)
    assert "error" in oauth.json() and "code" not in oauth.json()


def test_reject_fault_answers_a_chosen_status_and_code(toucan_sandbox: Any) -> None:
    toucan_sandbox.set_faults(reject={"status": 403, "code": "NO_ACTIVE_SUBSCRIPTION"})
    for path in ("/embed/generate-token", "/api/generate-token"):
        resp = raw_post(toucan_sandbox, path, None, json=token_request({"organization_id": "acme"}))
        assert resp.status_code == 403 and resp.json()["code"] == "NO_ACTIVE_SUBSCRIPTION"
        assert "Retry-After" not in resp.headers
    assert toucan_sandbox.faults["reject"] == {"status": 403, "code": "NO_ACTIVE_SUBSCRIPTION"}
    with pytest.raises(ValueError, match="UPPER_SNAKE"):
        toucan_sandbox.set_faults(reject={"status": 403, "code": "lower case"})
    over_http = requests.post(
        f"{toucan_sandbox.url}/_sandbox/faults",
        json={"reject": {"status": 200, "code": "OK"}},
        headers={"x-api-key": toucan_sandbox.api_key},
        timeout=10,
    )
    assert over_http.status_code == 400 and over_http.json()["code"] == "INVALID_REQUEST"
    toucan_sandbox.reset()  # back to the start-up settings
    assert toucan_sandbox.faults["reject"] is None
    ok = raw_post(toucan_sandbox, "/embed/generate-token", None, json=token_request({"organization_id": "a"}))
    assert ok.status_code == 200


def api_app(sandbox: Any, **config: Any) -> tuple[Flask, Toucan]:
    app = Flask("token-paths")
    app.config.update(
        SECRET_KEY="token-paths-secret-key-0123456789abcdef",
        TOUCAN_BASE_URL=sandbox.url,
        TOUCAN_API_KEY=sandbox.api_key,
        TOUCAN_HTTP_RETRIES=0,
        **config,
    )
    toucan = Toucan(app)
    toucan.attribute("organization_id")(lambda user: user["org"])
    return app, toucan


@pytest.mark.parametrize("path", [None, "/embed/generate-token", "/api/generate-token"])
def test_both_documented_token_paths(toucan_sandbox: Any, path: str | None) -> None:
    app, toucan = api_app(toucan_sandbox, **({"TOUCAN_TOKEN_PATH": path} if path else {}))
    with app.test_request_context():
        token = toucan.issue_token(ToucanUser("https://idp", "dana", {"org": "globex"}))
    info = toucan_sandbox.introspect(token.value)  # a real token, over a gzip-encoded answer
    assert info["active"] and info["attributes"] == {"organization_id": "globex"}
    assert toucan_sandbox.stats["tokens_issued"] == 1


def test_rejected_token_api_is_an_upstream_error_without_secrets(toucan_sandbox: Any) -> None:
    toucan_sandbox.set_faults(reject={"status": 403, "code": "NO_ACTIVE_SUBSCRIPTION"})
    app, toucan = api_app(toucan_sandbox)
    with app.test_request_context(), pytest.raises(UpstreamError) as info:
        toucan.issue_token(ToucanUser("https://idp", "dana", {"org": "globex"}))
    assert toucan_sandbox.api_key not in str(info.value)
    assert toucan_sandbox.stats["token_requests"] == 1  # a 403 is final: not retried
