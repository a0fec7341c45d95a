"""The HTTP transport against a tiny scripted server (``http.server`` on port 0).

Compression (gzip, deflate, br), the decoded-size cap (gzip bomb), the three
separate time limits, the retry policy, ``Retry-After``, permanent 4xx
answers, redirects, the explicit proxy and environment proxies.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler

import pytest

from flask_toucan import UpstreamError, UpstreamRejected, wire
from flask_toucan.http import Transport, parse_retry_after

from .helpers import API_KEY, make_app
from .transport_server import Respond, StubServer, encode, send, start_stub, token_body

pytestmark = pytest.mark.integration


@pytest.fixture
def stub() -> Iterator[Callable[[Respond], StubServer]]:
    started: list[StubServer] = []

    def factory(respond: Respond) -> StubServer:
        s = start_stub(respond)
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()


def post(transport: Transport, server: StubServer) -> tuple[str, int]:
    resp = transport.post(
        f"{server.url}/embed/generate-token",
        what="Toucan token API",
        json={"user": {"distinctId": "u"}},
        headers={"x-api-key": API_KEY},
    )
    return wire.parse_response(resp.status, resp.body, "upstream")


def fast(**kw: object) -> Transport:
    options: dict[str, object] = {"backoff_factor": 0.01, "backoff_jitter": 0.01}
    options.update(kw)
    return Transport(**options)  # type: ignore[arg-type]


# ------------------------------------------------------------------ compression
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compressed_json_is_decoded(stub, encoding):
    if encoding == "br":
        pytest.importorskip("brotli")
    server = stub(
        lambda h, n: send(h, 200, encode(token_body("tok-zip"), encoding), {"Content-Encoding": encoding})
    )
    assert post(fast(), server) == ("tok-zip", 3600)
    assert encoding in server.seen[0].headers["Accept-Encoding"]


def test_gzip_bomb_is_a_clean_error_with_bounded_memory(stub):
    bomb = gzip.compress(b"\0" * (10 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 64 * 1024  # the compressed bytes alone pass any raw-size check
    server = stub(lambda h, n: send(h, 200, bomb, {"Content-Encoding": "gzip"}))
    transport = fast(max_bytes=64 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(UpstreamError) as info:
            post(transport, server)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "above 65536 bytes (decoded)" in info.value.message
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes while reading a 10 MB bomb"
    assert server.calls == 1  # not retried: the answer will not change


def test_corrupt_gzip_is_a_clean_error(stub):
    server = stub(lambda h, n: send(h, 200, b"\x1f\x8b\x08garbage-not-gzip", {"Content-Encoding": "gzip"}))
    with pytest.raises(UpstreamError, match="does not decode"):
        post(fast(), server)


# ------------------------------------------------------------------ time limits
def test_answer_after_2_5_s_within_a_10_s_deadline(stub):
    def slow(h: BaseHTTPRequestHandler, n: int) -> None:
        time.sleep(2.5)
        send(h, 200, token_body())

    server = stub(slow)
    assert post(fast(deadline=10.0, retries=0), server) == ("tok-abc", 3600)


def test_idle_read_timeout_before_the_headers(stub):
    holder: dict[str, StubServer] = {}

    def stall(h: BaseHTTPRequestHandler, n: int) -> None:
        holder["s"].release.wait(30)

    server = holder["s"] = stub(stall)
    with pytest.raises(UpstreamError, match=r"did not answer in time \(timed out\)") as info:
        post(fast(read_timeout=0.3, deadline=20.0, retries=0), server)
    assert not server.release.is_set()  # the server was still silent: the idle timeout fired
    assert info.value.retry_after == 5


def test_idle_read_timeout_in_the_body(stub):
    holder: dict[str, StubServer] = {}

    def half_body(h: BaseHTTPRequestHandler, n: int) -> None:
        body = token_body()
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[:5])
        h.wfile.flush()
        holder["s"].release.wait(30)

    server = holder["s"] = stub(half_body)
    with pytest.raises(UpstreamError, match="timed out while reading the body"):
        post(fast(read_timeout=0.3, deadline=20.0, retries=0), server)


def test_slow_drip_body_meets_the_deadline(stub):
    holder: dict[str, StubServer] = {}

    def drip(h: BaseHTTPRequestHandler, n: int) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        while not holder["s"].release.wait(0.05):  # a byte every 50 ms: never idle for long
            try:
                h.wfile.write(b" ")
                h.wfile.flush()
            except OSError:
                return

    server = holder["s"] = stub(drip)
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="deadline"):
        post(fast(read_timeout=5.0, deadline=0.5, retries=0), server)
    assert time.monotonic() - started < 5.0  # the deadline, not the idle timeout, ended it


# ------------------------------------------------------------------ retry policy
def test_503_then_200_is_retried(stub):
    server = stub(lambda h, n: send(h, 503) if n == 1 else send(h, 200, token_body()))
    assert post(fast(), server)[0] == "tok-abc"
    assert server.calls == 2


def test_connection_errors_are_retried_then_unreachable():
    transport = fast(retries=2, connect_timeout=0.5)
    with pytest.raises(UpstreamError, match="unreachable") as info:
        transport.post("http://127.0.0.1:9/embed/generate-token", what="Toucan token API")
    assert info.value.retry_after == 5


def test_retries_are_bounded(stub):
    server = stub(lambda h, n: send(h, 502))
    with pytest.raises(UpstreamError, match="HTTP 502"):
        post(fast(retries=2), server)
    assert server.calls == 3


def test_429_retry_after_is_honoured(stub):
    server = stub(
        lambda h, n: send(h, 429, headers={"Retry-After": "1"}) if n == 1 else send(h, 200, token_body())
    )
    started = time.monotonic()
    assert post(fast(deadline=10.0), server)[0] == "tok-abc"
    assert time.monotonic() - started >= 1.0  # waited what the server asked, not the short backoff
    assert server.calls == 2


def test_retry_after_past_the_deadline_fails_at_once(stub):
    server = stub(lambda h, n: send(h, 503, headers={"Retry-After": "120"}))
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        post(fast(deadline=10.0), server)
    assert time.monotonic() - started < 5.0
    assert server.calls == 1
    assert info.value.retry_after == 120


def test_retry_after_as_http_date():
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= (parse_retry_after(format_datetime(when, usegmt=True)) or 0) <= 31
    assert parse_retry_after("7") == 7
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_403_envelope_is_one_call_and_rejected_with_its_code(stub, caplog):
    envelope = {"code": "NO_ACTIVE_SUBSCRIPTION", "message": "Secret-ish free text from upstream"}
    server = stub(lambda h, n: send(h, 403, json.dumps(envelope).encode()))
    caplog.set_level(logging.WARNING, logger="flask_toucan")
    with pytest.raises(UpstreamRejected) as info:
        post(fast(retries=2), server)
    assert server.calls == 1
    err = info.value
    assert err.upstream_code == "NO_ACTIVE_SUBSCRIPTION"
    assert err.upstream_status == 403
    assert err.status_code == 502 and err.retry_after is None
    assert "free text" not in err.message
    assert "NO_ACTIVE_SUBSCRIPTION" in caplog.text and "403" in caplog.text
    assert "free text" not in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"code": "lower_case", "message": "x"}',
        b'{"code": "' + b"A" * 100 + b'"}',
        b'{"code": "HAS SPACE<script>"}',
        b"not json",
        b'["code"]',
    ],
)
def test_unusable_error_codes_are_dropped(body):
    err = wire.error_for_status(401, body, "upstream")
    assert isinstance(err, UpstreamRejected) and err.upstream_code is None


@pytest.mark.parametrize("status", [408, 500, 504])
def test_transient_statuses_stay_upstream_errors(status):
    err = wire.error_for_status(status, b'{"code": "TIMEOUT"}', "upstream")
    assert not isinstance(err, UpstreamRejected)
    assert err.retry_after == 5


def test_403_through_the_extension_is_one_upstream_call(stub):
    server = stub(lambda h, n: send(h, 403, b'{"code": "NO_ACTIVE_SUBSCRIPTION", "message": "m"}'))
    app, toucan = make_app(TOUCAN_BASE_URL=server.url)
    from flask_toucan.user import ToucanUser

    with app.test_request_context(), pytest.raises(UpstreamRejected) as info:
        toucan.issue_token(ToucanUser("iss", "alice", {"org": "acme"}))
    assert info.value.upstream_code == "NO_ACTIVE_SUBSCRIPTION"
    assert server.calls == 1


def test_redirects_are_not_followed(stub):
    target = stub(lambda h, n: send(h, 200, token_body("stolen")))
    server = stub(lambda h, n: send(h, 307, headers={"Location": f"{target.url}/embed/generate-token"}))
    with pytest.raises(UpstreamError, match="redirect"):
        post(fast(), server)
    assert target.calls == 0


def test_errors_hold_no_header_or_body(stub):
    server = stub(lambda h, n: send(h, 503, API_KEY.encode(), {"X-Echo": API_KEY}))
    with pytest.raises(UpstreamError) as info:
        post(fast(retries=1), server)
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value)


# ------------------------------------------------------------------ proxies
def proxy_stub(stub: Callable[[Respond], StubServer]) -> StubServer:
    """A stand-in forward proxy for plain http: it answers the absolute-URI request itself."""
    return stub(lambda h, n: send(h, 200, token_body("via-proxy")))


def test_explicit_proxy_carries_the_call(stub):
    proxy = proxy_stub(stub)
    transport = fast(proxy=f"http://user:proxy-pw@{proxy.url.removeprefix('http://')}")
    resp = transport.post("http://toucan.invalid/embed/generate-token", what="Toucan token API", json={})
    assert wire.parse_response(resp.status, resp.body, "x")[0] == "via-proxy"
    assert proxy.seen[0].path == "http://toucan.invalid/embed/generate-token"
    assert proxy.seen[0].headers["Proxy-Authorization"].startswith("Basic ")
    assert "proxy-pw" not in repr(transport)


def test_unreachable_proxy_error_names_no_credentials():
    transport = fast(proxy="http://user:proxy-pw@127.0.0.1:9", retries=0, connect_timeout=0.5)
    with pytest.raises(UpstreamError) as info:
        transport.post("http://toucan.invalid/x", what="Toucan token API", json={})
    assert "proxy-pw" not in str(info.value)
    assert "proxy" in str(info.value)


def test_environment_proxies_ignored_unless_trusted(stub, monkeypatch):
    proxy = proxy_stub(stub)
    direct = stub(lambda h, n: send(h, 200, token_body("direct")))
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)
    url = f"{direct.url}/embed/generate-token"
    assert fast().post(url, what="t", json={}).body == token_body("direct")
    assert proxy.calls == 0
    assert fast(trust_env=True).post(url, what="t", json={}).body == token_body("via-proxy")
    assert proxy.calls == 1


def test_concurrent_calls_share_the_pool(stub):
    server = stub(lambda h, n: send(h, 200, encode(token_body(), "gzip"), {"Content-Encoding": "gzip"}))
    transport = fast()
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(post(transport, server)[0])) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == ["tok-abc"] * 8


def test_connections_are_reused(stub):
    server = stub(lambda h, n: send(h, 200, encode(token_body(), "gzip"), {"Content-Encoding": "gzip"}))
    transport = fast()
    for _ in range(3):
        post(transport, server)
    assert len({seen.client_port for seen in server.seen}) == 1  # one pooled keep-alive connection
