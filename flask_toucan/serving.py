"""``ThreadedServer``: a WSGI app on a loopback port, served by werkzeug in a daemon thread.

One helper for everything in this repository that runs a real HTTP server in
the current process: the sandbox (:class:`flask_toucan.sandbox.SandboxServer`),
the test suite's ``live_server`` fixture, and the demo's portal and identity
provider. Knows nothing of Flask or of flask-toucan's state.

Two things it does that ``werkzeug.serving.make_server`` alone does not:

* it binds the socket itself, so a taken port is an ``OSError`` the caller can
  word (werkzeug prints its own message and exits the process);
* the socket is open before the app exists (``ThreadedServer(None, port=0)``,
  then ``.url``, then ``.app = ...``, then ``.start()``): pieces whose
  configuration needs their own URL (an OpenID issuer, a redirect URI) are
  built after their port is known. Until then it answers 503.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``OSError`` if the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug does
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def check_free(host: str, port: int) -> None:
    """Raise ``OSError`` now if ``port`` (non-zero) is taken on ``host``."""
    if port:
        listen(host, port).close()


def _not_ready(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Retry-After", "1")])
    return [b"starting\n"]


class ThreadedServer:
    """``ThreadedServer(app).start()``; ``.url``, ``.port``; ``.stop()`` (safe twice).

    The socket is bound in the constructor (``port=0``: any free port). ``app``
    may be set later, before or after :meth:`start`. ``request_handler``: a
    werkzeug ``WSGIRequestHandler`` subclass (the sandbox's leaves ``Date`` to
    the app).
    """

    def __init__(
        self,
        app: WSGIApp | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "wsgi-server",
        request_handler: type[WSGIRequestHandler] | None = None,
        poll_interval: float = 0.05,
    ) -> None:
        self.host = host
        self.name = name
        self.poll_interval = poll_interval
        sock = listen(host, port)
        try:
            self._server: BaseWSGIServer | None = make_server(
                host,
                sock.getsockname()[1],
                app or _not_ready,
                threaded=True,
                request_handler=request_handler,
                fd=sock.fileno(),
            )
        finally:
            sock.close()  # werkzeug duplicated the descriptor
        # Given a descriptor, werkzeug skips server_bind(), which is what sets these.
        self._server.server_name, self._server.server_port = self._server.socket.getsockname()[:2]
        self._port = int(self._server.server_port)
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ThreadedServer(url={self.url!r}, running={self.running})"

    # -- what callers read ------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def app(self) -> WSGIApp:
        if self._server is None:
            raise RuntimeError("the server is stopped")
        return self._server.app

    @app.setter
    def app(self, app: WSGIApp) -> None:
        if self._server is None:
            raise RuntimeError("the server is stopped")
        self._server.app = app

    # -- life cycle ---------------------------------------------------------------
    def start(self) -> ThreadedServer:
        """Serve in a daemon thread (idempotent)."""
        if self._server is None:
            raise RuntimeError("the server is stopped; make a new one")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": self.poll_interval},
                name=self.name,
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (a CLI) until interrupted, then close."""
        if self._server is None:
            raise RuntimeError("the server is stopped; make a new one")
        try:
            self._server.serve_forever(poll_interval=self.poll_interval)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving and close the socket (safe to call twice)."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        if thread is not None:
            server.shutdown()
            thread.join(timeout=10)
        server.server_close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
