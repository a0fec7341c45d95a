"""The headless REST API: ``GET {server-url}/v1/dashboards/{id}`` with the user's token.

For hosts that render data themselves. Toucan documents the endpoint (embed
token as Bearer, "may evolve"); the sandbox serves it with the same RLS as the
components. Calls go through the extension's :class:`~flask_toucan.http.Transport`
(one deadline, retries on 429/502/503/504 and connection errors, size cap, no
redirects), with a token minted for the current user by the same mappers.

Framework-neutral: :class:`HeadlessClient` takes a ``token_provider(kind)``;
the Flask facade is ``toucan.api`` (see :meth:`flask_toucan.Toucan.api`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from .exceptions import BadRequest, UpstreamError, UpstreamRejected
from .http import Transport
from .tokens import EmbedToken

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class HeadlessClient:
    """``client.dashboard("sales-overview")`` -> the API's JSON (a dict)."""

    def __init__(
        self, transport: Transport, server_url: str, token_provider: Callable[[str], EmbedToken]
    ) -> None:
        self.transport = transport
        self.server_url = server_url.rstrip("/")
        self.host = urlsplit(server_url).netloc
        self._token_provider = token_provider

    def __repr__(self) -> str:
        return f"HeadlessClient(server_url={self.server_url!r})"

    def dashboard(self, dashboard_id: str) -> dict[str, Any]:
        """``GET {server-url}/v1/dashboards/{id}`` (needs ``dashboard.can_view``)."""
        return self._get("dashboards", dashboard_id, "dashboard")

    def chart(self, chart_id: str) -> dict[str, Any]:
        """``GET {server-url}/v1/charts/{id}`` (``chart.can_view`` or ``dashboard.can_view``)."""
        return self._get("charts", chart_id, "chart")

    def _get(self, collection: str, item_id: str, kind: str) -> dict[str, Any]:
        if not isinstance(item_id, str) or not _ID.match(item_id):
            raise BadRequest(f"a {kind} id is 1-128 letters, digits, '-', '_' or '.'")
        token = self._token_provider(kind)  # PermissionDenied before any request
        url = f"{self.server_url}/v1/{collection}/{quote(item_id, safe='')}"
        resp = self.transport.get(
            url,
            what=f"Toucan {kind} API",
            headers={
                "Authorization": f"Bearer {token.value}",
                "Accept": "application/json",
            },
        )
        if resp.status == 200:
            try:
                data = json.loads(resp.body)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise UpstreamError(
                    f"the Toucan {kind} API at {self.host} sent a body that is not a JSON object"
                )
            return data
        if 400 <= resp.status < 500 and resp.status not in (408, 429):
            raise UpstreamRejected(
                f"the Toucan {kind} API at {self.host} refused {item_id!r} (HTTP {resp.status})",
                upstream_code=_code(resp.body),
                status=resp.status,
            )
        raise UpstreamError(
            f"the Toucan {kind} API at {self.host} answered HTTP {resp.status}", retry_after=5
        )


def _code(body: bytes) -> str | None:
    """Toucan's ``code`` (or the sandbox's ``error``) from an error body, if it is a plain token."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    code = data.get("code", data.get("error")) if isinstance(data, dict) else None
    if isinstance(code, str) and re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", code):
        return code
    return None
