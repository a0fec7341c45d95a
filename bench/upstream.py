"""A counting stand-in for Toucan's token API and the classic exchange, with injected latency.

Used by the cold-page benchmark and by the tests that check a page's token
requests overlap. Every call is recorded with its arrival and answer times
(``time.monotonic()``, this process's clock), so a caller can tell whether two
calls were in flight together.

* ``POST /embed/generate-token`` (``api`` mode): ``{"token", "expiresIn"}``.
* ``POST /exchange`` (the classic profile's RFC 7523 exchange): an OAuth token response.

``latency``: each call is held that long before answering. ``rendezvous=N``:
each call is instead held until N calls are in flight together (or
``rendezvous_timeout`` passes): a condition, not a clock, so a test of
overlap neither sleeps nor races. A sequential client would make the first
call wait the whole timeout alone, which the recorded times then show.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Call:
    path: str
    started: float
    ended: float
    body: bytes


class CountingUpstream:
    """``with CountingUpstream(latency=0.05) as up: ... up.url, up.calls``."""

    def __init__(
        self,
        latency: float = 0.0,
        rendezvous: int = 0,
        rendezvous_timeout: float = 10.0,
        refuse: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.latency = latency
        self.rendezvous_timeout = rendezvous_timeout
        #: ``refuse(body)`` true: answer 403 ``NO_ACTIVE_SUBSCRIPTION`` (a permanent refusal).
        self.refuse = refuse
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._barrier: threading.Barrier | None = None
        self.set_rendezvous(rendezvous)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> CountingUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._barrier is not None:
            self._barrier.abort()
        self._server.shutdown()
        self._server.server_close()

    def set_rendezvous(self, n: int) -> None:
        """Hold each call until ``n`` are in flight together (``0``: use ``latency`` instead)."""
        self._barrier = threading.Barrier(n) if n > 1 else None

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def overlapping(self) -> bool:
        """Whether every recorded call was in flight at one common instant."""
        calls = list(self.calls)
        return len(calls) > 1 and max(c.started for c in calls) < min(c.ended for c in calls)

    def _hold(self) -> None:
        if self._barrier is not None:
            try:
                self._barrier.wait(self.rendezvous_timeout)
            except threading.BrokenBarrierError:
                pass
            return
        if self.latency:
            time.sleep(self.latency)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Buffered: headers and body leave in one write (flushed after each request), so
            # no Nagle / delayed-ACK stall adds 40 ms to a keep-alive round trip.
            wbufsize = -1

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                started = time.monotonic()
                upstream._hold()
                value = "tok-" + uuid.uuid4().hex
                status = 200
                if upstream.refuse is not None and upstream.refuse(body):
                    status = 403
                    payload: dict[str, Any] = {"code": "NO_ACTIVE_SUBSCRIPTION", "message": "no"}
                elif self.path.startswith("/embed/generate-token"):
                    payload = {"token": value, "expiresIn": 3600}
                elif self.path.startswith("/exchange"):
                    payload = {"access_token": value, "token_type": "Bearer", "expires_in": 3600}
                else:
                    self.send_error(404)
                    return
                out = json.dumps(payload).encode()
                with upstream._lock:
                    upstream.calls.append(Call(self.path, started, time.monotonic(), body))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        return Handler
