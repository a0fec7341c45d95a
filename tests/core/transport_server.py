"""A tiny scripted HTTP server on a free loopback port, for the transport tests.

Each test hands it a ``respond(handler, call_number)`` function; the server
counts calls and keeps what it was sent (request line, headers, body).
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Respond = Callable[[BaseHTTPRequestHandler, int], None]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


@dataclass
class StubServer:
    server: ThreadingHTTPServer
    thread: threading.Thread
    seen: list[Seen] = field(default_factory=list)
    #: Set at teardown: handlers that stall wait on it, so stopping never hangs.
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def calls(self) -> int:
        return len(self.seen)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-answer is what the timeout tests do: no traceback."""


def start_stub(respond: Respond) -> StubServer:
    holder: dict[str, StubServer] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            stub = holder["stub"]
            with lock:
                stub.seen.append(
                    Seen(self.command, self.path, dict(self.headers.items()), body, self.client_address[1])
                )
                n = stub.calls
            respond(self, n)

        do_POST = _handle
        do_GET = _handle

    server = _QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    stub = StubServer(server, thread)
    holder["stub"] = stub
    thread.start()
    return stub


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    if headers and "Date" in headers:
        handler.send_response_only(status)  # no automatic Date: the test sets its own
    else:
        handler.send_response(status)
    all_headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    all_headers.update(headers or {})
    for name, value in all_headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()


def token_body(token: str = "tok-abc", expires_in: int = 3600) -> bytes:
    return json.dumps({"token": token, "expiresIn": expires_in}).encode()


def encode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)  # HTTP "deflate" is the zlib format (RFC 9110 8.4.1.2)
    if encoding == "br":
        import brotli

        out: bytes = brotli.compress(body)
        return out
    raise ValueError(encoding)
