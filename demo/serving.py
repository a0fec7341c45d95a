"""Open listening sockets ourselves, so a busy port is an error we can word.

werkzeug's ``make_server`` prints its own message and exits the process when
a port is taken; the demo wants to say which service and which variable.
"""

from __future__ import annotations

import socket
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``OSError`` if the port is taken)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug does
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def serve_on(host: str, port: int, app: Any) -> BaseWSGIServer:
    """A threaded werkzeug server on ``host:port`` (0 = any free port); raises ``OSError``."""
    sock = listen(host, port)
    try:
        server = make_server(host, sock.getsockname()[1], app, threaded=True, fd=sock.fileno())
    finally:
        sock.close()  # werkzeug duplicated the descriptor
    # Given a descriptor, werkzeug skips server_bind(), which is what sets these.
    server.server_name, server.server_port = server.socket.getsockname()[:2]
    return server


def check_free(host: str, port: int) -> None:
    """Raise ``OSError`` now if ``port`` is taken (for servers we do not bind ourselves)."""
    if port:
        listen(host, port).close()
