"""``SandboxServer``: the sandbox on a loopback port, in a thread of this process.

What the pytest fixture yields and what the CLI runs. It exposes the knobs a
test needs without HTTP round-trips: ``stats``, ``set_faults``,
``introspect`` and ``issue_token``.
"""

from __future__ import annotations

from typing import Any

from werkzeug.serving import WSGIRequestHandler

from ..serving import ThreadedServer
from .auth_api import introspection, reset_state
from .grants import grant_from_request
from .state import SandboxState, get_state


def _close_mcp(app: Any) -> None:
    """Stop the MCP endpoint's event loop thread, if the ``mcp`` extra put one there."""
    endpoint = app.extensions.get("toucan_sandbox_mcp")
    if endpoint is not None:
        endpoint.close()


class _Handler(WSGIRequestHandler):
    """Leaves ``Date`` to the app (one header, also under the test client)."""

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())


class SandboxServer:
    """``SandboxServer(**options).start()``; ``.url``, ``.api_key``; ``.stop()``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        from .app import create_app

        self.app = create_app(**options)
        self.host = host
        self._port = port
        self._server: ThreadedServer | None = None

    def __repr__(self) -> str:
        return f"SandboxServer(url={self.url if self._server else None!r})"

    @property
    def state(self) -> SandboxState:
        return get_state(self.app)

    # -- life cycle ---------------------------------------------------------
    def bind(self) -> SandboxServer:
        """Open the listening socket (so ``.url`` is known) without serving yet.

        A taken port is an ``OSError`` (never werkzeug's exit of the process).
        """
        if self._server is None:
            self._server = ThreadedServer(
                self.app, self.host, self._port, name="toucan-sandbox", request_handler=_Handler
            )
        return self

    def start(self) -> SandboxServer:
        self.bind()
        assert self._server is not None
        self._server.start()
        return self

    def serve_forever(self) -> None:
        """Run in the calling thread (the CLI); Ctrl-C stops it."""
        self.bind()
        assert self._server is not None
        try:
            self._server.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        _close_mcp(self.app)
        self._server = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests read ------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.port

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.url

    @property
    def api_key(self) -> str:
        return self.state.options.api_key

    @property
    def exchange_client_secret(self) -> str:
        """The embed client's secret (``TOUCAN_EXCHANGE_CLIENT_SECRET`` of the host)."""
        return self.state.options.exchange_client_secret

    @property
    def exchange_client_id(self) -> str:
        return self.state.options.exchange_client_id

    @property
    def exchange_url(self) -> str:
        """The classic token endpoint (``TOUCAN_EXCHANGE_URL`` of the host)."""
        tenant = self.state.options.tenant
        return f"{self.url}/api/auth/realms/{tenant}/protocol/openid-connect/token"

    @property
    def data_file(self) -> str:
        return self.state.data_file

    @property
    def stats(self) -> dict[str, int]:
        """Counters: ``token_requests``, ``tokens_issued``, ``exchanges``, ``jwks_fetches``..."""
        return self.state.stats_snapshot()

    @property
    def faults(self) -> dict[str, Any]:
        return self.state.faults.settings()

    def set_faults(self, **values: Any) -> dict[str, Any]:
        """E.g. ``set_faults(fail_next=2)``: the next two token API calls answer 503;
        ``set_faults(reject={"status": 403, "code": "NO_ACTIVE_SUBSCRIPTION"})``
        refuses every call until ``set_faults(reject=None)``."""
        return self.state.faults.update(**values)

    def reset(self) -> None:
        """Zero the counters and restore the start-up fault settings."""
        reset_state(self.state)

    def introspect(self, token: str) -> dict[str, Any]:
        """What ``token`` grants (same answer as ``POST /embed/introspect``)."""
        return introspection(self.state, token)

    def issue_token(
        self,
        attributes: dict[str, Any] | None = None,
        permissions: dict[str, dict[str, bool]] | None = None,
        *,
        distinct_id: str = "test-user",
        role: str = "explorer",
    ) -> str:
        """Mint an opaque token in-process (validated like the token API; not counted)."""
        state = self.state
        grant = grant_from_request(
            {
                "user": {"distinctId": distinct_id, "role": role, "attributes": attributes or {}},
                "permissions": permissions if permissions is not None else {"dashboard": {"can_view": True}},
            },
            declared=state.options.attributes,
            roles=state.options.roles,
            lifetime=state.options.token_lifetime,
        )
        return state.codec.encode(grant)
