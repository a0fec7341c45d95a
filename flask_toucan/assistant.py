"""``AssistantSession``: a user's MCP session with Toucan's assistant, from synchronous code.

Toucan's "integrate into your own AI chat" path: the host keeps its chat UI and
its LLM; its backend opens an MCP session (streamable HTTP) to
``{server-url}/mcp`` with the user's **embed token as a Bearer token**, so the
attributes and row-level security of the dashboards apply to every question.

The official SDK (PyPI ``mcp``, the ``mcp`` extra) is async; Flask views are
not. Each session runs the SDK on a private event loop thread (anyio's
blocking portal) that it owns from ``open()`` to ``close()``, so nothing
outlives the ``with`` block: no loop, thread or socket leaks per request.

Framework-neutral: the session gets a ``token_provider`` (the extension's
mint, which checks ``ai.can_query`` and caches) and a :class:`ThreadRegistry`
(which conversations belong to the user), never a Flask request. The Flask
facade is :meth:`flask_toucan.Toucan.assistant`.

Errors are the extension's: an HTTP ``{code, message}`` refusal (403
``NO_ACTIVE_SUBSCRIPTION``...) is :class:`UpstreamRejected` with that code, a
5xx / unreachable server / the deadline is :class:`UpstreamError`, a tool that
fails is :class:`UpstreamRejected` with the tool's code. Messages name the
host, never the token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import ssl
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from .exceptions import (
    BadRequest,
    PermissionDenied,
    ToucanError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRejected,
)
from .tokens import EmbedToken

# The MCP SDK (mcp, anyio, httpx2) is imported inside the methods that use it, on
# purpose and not to dodge a cycle: it is the optional `mcp` extra, and importing
# flask_toucan must stay cheap and work without it (tests/core/test_architecture.py
# allows exactly these lazy imports).

TOOL = "ask_toucan_assistant"
SCHEMA = "toucan-mcp-v1"
log = logging.getLogger("flask_toucan")
MAX_QUESTION = 2000
MAX_THREADS_PER_USER = 100
ProgressFn = Callable[[float, float | None, str | None], None]


class ThreadRegistry:
    """Which ``threadId`` values belong to one user, kept server-side in the shared store.

    A thread id from a browser is only ever passed on if Toucan gave it to this
    user before; anything else is refused here, before it reaches Toucan.
    """

    prefix = "mcp-threads:"

    def __init__(self, store: Any, user_key: str, lifetime: int) -> None:
        self.store = store
        self.key = self.prefix + hashlib.sha256(user_key.encode()).hexdigest()
        self.lifetime = lifetime

    def owns(self, thread_id: str) -> bool:
        return thread_id in (self.store.get(self.key) or [])

    def remember(self, thread_id: str) -> None:
        known = [t for t in (self.store.get(self.key) or []) if t != thread_id]
        known.append(thread_id)
        self.store.set(self.key, known[-MAX_THREADS_PER_USER:], timeout=self.lifetime)


class AssistantSession:
    """``with AssistantSession(url, token_provider, ...) as a: a.ask("...")``.

    One session per request (or per task); not for sharing between threads.
    """

    def __init__(
        self,
        url: str,
        token_provider: Callable[[], EmbedToken],
        *,
        threads: ThreadRegistry | None = None,
        deadline: float = 10.0,
        connect_timeout: float = 3.0,
        refresh_margin: float = 30.0,
        proxy: str | None = None,
        ca_bundle: str | None = None,
        trust_env: bool = False,
    ) -> None:
        self.url = url
        self.host = urlsplit(url).netloc
        self._token_provider = token_provider
        self._threads = threads
        self.deadline = deadline
        self.connect_timeout = connect_timeout
        self.refresh_margin = refresh_margin
        # The token API's network settings (TOUCAN_HTTP_PROXY / _CA_BUNDLE / _TRUST_ENV).
        self.proxy = proxy
        self.ca_bundle = ca_bundle
        self.trust_env = trust_env
        self._token: EmbedToken | None = None
        self._stack: ExitStack | None = None
        self._portal: Any = None
        self._client: Any = None
        self._failure: tuple[int, str | None] | None = None
        self._unreachable = False

    def __repr__(self) -> str:
        return f"AssistantSession(url={self.url!r}, open={self._client is not None})"

    # ------------------------------------------------------------ life cycle
    def __enter__(self) -> AssistantSession:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Mint the token (in the caller's thread), start the loop thread, connect."""
        if self._client is not None:
            return
        self._fresh_token()
        from anyio.from_thread import start_blocking_portal

        stack = ExitStack()
        try:
            self._portal = stack.enter_context(start_blocking_portal())
            connection: AbstractContextManager[Any] = self._portal.wrap_async_context_manager(
                self._connection()
            )
            self._client = stack.enter_context(connection)
        except BaseException as exc:
            self._client = None
            stack.close()
            self._portal = None
            raise self._mapped(exc) from None
        self._stack = stack

    def close(self) -> None:
        """Disconnect and stop the loop thread (idempotent; errors while closing are dropped)."""
        stack, self._stack, self._client, self._portal = self._stack, None, None, None
        if stack is not None:
            try:
                stack.close()
            except BaseException:  # noqa: S110 - closing a broken connection: nothing to report
                pass

    @asynccontextmanager
    async def _connection(self) -> Any:
        import anyio
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        async def authorize(request: Any) -> None:
            # Read at send time: the caller's thread may have refreshed the token.
            assert self._token is not None
            request.headers["Authorization"] = f"Bearer {self._token.value}"

        async def record(response: Any) -> None:
            if response.status_code >= 400:
                await response.aread()
                self._failure = (response.status_code, _error_code(response.content))

        timeout = httpx2.Timeout(self.deadline, connect=min(self.connect_timeout, self.deadline))
        # One scope around the whole connection, so the SDK's task groups nest inside it:
        # the deadline bounds the handshake (probe + fallback), then is lifted while held.
        with anyio.CancelScope(deadline=anyio.current_time() + self.deadline) as scope:
            async with httpx2.AsyncClient(
                timeout=timeout,
                transport=_recording_transport(self),
                event_hooks={"request": [authorize], "response": [record]},
                trust_env=False,
                follow_redirects=False,
            ) as http:
                client = Client(
                    streamable_http_client(self.url, http_client=http),
                    read_timeout_seconds=self.deadline,
                    client_info=_client_info(),
                )
                async with client:
                    scope.deadline = math.inf
                    yield client
                    return
        raise TimeoutError("the MCP handshake did not finish within the deadline")

    # -------------------------------------------------------------- the API
    def tools(self) -> list[dict[str, Any]]:
        """The server's tools as ``{"name", "description", "input_schema"}`` (what LLM SDKs take)."""

        async def run(client: Any) -> Any:
            return await client.list_tools()

        listed = self._run(run)
        return [
            {"name": t.name, "description": t.description or "", "input_schema": dict(t.input_schema)}
            for t in listed.tools
        ]

    def call(
        self, name: str, arguments: Mapping[str, Any] | None = None, *, on_progress: ProgressFn | None = None
    ) -> dict[str, Any]:
        """Call a tool: ``{"text", "structured", "content"}``.

        A tool error raises :class:`UpstreamRejected` carrying the tool's ``code``.
        For ``ask_toucan_assistant`` (the call an LLM makes), a ``threadId`` must be
        one this user got before, and the answer's ``threadId`` is remembered.
        """
        args = dict(arguments or {})
        if name == TOOL and args.get("threadId") is not None:
            self._check_thread(args["threadId"])

        async def progress(done: float, total: float | None, message: str | None) -> None:
            if on_progress is not None:
                on_progress(done, total, message)

        async def run(client: Any) -> Any:
            return await client.call_tool(name, args, progress_callback=progress)

        result = self._run(run)
        content = [
            block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content
        ]
        text = "".join(block.get("text", "") for block in content if block.get("type") == "text")
        if result.is_error:
            code = _error_code(text[text.find("{") :].encode()) if "{" in text else None
            raise UpstreamRejected(
                f"the assistant at {self.host} refused the {name!r} call ({code or 'TOOL_ERROR'})",
                upstream_code=code or "TOOL_ERROR",
            )
        answer = {"text": text, "structured": result.structured_content, "content": content}
        if name == TOOL and self._threads is not None:
            thread_id = parse_envelope(answer, self.host)["threadId"]
            self._threads.remember(thread_id)
        return answer

    def _check_thread(self, thread_id: Any) -> None:
        """Refuse a thread id this user was not given (the registry is the host-side record).

        A bare session without a registry leaves the judgement to Toucan.
        """
        if not isinstance(thread_id, str) or not thread_id:
            raise BadRequest("threadId must be a non-empty string")
        if self._threads is not None and not self._threads.owns(thread_id):
            raise PermissionDenied("this conversation does not belong to the current user")

    def ask(
        self, question: str, thread_id: str | None = None, *, on_progress: ProgressFn | None = None
    ) -> dict[str, Any]:
        """Ask ``ask_toucan_assistant``; the ``toucan-mcp-v1`` envelope as a dict.

        ``answer`` (markdown), ``visualizations`` (for ``<tc-result-renderer>``)
        and ``threadId``. A ``thread_id`` must be one this user got before.
        """
        if not isinstance(question, str) or not question.strip() or len(question) > MAX_QUESTION:
            raise BadRequest(f"the question must be a non-empty string of at most {MAX_QUESTION} characters")
        arguments: dict[str, Any] = {"question": question}
        if thread_id is not None:
            arguments["threadId"] = thread_id  # checked by call()
        return parse_envelope(self.call(TOOL, arguments, on_progress=on_progress), self.host)

    def prompt(self, name: str = "tool-usage", arguments: Mapping[str, str] | None = None) -> str:
        """A server prompt's text (``tool-usage``: the system-prompt addendum for the host LLM)."""

        async def run(client: Any) -> Any:
            return await client.get_prompt(name, dict(arguments) if arguments else None)

        result = self._run(run)
        return "\n".join(
            m.content.text for m in result.messages if getattr(m.content, "type", None) == "text"
        )

    # ------------------------------------------------------------ internals
    def _fresh_token(self) -> None:
        token = self._token
        if token is None or token.expires_in <= self.refresh_margin:
            self._token = self._token_provider()

    def _run(self, operation: Callable[[Any], Any]) -> Any:
        """Run ``operation(client)`` on the loop thread under the deadline; map its errors."""
        self.open()
        self._fresh_token()
        self._failure, self._unreachable = None, False
        import anyio

        async def bounded() -> Any:
            with anyio.fail_after(self.deadline):
                return await operation(self._client)

        try:
            return self._portal.call(bounded)
        except BaseException as exc:
            mapped = self._mapped(exc)
            if not isinstance(mapped, UpstreamRejected):
                self.close()  # a timed-out or broken connection is not reused
            raise mapped from None

    def _mapped(self, exc: BaseException) -> ToucanError | BaseException:
        """The extension's exception for whatever the SDK, httpx2 or anyio raised."""
        leaf = _leaf(exc)
        if isinstance(leaf, ToucanError):
            return leaf
        if isinstance(leaf, KeyboardInterrupt | SystemExit):
            return leaf
        if self._failure is not None:
            status, code = self._failure
            if 400 <= status < 500 and status not in (408, 429):
                return UpstreamRejected(
                    f"the assistant at {self.host} refused the session (HTTP {status})",
                    upstream_code=code,
                    status=status,
                )
            return UpstreamError(f"the assistant at {self.host} answered HTTP {status}", retry_after=5)
        if self._unreachable:
            return UpstreamError(f"the assistant at {self.host} is unreachable", retry_after=5)
        if isinstance(leaf, TimeoutError):
            return UpstreamError(
                f"the assistant at {self.host} did not answer within the deadline", retry_after=5
            )
        from mcp.shared.exceptions import MCPError

        if isinstance(leaf, MCPError):
            return UpstreamRejected(
                f"the assistant at {self.host} answered an MCP error ({leaf.code})", upstream_code="MCP_ERROR"
            )
        return UpstreamError(f"the assistant at {self.host} failed ({type(leaf).__name__})", retry_after=5)


def parse_envelope(result: Mapping[str, Any], host: str) -> dict[str, Any]:
    """The ``toucan-mcp-v1`` envelope from a tool result (structured content, else its JSON text).

    Checked so that what ``ask()`` and the ask route hand on can be drawn:
    ``visualizations`` keeps only JSON objects (an item such as ``"just a
    string"``, ``42`` or one holding ``NaN`` is dropped, and counted in the log), and the whole
    envelope must be strict JSON (no ``NaN``: a browser's ``JSON.parse`` would
    choke on it). Anything else is :class:`UpstreamProtocolError`.
    """
    envelope = result.get("structured")
    if not isinstance(envelope, dict) or "answer" not in envelope:
        try:
            envelope = json.loads(result.get("text") or "")
        except (ValueError, RecursionError):
            envelope = None
    if (
        not isinstance(envelope, dict)
        or not isinstance(envelope.get("answer"), str)
        or not isinstance(envelope.get("visualizations", []), list)
        or not isinstance(envelope.get("threadId"), str)
    ):
        raise UpstreamProtocolError(
            f"the assistant at {host} answered something that is not a {SCHEMA} envelope"
        )
    items = envelope.get("visualizations", [])
    kept = [v for v in items if isinstance(v, dict) and _strict_json(v)]
    if len(kept) < len(items):
        log.warning(
            "flask-toucan: the assistant at %s sent %d visualizations that are not strict JSON objects",
            host,
            len(items) - len(kept),
        )
    envelope = {**envelope, "visualizations": kept}
    if not _strict_json(envelope):
        raise UpstreamProtocolError(f"the assistant at {host} sent an envelope that is not strict JSON")
    return envelope


def _strict_json(value: object) -> bool:
    """Whether ``value`` dumps as JSON a browser's ``JSON.parse`` reads (no ``NaN``, ``Infinity``)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups the SDK's task groups raise."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _error_code(body: bytes) -> str | None:
    """Toucan's ``code`` from a ``{code, message}`` body (or ``error``), if it is a safe token."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    code = data.get("code", data.get("error"))
    if isinstance(code, str) and 0 < len(code) <= 64 and code.replace("_", "").replace("-", "").isalnum():
        return code
    return None


def _client_info() -> Any:
    from mcp.types import Implementation

    return Implementation(name="flask-toucan", version="0")


def _recording_transport(session: AssistantSession) -> Any:
    """httpx2's transport, noting connection failures (the SDK logs them and moves on)."""
    import httpx2

    class Recording(httpx2.AsyncHTTPTransport):
        async def handle_async_request(self, request: Any) -> Any:
            try:
                return await super().handle_async_request(request)
            except httpx2.TransportError:
                session._unreachable = True
                raise

    verify: Any = True
    if session.ca_bundle:
        bundle = session.ca_bundle
        verify = (
            ssl.create_default_context(capath=bundle)
            if os.path.isdir(bundle)
            else ssl.create_default_context(cafile=bundle)
        )
    return Recording(verify=verify, proxy=session.proxy, trust_env=session.trust_env)
