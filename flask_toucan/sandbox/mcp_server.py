"""The sandbox speaks MCP: ``POST {base}/api/mcp``, streamable HTTP, as Toucan documents it.

A real MCP server built with the official SDK (``mcp``, the ``mcp`` extra):
the tool ``ask_toucan_assistant`` answering a ``toucan-mcp-v1`` envelope, the
``tool-usage`` prompt, and progress notifications while it works. It judges
callers the way the data API does:

* no ``Authorization: Bearer <embed token>``: 401 ``{code, message}``;
* a token that does not decrypt or has expired: 401;
* a token without ``ai.can_query``: 403 ``{"code": "FORBIDDEN", ...}``;
* an unauthorized page ``Origin``: 403 (server-to-server calls send none);
* then every answer is computed over the rows the token's attributes admit,
  with the same RLS compiler as the dashboards (:func:`rls.where_clause`).

Threads: an answer carries a ``threadId``; passing it back makes the next
question a follow-up (``"and by month?"`` keeps the previous question's
filters). A thread belongs to the user and tenant that opened it: anyone
else's ``threadId`` is a tool error ``THREAD_NOT_FOUND``.

Serving: the sandbox is a threaded WSGI server, the SDK an ASGI app, so the
ASGI app is mounted with ``a2wsgi`` on an event loop thread of its own (which
also runs the SDK's session manager). Stateless mode: every POST stands alone
(no ``Mcp-Session-Id`` to keep), its answer an SSE stream so progress
notifications reach the caller before the result.

Fault knobs for tests (:meth:`McpEndpoint.set_faults`): ``subscription=False``
(403 ``NO_ACTIVE_SUBSCRIPTION``, the answer a live probe gave), ``delay``
(seconds the tool takes), ``tool_error`` (a ``{code, message}`` the tool fails with),
``envelope`` (a dict merged over the answer's envelope, e.g. ``{"visualizations": ["x", 42]}``:
a buggy Toucan for the host's envelope checks).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
from a2wsgi import ASGIMiddleware
from flask import Flask
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent
from werkzeug.http import http_date

from . import assistant
from .auth_api import grant_of
from .codec import TokenRejected
from .data import PRODUCTS, REGIONS, connect, organization_name
from .grants import Grant
from .options import origin_allowed
from .rls import RuleError, where_clause
from .state import SandboxState, get_state

PATH = "/api/mcp"
TOOL = "ask_toucan_assistant"
SCHEMA = "toucan-mcp-v1"
EXTENSION_KEY = "toucan_sandbox_mcp"
MAX_THREADS = 10_000

TOOL_USAGE = """\
You can answer questions about the user's business data with the tool `ask_toucan_assistant`.
- Call it with the user's question in `question`. For a follow-up question, pass the `threadId`
  of the previous answer so the assistant keeps the context.
- The tool returns a JSON envelope (schema `toucan-mcp-v1`): `answer` (markdown), `visualizations`
  (charts for the host to render with <tc-result-renderer>) and `threadId`.
- Relay the `answer` to the user as written; never invent figures. The figures are scoped to the
  user's organisation by the server: do not ask for other tenants' data.
"""

_CANONICAL = {
    "total": "total sales",
    "by_region": "sales by region",
    "by_month": "sales by month",
}


@dataclass
class ThreadState:
    """What a conversation remembers: whose it is, the last question's kind and filters."""

    owner: tuple[str, str]
    kind: str = "unknown"
    n: int = 3
    filters: dict[str, str] = field(default_factory=dict)


class McpEndpoint:
    """The MCP server of one sandbox, its event loop thread and its WSGI mount."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.threads: dict[str, ThreadState] = {}
        self._lock = threading.Lock()
        self._faults: dict[str, Any] = {
            "subscription": True,
            "delay": 0.0,
            "tool_error": None,
            "envelope": None,
        }
        self.server = build_server(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._held: Any = None
        self._wsgi: Callable[..., Iterable[bytes]] | None = None

    # -- faults ---------------------------------------------------------------
    def set_faults(self, **values: Any) -> dict[str, Any]:
        unknown = set(values) - set(self._faults)
        if unknown:
            raise TypeError(f"unknown MCP fault(s): {', '.join(sorted(unknown))}")
        with self._lock:
            self._faults.update(values)
            return dict(self._faults)

    @property
    def faults(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._faults)

    # -- threads ---------------------------------------------------------------
    def open_thread(self, owner: tuple[str, str]) -> tuple[str, ThreadState]:
        thread_id = "thr_" + secrets.token_urlsafe(12)
        thread = ThreadState(owner=owner)
        with self._lock:
            if len(self.threads) >= MAX_THREADS:
                self.threads.pop(next(iter(self.threads)))
            self.threads[thread_id] = thread
        return thread_id, thread

    def thread_of(self, thread_id: str, owner: tuple[str, str]) -> ThreadState:
        with self._lock:
            thread = self.threads.get(thread_id)
        if thread is None or thread.owner != owner:
            # Same answer for "unknown" and "someone else's": ids are not an oracle.
            raise tool_error("THREAD_NOT_FOUND", "no conversation with this threadId for this user")
        return thread

    # -- serving ------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def dated(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            # Like every sandbox answer (frontend.py): a Date header, as a production front end sends.
            if not any(name.lower() == "date" for name, _ in headers):
                headers = [*headers, ("Date", http_date())]
            return start_response(status, headers, *exc)

        return self._serve(environ, dated)

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        refusal = self.gate(environ)
        if refusal is not None:
            status, body, headers = refusal
            payload = json.dumps(body).encode()
            start_response(
                status,
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(payload))),
                    ("Cache-Control", "no-store"),
                    *headers,
                ],
            )
            return [payload]
        return self._mount()(environ, start_response)

    def gate(self, environ: dict[str, Any]) -> tuple[str, dict[str, str], list[tuple[str, str]]] | None:
        """The data API's checks, in its order, with Toucan's ``{code, message}`` errors."""
        self.state.stats.incr("mcp_requests")
        refusal = self._refusal(environ)
        if refusal is not None:
            self.state.stats.incr("mcp_denied")
        return refusal

    def _refusal(self, environ: dict[str, Any]) -> tuple[str, dict[str, str], list[tuple[str, str]]] | None:
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and not origin_allowed(origin, self.state.options.origins):
            return "403 Forbidden", _err("ORIGIN_NOT_ALLOWED", "this page origin is not authorized"), []
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        challenge = [("WWW-Authenticate", 'Bearer realm="toucan-sandbox"')]
        if scheme.lower() != "bearer" or not token.strip():
            return (
                "401 Unauthorized",
                _err("MISSING_TOKEN", "send the embed token as a Bearer token"),
                challenge,
            )
        try:
            grant = grant_of(self.state, token.strip())
        except TokenRejected as exc:
            return "401 Unauthorized", _err(exc.code.upper(), exc.message), challenge
        if not self.faults["subscription"]:
            return (
                "403 Forbidden",
                _err("NO_ACTIVE_SUBSCRIPTION", "this workspace has no active subscription"),
                [],
            )
        if not grant.allows("ai", "can_query"):
            return "403 Forbidden", _err("FORBIDDEN", "the token lacks the ai.can_query permission"), []
        return None

    def _mount(self) -> Callable[..., Iterable[bytes]]:
        with self._lock:
            if self._wsgi is None:
                self._start_loop()
                app = self.server.streamable_http_app(
                    streamable_http_path=PATH,
                    stateless_http=True,
                    # The gate above checks Origin against the sandbox's own list; the
                    # SDK's loopback-only Host check would refuse a sandbox bound elsewhere.
                    transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
                )
                assert self._loop is not None
                self._held = asyncio.run_coroutine_threadsafe(self._run_manager(), self._loop)
                # The SDK's Starlette app is an ASGI app; a2wsgi and starlette spell the
                # ASGI callable's type differently, so it crosses as Any (no ignore to go stale).
                asgi_app: Any = app
                self._wsgi = ASGIMiddleware(asgi_app, loop=self._loop)
            return self._wsgi

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="toucan-sandbox-mcp", daemon=True)
        self._loop = loop
        self._thread.start()

    async def _run_manager(self) -> None:
        """The SDK's session manager needs a running task group: hold it open until close()."""
        self._stop = asyncio.Event()
        async with self.server.session_manager.run():
            await self._stop.wait()

    def close(self) -> None:
        """Stop the loop thread (idempotent); the sandbox calls it from ``stop()``."""
        with self._lock:
            loop, thread, held = self._loop, self._thread, self._held
            self._loop = self._thread = self._held = self._wsgi = None
        if loop is None or thread is None:
            return
        if held is not None:
            stop = self._stop
            if stop is not None:
                loop.call_soon_threadsafe(stop.set)
            try:
                held.result(timeout=5)
            except Exception:  # noqa: S110 - shutting down: nothing left to report to
                pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def _err(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def tool_error(code: str, message: str) -> ToolError:
    """A tool failure the client can map: the text is Toucan's ``{code, message}`` JSON."""
    return ToolError(json.dumps(_err(code, message)))


# ------------------------------------------------------------------ the answers
def grant_from_headers(endpoint: McpEndpoint, headers: Any) -> Grant:
    """Decode the caller's token again inside the tool (the gate already admitted it)."""
    raw = (headers or {}).get("authorization", "")
    _, _, token = raw.partition(" ")
    try:
        return grant_of(endpoint.state, token.strip())
    except TokenRejected as exc:
        raise tool_error(exc.code.upper(), exc.message) from None


def follow_up(thread: ThreadState, question: str) -> None:
    """Fold a question into the thread: a new kind replaces the old, filters accumulate."""
    kind, n = assistant.classify(question)
    if kind != "unknown":
        thread.kind, thread.n = kind, n
    words = set(re.findall(r"[a-z]+", question.lower()))
    for region in REGIONS:
        if region in words:
            thread.filters["region"] = region
    for product in PRODUCTS:
        if product in words or product.rstrip("s") in words:
            thread.filters["product"] = product


def compute(endpoint: McpEndpoint, grant: Grant, thread: ThreadState) -> dict[str, Any]:
    """The sandbox assistant's answer over the caller's RLS-scoped rows plus the thread's filters."""
    try:
        where, params = where_clause(endpoint.state.options.rules, "sales", grant.attributes)
    except RuleError as exc:
        raise tool_error(exc.code.upper(), str(exc)) from None
    for column, value in sorted(thread.filters.items()):
        where, params = f'({where}) AND "{column}" = ?', [*params, value]
    question = _CANONICAL.get(
        thread.kind, f"top {thread.n} products" if thread.kind == "top_products" else ""
    )
    org = grant.attributes.get("organization_id")
    with connect(endpoint.state.data_file) as conn:
        name = organization_name(conn, org) if isinstance(org, str) else "your organisation"
        return assistant.answer(conn, question, where, params, name)


def visualizations(result: dict[str, Any], thread: ThreadState) -> list[dict[str, Any]]:
    """The envelope's charts: a bar chart of items, or a KPI of the total (format: docs/wire.md)."""
    data = result.get("data", {})
    suffix = "".join(f" ({v})" for _, v in sorted(thread.filters.items()))
    if "items" in data:
        label = {"top_products": "Product", "by_region": "Region", "by_month": "Month"}[result["kind"]]
        return [
            {
                "type": "bar",
                "title": result["answer"].split(":")[0] + suffix,
                "columns": [label, "Sales"],
                "rows": [[item["key"], item["amount"]] for item in data["items"]],
            }
        ]
    if "amount" in data:
        return [
            {
                "type": "kpi",
                "title": "Total sales" + suffix,
                "columns": ["Sales", "Orders", "Units"],
                "rows": [[data["amount"], data["orders"], data["units"]]],
            }
        ]
    return []


async def answer(endpoint: McpEndpoint, ctx: Context, question: str, thread_id: str | None) -> dict[str, Any]:
    """The tool's work, with progress notifications: the ``toucan-mcp-v1`` envelope."""
    await ctx.report_progress(0, 3, "Reading your question")
    if not question.strip() or len(question) > assistant.MAX_QUESTION:
        raise tool_error("INVALID_REQUEST", f"question must be 1..{assistant.MAX_QUESTION} characters")
    grant = grant_from_headers(endpoint, ctx.headers)
    faults = endpoint.faults
    if faults["tool_error"]:
        code, message = faults["tool_error"]
        raise tool_error(code, message)
    owner = (grant.distinct_id, str(grant.attributes.get("organization_id")))
    if thread_id:
        thread = endpoint.thread_of(thread_id, owner)
    else:
        thread_id, thread = endpoint.open_thread(owner)
    follow_up(thread, question)
    await ctx.report_progress(1, 3, "Querying your data")
    if faults["delay"]:
        await anyio.sleep(float(faults["delay"]))
    result = await anyio.to_thread.run_sync(compute, endpoint, grant, thread)
    await ctx.report_progress(3, 3, "Done")
    envelope = {
        "schema": SCHEMA,
        "answer": result["answer"],
        "visualizations": visualizations(result, thread),
        "threadId": thread_id,
    }
    return {**envelope, **(faults["envelope"] or {})}


def build_server(endpoint: McpEndpoint) -> MCPServer:
    server: MCPServer = MCPServer("toucan-sandbox", instructions=TOOL_USAGE)

    @server.tool(
        name=TOOL,
        description=(
            "Ask Toucan's AI assistant a question about the user's business data. Returns a JSON "
            "envelope (schema toucan-mcp-v1) with a markdown answer, visualizations and a threadId "
            "to pass back for follow-up questions."
        ),
    )
    async def ask_toucan_assistant(
        question: str, ctx: Context, threadId: str | None = None
    ) -> CallToolResult:
        envelope = await answer(endpoint, ctx, question, threadId)
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(envelope))], structured_content=envelope
        )

    @server.prompt(
        name="tool-usage", description="What the host LLM needs to know to relay Toucan's answers."
    )
    def tool_usage() -> str:
        return TOOL_USAGE

    return server


# ------------------------------------------------------------------ mounting
def install(app: Flask) -> McpEndpoint:
    """Serve ``/api/mcp`` on the sandbox app (wraps ``app.wsgi_app``)."""
    endpoint = McpEndpoint(get_state(app))
    app.extensions[EXTENSION_KEY] = endpoint
    inner = app.wsgi_app

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").rstrip("/") == PATH:
            return endpoint.wsgi(environ, start_response)
        return inner(environ, start_response)

    app.wsgi_app = dispatch  # type: ignore[method-assign]
    return endpoint


def endpoint_of(app: Flask) -> McpEndpoint:
    """The MCP endpoint of a sandbox app (``endpoint_of(sandbox.app).set_faults(...)``)."""
    endpoint: McpEndpoint = app.extensions[EXTENSION_KEY]
    return endpoint


def close(app: Flask) -> None:
    endpoint = app.extensions.get(EXTENSION_KEY)
    if isinstance(endpoint, McpEndpoint):
        endpoint.close()
