"""The refresh body's read: the common case read directly, every other case as werkzeug reads it."""

from __future__ import annotations

import io

import pytest

from flask_toucan.exceptions import BadRequest

from .test_headers import refresh
from .test_refresh_endpoint import client_for

BODY = b'{"kind": "dashboard"}'


def test_a_body_with_its_length_is_read(host, toucan_sandbox):
    app, _ = host()
    resp = refresh(client_for(app), body=BODY)
    assert resp.status_code == 200 and resp.get_json()["token"]


def test_a_chunked_body_the_server_terminated_is_read(host, toucan_sandbox):
    """No Content-Length, ``wsgi.input_terminated`` (gunicorn, a chunked request): werkzeug's stream."""
    app, _ = host()
    environ = {"wsgi.input": io.BytesIO(BODY), "wsgi.input_terminated": True}
    resp = refresh(client_for(app), body=None, environ=environ)
    assert resp.status_code == 200, resp.get_json()


def test_a_body_shorter_than_its_length_is_a_400(host):
    app, _ = host()
    environ = {"wsgi.input": io.BytesIO(BODY), "CONTENT_LENGTH": str(len(BODY) + 10)}
    resp = refresh(client_for(app), body=None, environ=environ)
    assert resp.status_code == 400 and resp.get_json()["error"] == "bad_request"


def test_the_apps_max_content_length_still_answers_413(host):
    app, _ = host()
    app.config["MAX_CONTENT_LENGTH"] = 8
    resp = refresh(client_for(app), body=BODY)
    assert resp.status_code == 413 and resp.get_json()["error"] == "payload_too_large"


def test_a_body_read_in_pieces_is_whole(host, toucan_sandbox):
    """A server whose input returns fewer bytes than asked (allowed by WSGI) still gives the whole body."""

    class Trickle(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(min(3, size if size is not None and size >= 0 else 3))

    app, _ = host()
    environ = {"wsgi.input": Trickle(BODY), "CONTENT_LENGTH": str(len(BODY))}
    resp = refresh(client_for(app), body=None, environ=environ)
    assert resp.status_code == 200, resp.get_json()


def test_the_shared_decoder_reads_what_json_loads_reads(host):
    """``small_json_body`` decodes with one module-level decoder: the same answers as
    ``json.loads(raw, parse_constant=...)`` for every encoding json accepts, NaN still refused."""
    import json

    from flask_toucan import views

    app, _ = host()
    bodies = [
        BODY,
        b"\xef\xbb\xbf" + BODY,  # a UTF-8 BOM
        '{"kind": "chart"}'.encode("utf-16"),
        '{"kind": "chart"}'.encode("utf-32-le"),
        '{"kind": "zoë"}'.encode(),
    ]
    for raw in bodies:
        with app.test_request_context(
            "/toucan/token", method="POST", data=raw, content_type="application/json"
        ):
            assert views.small_json_body(4096) == json.loads(raw)
    for raw in (b'{"kind": NaN}', b'{"kind": -Infinity}', b"\xff\xfe\xfa", b'{"kind": "\xc3"}'):
        with app.test_request_context(
            "/toucan/token", method="POST", data=raw, content_type="application/json"
        ):
            with pytest.raises(BadRequest):
                views.small_json_body(4096)
