"""Hypothesis fuzzing of ``next`` on login and logout: never a 500, never an off-site redirect.

Login only stores ``next`` in the session (the callback redirects there after
the provider comes back); logout redirects at once. Either way the target is
the exact value when it is a plain same-origin path, the configured default
otherwise.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from authlib.integrations.flask_client import OAuth
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flask_toucan import Toucan
from flask_toucan.test_client import ToucanTestClient
from flask_toucan.views import SESSION_NEXT

from .helpers import API_KEY, SECRET_KEY

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
AUTHORIZE = "http://127.0.0.1:9/authorize"
NEXT = st.one_of(
    st.sampled_from(
        [
            "//evil.example",
            "/\\evil.example",
            "/%2F%2Fevil.example",
            "/%252F%252Fevil",
            "https:evil.example",
            "javascript:alert(1)",
            "/\t/evil",
            "/ok?x=1#y",
            "/ok",
            "http://[",
            "/[",
            "/%",
            "/%zz",
            "\x00",
            "/" + "a" * 3000,
            "",
            "/é",
        ]
    ),
    st.builds(lambda rest: "/" + rest, st.text(alphabet="/\\%2Fa.:@?#[] \t\x00\uff45", max_size=16)),
    st.text(max_size=40),
)


def make_app() -> Flask:
    app = Flask("fuzz-redirects")
    app.config.update(
        SECRET_KEY=SECRET_KEY, TESTING=True, TOUCAN_BASE_URL="http://127.0.0.1:9", TOUCAN_API_KEY=API_KEY
    )
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id="c",
        client_secret="s",
        client_kwargs={"scope": "openid"},
        authorize_url=AUTHORIZE,
        access_token_url="http://127.0.0.1:9/token",
    )
    toucan = Toucan(app, oauth=oauth)

    @toucan.attribute("organization_id")
    def org(user: Any) -> Any:
        return user["org"]

    app.test_client_class = ToucanTestClient
    return app


@pytest.fixture
def app() -> Flask:
    return make_app()


def assert_same_origin_path(target: str, sent: str) -> None:
    # werkzeug percent-encodes what a Location may not hold raw ("[" -> "%5B") and drops an
    # empty "?" or "#": the same place either way.
    def same(url: str) -> str:
        return urlsplit(unquote(url)).geturl()

    assert target == "/" or same(target) == same(sent), (target, sent)
    parts = urlsplit(target)
    assert not parts.scheme and not parts.netloc
    assert target.startswith("/") and not target.startswith("//") and "\\" not in target
    assert all(0x20 < ord(c) < 0x7F for c in target)


def assert_clean(resp: Any) -> None:
    body = resp.get_data(as_text=True)
    assert resp.status_code < 500, body
    assert "Traceback" not in body and API_KEY not in body and SECRET_KEY not in body


@FUZZ
@given(target=NEXT)
@example(target="//evil.example")
def test_fuzz_login_next(app, target):
    client = app.test_client()
    resp = client.get("/toucan/login", query_string={"next": target})
    assert_clean(resp)
    assert resp.status_code == 302 and resp.location.startswith(AUTHORIZE)
    with client.session_transaction() as sess:
        stored = sess.get(SESSION_NEXT)
    if stored is not None:
        assert_same_origin_path(stored, target)


@FUZZ
@given(target=NEXT, logged_in=st.booleans(), csrf=st.sampled_from(["real", "none", "junk"]))
@example(target="/\\evil.example", logged_in=False, csrf="none")
def test_fuzz_logout_next(app, target, logged_in, csrf):
    client = app.test_client(
        user={"sub": "alice", "iss": "https://idp", "org": "acme"} if logged_in else None
    )
    form = {"next": target}
    if csrf == "real" and client.csrf_token:
        form["csrf_token"] = client.csrf_token
    elif csrf == "junk":
        form["csrf_token"] = "\x00" * 600
    resp = client.post("/toucan/logout", data=form)
    assert_clean(resp)
    if logged_in and csrf != "real":
        assert resp.status_code == 403 and resp.is_json
        return
    assert resp.status_code == 302
    assert_same_origin_path(resp.location, target)


def test_safe_next_never_raises_on_bad_brackets():
    from flask_toucan.redirects import safe_next

    for value in ("http://[", "http://[::1", "http://a]b", "//[", "/[", "/x?//[", "/%2F%2F["):
        assert safe_next(value) in (None, value)
    assert safe_next("/[") == "/["
    assert safe_next("http://[") is None
