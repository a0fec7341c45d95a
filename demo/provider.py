"""The local OpenID provider: Canaille, in-process, seeded with the demo users.

Canaille is a maintained OpenID Connect server (the one ``pytest-iam`` runs);
it enforces PKCE and real client authentication, so the demo's login is the
same flow a production identity provider would run.

What the demo's mappers read from the identity (all standard OpenID claims,
so the same mappers work against any provider that sends them):

* ``groups`` (scope ``groups``): ``org:<organization id>`` for the tenant and
  ``analysts`` for the role that may use the AI assistant;
* ``address.region`` (scope ``address``): the user's sales region.

Canaille emits only the registered OpenID claims plus ``groups``; a custom
``organization`` claim would mean patching it, hence the group convention
(common with Keycloak, Okta and Entra ID as well).
"""

from __future__ import annotations

import datetime
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader

from flask_toucan.serving import ThreadedServer

from .users import DEMO_USERS, ORGANIZATIONS, REGION_NAMES

TEMPLATES = Path(__file__).resolve().parent / "provider_templates"
SCOPES = ("openid", "profile", "email", "address", "groups")


@dataclass(frozen=True)
class ClientRegistration:
    """The demo app as an OAuth client of the provider (confidential, code flow)."""

    client_id: str
    client_secret: str
    redirect_uri: str
    client_uri: str  # on a trusted domain (127.0.0.1): Canaille skips the consent screen
    name: str = "Toucan analytics portal (demo)"


def _null_logging() -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"null": {"class": "logging.NullHandler"}},
        "loggers": {"canaille": {"level": "WARNING", "handlers": ["null"]}},
    }


def create_provider_app(server_name: str, client: ClientRegistration) -> Flask:
    """A Canaille app whose issuer is ``http://{server_name}``, seeded and ready.

    ``server_name`` must be the host:port the browser and the demo use (Canaille
    builds its issuer and every endpoint URL from it).
    """
    # Canaille (an Authlib server) refuses plain http unless told otherwise; the
    # local provider only ever listens on loopback.
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    from canaille import create_app
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048)
    key.ensure_kid()
    config: dict[str, Any] = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "SERVER_NAME": server_name,
        "PREFERRED_URL_SCHEME": "http",
        "SESSION_COOKIE_NAME": "idp_session",
        "CANAILLE": {
            "NAME": "Demo identity provider",
            "DATABASE": "memory",
            "ENABLE_REGISTRATION": False,
            "ENABLE_PASSWORD_RECOVERY": False,
            "JAVASCRIPT": False,
            "ACL": {"DEFAULT": {"PERMISSIONS": ["use_oidc"]}},
            "LOGGING": _null_logging(),
        },
        "CANAILLE_OIDC": {"ACTIVE_JWKS": [key.as_dict(private=True)]},
    }
    app: Flask = create_app(config=config)
    _list_demo_users_on_login_page(app)
    with app.app_context():
        _seed(client)
    return app


def _list_demo_users_on_login_page(app: Flask) -> None:
    """Show the demo accounts under Canaille's own login form.

    Our ``core/login.html`` extends Canaille's (reached as ``canaille/...``) and
    only appends a table, so Canaille's form stays untouched.
    """
    original = app.jinja_env.loader
    assert original is not None
    app.jinja_env.loader = ChoiceLoader(
        [FileSystemLoader(str(TEMPLATES)), PrefixLoader({"canaille": original}), original]
    )

    @app.context_processor
    def demo_users() -> dict[str, Any]:
        return {
            "demo_users": DEMO_USERS,
            "demo_organizations": ORGANIZATIONS,
            "demo_regions": REGION_NAMES,
        }


def _seed(client: ClientRegistration) -> None:
    from canaille.app import models
    from canaille.backends import Backend

    backend = Backend.instance
    User, Group, Client = models.User, models.Group, models.Client
    users: dict[str, Any] = {}
    for demo in DEMO_USERS:
        user = User(
            user_name=demo.username,
            given_name=demo.given_name,
            family_name=demo.family_name,
            formatted_name=demo.name,
            display_name=demo.name,
            emails=[demo.email],
            region=demo.region,
            organization=ORGANIZATIONS[demo.organization],
        )
        backend.save(user)
        backend.set_user_password(user, demo.password)
        users[demo.username] = user

    def members(pred: Any) -> list[Any]:
        return [users[d.username] for d in DEMO_USERS if pred(d)]

    groups: dict[str, list[Any]] = {}
    for demo in DEMO_USERS:
        for name in demo.groups:
            groups.setdefault(name, [])
    for name in groups:
        group = Group(
            display_name=name,
            members=members(lambda d, name=name: name in d.groups),
            description=_group_description(name),
        )
        backend.save(group)

    now = datetime.datetime.now(datetime.UTC)
    model = Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        client_id_issued_at=now,
        client_name=client.name,
        client_uri=client.client_uri,
        redirect_uris=[client.redirect_uri],
        post_logout_redirect_uris=[client.client_uri + "/"],
        grant_types=["authorization_code"],
        response_types=["code"],
        token_endpoint_auth_method="client_secret_basic",
        scope=list(SCOPES),
    )
    backend.save(model)
    model.audience = [model]
    backend.save(model)


def _group_description(name: str) -> str:
    if name.startswith("org:"):
        return f"Members of {ORGANIZATIONS.get(name[4:], name[4:])}"
    return "May use the AI assistant"


class ProviderServer:
    """Canaille on ``127.0.0.1:<port>`` in a thread; bind first, then build.

    The port must be known before the app exists (it is the issuer), and the
    demo's port before the client is registered: :meth:`bind` opens the socket,
    :meth:`start` builds the seeded app and serves it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadedServer(None, host, port, name="demo-idp", poll_interval=0.1)
        self._previous_backend: Any = None
        self.app: Flask | None = None

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def start(self, client: ClientRegistration) -> ProviderServer:
        from canaille.backends import Backend

        # Canaille keeps its backend in a class attribute: remember who was there
        # (another Canaille in the same process, e.g. a test fixture) to put it back.
        self._previous_backend = Backend._instance
        self.app = create_provider_app(f"{self.host}:{self.port}", client)
        self._server.app = self.app
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        if self.app is not None:
            from canaille.backends import Backend

            Backend._instance = self._previous_backend
            self.app = None


def main(argv: list[str] | None = None) -> int:
    """``python -m demo.provider``: the demo's OpenID provider alone, for your own app.

    Registers one client (the id, secret and redirect URI given, a random secret
    by default) and prints what the app needs (``OIDC_*``, as docs/examples/
    basic_app.py reads them). Runs until Ctrl-C or SIGTERM.
    """
    import argparse
    import signal
    import sys
    import threading

    from .users import users_table

    parser = argparse.ArgumentParser(
        prog="python -m demo.provider",
        description="Run the demo's local OpenID provider (Canaille, in memory, seeded with the demo users).",
    )
    parser.add_argument("--port", type=int, default=5001, help="default 5001; 0 picks a free port")
    parser.add_argument("--client-id", default="my-client", help="default my-client")
    parser.add_argument("--client-secret", help="default: random, printed at start")
    parser.add_argument(
        "--redirect-uri",
        default="http://127.0.0.1:5000/toucan/callback",
        help="the app's callback (default: flask run's address + /toucan/callback)",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    secret = args.client_secret or secrets.token_urlsafe(24)
    app_origin = args.redirect_uri.split("/toucan/")[0]
    try:
        server = ProviderServer(port=args.port)
    except OSError as exc:
        print(f"provider: cannot listen on 127.0.0.1:{args.port} ({exc.strerror})", file=sys.stderr)
        return 2
    server.start(ClientRegistration(args.client_id, secret, args.redirect_uri, app_origin))
    # The provider's own local client secret, printed to be copied (like the sandbox's API key).
    print(f"Demo OpenID provider (Canaille) on {server.url}", flush=True)
    print(f"  OIDC_METADATA_URL={server.metadata_url}")
    print(f"  OIDC_CLIENT_ID={args.client_id}")
    print(f"  OIDC_CLIENT_SECRET={secret}")
    print(f"  redirect URI: {args.redirect_uri}")
    print("  Sign in as:")
    print(users_table(), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
