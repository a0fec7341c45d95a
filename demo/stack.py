"""Start and stop the whole demo: local OpenID provider, Toucan sandbox, portal.

Used by ``python -m demo`` and by the end-to-end tests (with free ports and a
short token lifetime), so the tests run the very start-up code visitors run.

Each piece runs on 127.0.0.1 in a thread of this process. Sockets are bound
first, because each piece needs the others' URLs before it is built: the
provider's issuer is its own URL, the portal's redirect URI is registered at
the provider, and the sandbox only accepts tokens used from the portal's origin.
A piece that the environment points elsewhere (a real identity provider, a
real Toucan instance) is not started.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from flask_toucan.serving import ThreadedServer, check_free

HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_IDP_PORT = 5001
DEFAULT_SANDBOX_PORT = 5100
DEFAULT_TOKEN_LIFETIME = 300
DEFAULT_CLIENT_ID = "toucan-demo"


class StackError(RuntimeError):
    """The demo cannot start as configured (message says what to change)."""


@dataclass
class StackOptions:
    """Every default can be overridden here, on the command line or by environment variables."""

    port: int = DEFAULT_PORT
    idp_port: int = DEFAULT_IDP_PORT
    sandbox_port: int = DEFAULT_SANDBOX_PORT
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    # External services: when set, the local stand-in is not started.
    oidc_metadata_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    toucan_base_url: str | None = None
    toucan_api_key: str | None = None
    secret_key: str | None = None
    app_config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> StackOptions:
        env = os.environ if environ is None else environ

        def number(name: str, default: int, low: int, high: int) -> int:
            value = env.get(name)
            if not value:
                return default
            try:
                result = int(value)
            except ValueError:
                raise StackError(f"{name} must be a whole number, not {value!r}") from None
            if not low <= result <= high:
                raise StackError(f"{name} must be between {low} and {high}")
            return result

        values: dict[str, Any] = {
            "port": number("DEMO_PORT", DEFAULT_PORT, 0, 65535),
            "idp_port": number("DEMO_IDP_PORT", DEFAULT_IDP_PORT, 0, 65535),
            "sandbox_port": number("DEMO_SANDBOX_PORT", DEFAULT_SANDBOX_PORT, 0, 65535),
            "token_lifetime": number("DEMO_TOKEN_LIFETIME", DEFAULT_TOKEN_LIFETIME, 1, 86400),
            "oidc_metadata_url": env.get("DEMO_OIDC_METADATA_URL") or None,
            "oidc_client_id": env.get("DEMO_OIDC_CLIENT_ID") or None,
            "oidc_client_secret": env.get("DEMO_OIDC_CLIENT_SECRET") or None,
            "toucan_base_url": env.get("TOUCAN_BASE_URL") or None,
            "toucan_api_key": env.get("TOUCAN_API_KEY") or None,
            "secret_key": env.get("DEMO_SECRET_KEY") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class DemoStack:
    """``DemoStack(options).start()``: ``.url`` to open; ``.stop()`` stops everything."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.provider: Any = None  # demo.provider.ProviderServer, when local
        self.sandbox: Any = None  # flask_toucan.sandbox.SandboxServer, when local
        self.app: Flask | None = None
        self._server: ThreadedServer | None = None

    # -- what callers read ----------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the demo is not started")
        return self._server.url

    @property
    def local_provider(self) -> bool:
        return self.options.oidc_metadata_url is None

    @property
    def local_sandbox(self) -> bool:
        return self.options.toucan_base_url is None

    # -- life cycle -------------------------------------------------------------
    def start(self) -> DemoStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        opts = self.options
        self._check_external()
        self._server = _bind("the portal", "DEMO_PORT", opts.port)
        demo_url = self.url
        config: dict[str, Any] = {
            "SECRET_KEY": opts.secret_key or secrets.token_urlsafe(32),
            "DEMO_CANONICAL_URL": demo_url,
            "DEMO_SHOW_DEMO_USERS": self.local_provider,
        }

        if self.local_provider:
            from .provider import ClientRegistration, ProviderServer

            try:
                self.provider = ProviderServer(HOST, opts.idp_port)
            except OSError as exc:
                raise _port_error("the identity provider", "DEMO_IDP_PORT", opts.idp_port, exc) from None
            client = ClientRegistration(
                client_id=opts.oidc_client_id or DEFAULT_CLIENT_ID,
                client_secret=opts.oidc_client_secret or secrets.token_urlsafe(32),
                redirect_uri=f"{demo_url}/toucan/callback",
                client_uri=demo_url,
            )
            self.provider.start(client)
            config.update(
                DEMO_OIDC_METADATA_URL=self.provider.metadata_url,
                DEMO_OIDC_CLIENT_ID=client.client_id,
                DEMO_OIDC_CLIENT_SECRET=client.client_secret,
                DEMO_IDP_NAME=f"the demo identity provider ({self.provider.url})",
            )
        else:
            config.update(
                DEMO_OIDC_METADATA_URL=opts.oidc_metadata_url,
                DEMO_OIDC_CLIENT_ID=opts.oidc_client_id,
                DEMO_OIDC_CLIENT_SECRET=opts.oidc_client_secret,
                DEMO_IDP_NAME=urlsplit(opts.oidc_metadata_url or "").netloc or "your identity provider",
            )

        if self.local_sandbox:
            from flask_toucan.sandbox import SandboxServer

            try:
                check_free(HOST, opts.sandbox_port)
                self.sandbox = SandboxServer(
                    host=HOST,
                    port=opts.sandbox_port,
                    token_lifetime=opts.token_lifetime,
                    origins=(demo_url,),  # tokens work from the portal's pages only
                ).bind()
            except OSError as exc:
                raise _port_error("the Toucan sandbox", "DEMO_SANDBOX_PORT", opts.sandbox_port, exc) from None
            self.sandbox.start()
            config.update(
                TOUCAN_BASE_URL=self.sandbox.url,
                TOUCAN_API_KEY=self.sandbox.api_key,
                DEMO_INTROSPECTION_URL=f"{self.sandbox.url}/embed/introspect",
            )
        else:
            config.update(TOUCAN_BASE_URL=opts.toucan_base_url, TOUCAN_API_KEY=opts.toucan_api_key)

        config.update(opts.app_config)
        from .app import create_app

        self.app = create_app(config)
        self._server.app = self.app
        self._server.start()

    def _check_external(self) -> None:
        opts = self.options
        if not self.local_provider and not (opts.oidc_client_id and opts.oidc_client_secret):
            raise StackError(
                "DEMO_OIDC_METADATA_URL points at your identity provider: also set "
                "DEMO_OIDC_CLIENT_ID and DEMO_OIDC_CLIENT_SECRET (the demo's client there)"
            )
        if not self.local_sandbox and not opts.toucan_api_key:
            raise StackError("TOUCAN_BASE_URL points at a Toucan instance: also set TOUCAN_API_KEY")

    def stop(self) -> None:
        """Stop the portal, then the sandbox and the provider (safe to call twice)."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.provider is not None:
            self.provider.stop()
            self.provider = None

    def __enter__(self) -> DemoStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind(what: str, env: str, port: int) -> ThreadedServer:
    try:
        return ThreadedServer(_starting, HOST, port, name="demo-app", poll_interval=0.1)
    except OSError as exc:
        raise _port_error(what, env, port, exc) from None


def _port_error(what: str, env: str, port: int, exc: OSError) -> StackError:
    return StackError(
        f"{what} cannot listen on {HOST}:{port} ({exc.strerror or exc}); "
        f"free the port or pick another with {env}=<port> (0 = any free port)"
    )


def _starting(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Retry-After", "1")])
    return [b"the demo is starting\n"]


def quiet_request_logs(verbose: bool) -> None:
    """werkzeug logs every request of three servers: too noisy for a demo console."""
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.WARNING)
