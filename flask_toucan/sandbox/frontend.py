"""What a production front end adds to every answer: ``Date`` and gzip.

Toucan sits behind front ends that compress JSON for clients that accept it
and stamp a ``Date`` header (hosts read clock skew from it). A sandbox that
did neither would let a client that cannot decode gzip, or that never looks
at ``Date``, pass every test and break in production. So: ``gzip`` whenever
the request's ``Accept-Encoding`` allows it (and the body is worth it), and
``Date`` on every response (the in-process server is told not to add its
own, see :mod:`.server`).
"""

from __future__ import annotations

import gzip

from flask import Flask, Response, request
from werkzeug.http import http_date

MIN_GZIP_BYTES = 20  # nginx's gzip_min_length default


def _accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0 or request.accept_encodings["*"] > 0


def compress(resp: Response) -> Response:
    """gzip the body in place when the client accepts it and nothing else encoded it."""
    if (
        resp.status_code in (204, 304)
        or request.method == "HEAD"
        or "Content-Encoding" in resp.headers
        or not _accepts_gzip()
    ):
        return resp
    resp.direct_passthrough = False  # static files: read the body so it can be encoded
    body = resp.get_data()
    if len(body) < MIN_GZIP_BYTES:
        return resp
    resp.set_data(gzip.compress(body, compresslevel=6))
    resp.headers["Content-Encoding"] = "gzip"
    resp.vary.add("Accept-Encoding")
    return resp


def register_frontend(app: Flask) -> None:
    @app.after_request
    def front_end(resp: Response) -> Response:
        resp = compress(resp)
        resp.headers["Date"] = http_date()
        return resp
