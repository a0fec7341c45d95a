"""A host app logging in through a real OpenID provider (Canaille, via pytest-iam).

The provider is ``pytest-iam``'s session-wide ``iam_server`` (Canaille, served by
wsgiref on ``localhost:<port>``); the host app is served by ``live_server`` on
``127.0.0.1:<port>``. Different host names, so one ``requests.Session`` keeps the
two cookie jars apart just as a browser would.

Every test gets its own OAuth client registered at the provider (its own
``client_id`` and the host's exact callback URL as the only redirect URI) and
its own host app, so tests never share a session or a client.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.flask_client import OAuth
from flask import Flask, jsonify, session
from joserfc import jwt
from joserfc.jwk import KeySet

from flask_toucan import Toucan

from .helpers import API_KEY, SECRET_KEY

SCOPE = "openid profile email"


@pytest.fixture(scope="session")
def iam_server(iam_configuration: dict[str, Any], iam_server_port: int) -> Iterator[Any]:
    """pytest-iam's ``iam_server``, without the app context it keeps pushed all session.

    The original yields inside ``app.app_context()``, so after the first login
    test the provider stayed ``current_app`` for every later test of the run: a
    ``flask toucan`` CLI test that ran after one (``with_appcontext`` reuses a
    current app) talked to the provider instead of its own app and failed, in
    an order-dependent way. ``Server``'s own methods push the context they need.
    """
    from canaille import create_app
    from canaille.backends import Backend
    from pytest_iam import Server

    app = create_app(config=iam_configuration, env_file=".pytest-iam.env", env_prefix="PYTEST_IAM_")
    server = Server(app, iam_server_port, Backend.instance)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        thread.join(timeout=10)


@dataclass
class Host:
    """One host app, its Authlib registry and its client at the provider."""

    app: Flask
    oauth: OAuth
    toucan: Toucan
    url: str
    client_id: str
    client_secret: str
    provider: Any  # pytest_iam.Server
    provider_client: Any  # canaille Client model
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def issuer(self) -> str:
        # Canaille's issuer: scheme://SERVER_NAME (no trailing slash).
        return self.provider.url.rstrip("/")

    @property
    def authlib_client(self) -> Any:
        # The same instance the views use (Authlib caches clients per registry).
        return self.oauth.create_client("idp")

    # -- browser-like steps (no automatic redirects: every hop is checked) --
    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.url + path, allow_redirects=False, timeout=10, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.http.post(self.url + path, allow_redirects=False, timeout=10, **kw)

    def me(self) -> Any:
        resp = self.get("/me")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def start_login(self, next_: str | None = None) -> requests.Response:
        params = {"next": next_} if next_ is not None else None
        resp = self.get("/toucan/login", params=params)
        assert resp.status_code == 302, resp.text
        assert resp.headers["Location"].startswith(self.provider.url), resp.headers["Location"]
        return resp

    def authorize(self, authorize_url: str) -> str:
        """Visit the provider (user already logged in and consented there); return the callback URL."""
        resp = self.http.get(authorize_url, allow_redirects=False, timeout=10)
        assert resp.status_code == 302, (resp.status_code, resp.text[:500])
        callback = resp.headers["Location"]
        assert callback.startswith(self.url + "/toucan/callback?"), callback
        return callback

    def finish(self, callback_url: str) -> requests.Response:
        return self.http.get(callback_url, allow_redirects=False, timeout=10)

    def login(self, next_: str | None = None) -> requests.Response:
        """The whole round trip; returns the callback's response."""
        return self.finish(self.authorize(self.start_login(next_).headers["Location"]))

    def session_cookie(self) -> str | None:
        return self.http.cookies.get("session", domain="127.0.0.1")


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def make_host_app(
    provider: Any, client_id: str, client_secret: str, **config: Any
) -> tuple[Flask, OAuth, Toucan]:
    app = Flask(f"oidc-host-{client_id}")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TOUCAN_BASE_URL="http://127.0.0.1:9",  # api mode, never called here
        TOUCAN_API_KEY=API_KEY,
    )
    app.config.update(config)
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{provider.url}.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE},
    )
    toucan = Toucan(app, oauth=oauth)

    @app.get("/me")
    def me() -> Any:
        user = toucan.current_user
        if user is None:
            return jsonify(None)
        return jsonify({"issuer": user.issuer, "subject": user.subject, "claims": user.claims})

    @app.get("/set-marker")
    def set_marker() -> Any:
        session["pre_login_marker"] = "planted-before-login"
        return jsonify(ok=True)

    @app.get("/session-keys")
    def session_keys() -> Any:
        return jsonify(sorted(session.keys()))

    @app.get("/csrf")
    def csrf() -> Any:
        return jsonify(token=toucan.csrf_token())

    return app, oauth, toucan


@pytest.fixture
def make_host(iam_server: Any, live_server: Callable[..., Any]) -> Iterator[Callable[..., Host]]:
    """Factory: a served host app plus its own confidential client at the provider."""
    made: list[Host] = []

    def factory(
        *, register_redirect: bool = True, auth_method: str = "client_secret_basic", **config: Any
    ) -> Host:
        client_id = f"host-{uuid.uuid4().hex[:12]}"
        client_secret = uuid.uuid4().hex
        app, oauth, toucan = make_host_app(iam_server, client_id, client_secret, **config)
        srv = live_server(app)
        url = srv.url
        redirect_uris = [f"{url}/toucan/callback"] if register_redirect else [f"{url}/elsewhere"]
        now = datetime.datetime.now(datetime.UTC)
        with iam_server.app.app_context():
            pclient = iam_server.models.Client(
                client_id=client_id,
                client_secret=client_secret,
                client_id_issued_at=now,
                client_name="flask-toucan test host",
                client_uri=url,
                redirect_uris=redirect_uris,
                grant_types=["authorization_code"],
                response_types=["code"],
                token_endpoint_auth_method=auth_method,
                scope=SCOPE.split(),
            )
            iam_server.backend.save(pclient)
            pclient.audience = [pclient]
            iam_server.backend.save(pclient)
        host = Host(app, oauth, toucan, url, client_id, client_secret, iam_server, pclient)
        made.append(host)
        return host

    yield factory
    iam_server.logout()
    with iam_server.app.app_context():
        for host in made:
            host.http.close()
            for consent in iam_server.backend.query(iam_server.models.Consent, client=host.provider_client):
                iam_server.backend.delete(consent)
            iam_server.backend.delete(host.provider_client)


@pytest.fixture
def idp_user(iam_server: Any) -> Any:
    """A user at the provider, with an open provider session (no login form)."""
    user = iam_server.random_user()
    iam_server.login(user)
    return user


def consent(host: Host, user: Any) -> None:
    """The user has already agreed to share ``SCOPE`` with this host's client."""
    host.provider.consent(user, host.provider_client)


# ------------------------------------------------------------ id_token forging
def _b64json(segment: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def provider_keys(iam_configuration: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set({"keys": iam_configuration["CANAILLE_OIDC"]["ACTIVE_JWKS"]})


def resign_id_tokens(
    host: Host,
    monkeypatch: pytest.MonkeyPatch,
    iam_configuration: dict[str, Any],
    mutate: Callable[[dict[str, Any]], None],
) -> list[dict[str, Any]]:
    """Let the provider answer the token request, then re-sign its id_token with the
    provider's own key after ``mutate`` has changed its claims.

    A signature the host must accept (right key, right ``kid``, everything else
    untouched: nonce, at_hash, exp): only the claims under test differ.
    Returns the list of forged claim sets (to assert the hook ran).
    """
    client = host.authlib_client
    original = client.fetch_access_token
    keys = provider_keys(iam_configuration)
    forged: list[dict[str, Any]] = []

    def fetch_access_token(*args: Any, **kwargs: Any) -> Any:
        token = original(*args, **kwargs)
        head, payload, _sig = token["id_token"].split(".")
        header, claims = _b64json(head), _b64json(payload)
        mutate(claims)
        key = keys.get_by_kid(header["kid"])
        token["id_token"] = jwt.encode(
            {"alg": header["alg"], "kid": header["kid"]}, claims, key, algorithms=[header["alg"]]
        )
        forged.append(claims)
        return token

    monkeypatch.setattr(client, "fetch_access_token", fetch_access_token)
    return forged
