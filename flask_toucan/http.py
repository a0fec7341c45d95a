"""The HTTP client for Toucan's token API and the token exchange endpoint.

``requests`` gives the pooled connections (one session per app), proxies and
TLS verification; urllib3 underneath decodes ``gzip``, ``deflate`` (and ``br``
when the ``brotli`` package is importable) incrementally. This module adds
what neither bounds by itself, in one plain loop:

* three separate limits, each a setting: the connect timeout, the idle-read
  timeout (the longest silence between two bytes) and the deadline of the
  whole call, retries and a slow-drip body included;
* at most ``retries`` extra attempts, only on connection errors, 429, 502,
  503 and 504, after a jittered exponential backoff or the server's
  ``Retry-After`` (seconds or an HTTP date); a wait that would end past the
  deadline ends the call at once, keeping ``retry_after`` for the caller;
  any other status (a permanent 4xx included) is returned after one call;
* redirects are never followed (a token API that redirects is misconfigured,
  and following would resend the API key elsewhere);
* the size cap applies to the *decoded* body, read in small pieces: a gzip
  bomb stops at the cap with bounded memory (urllib3 ≥ 2.6 decompresses at
  most what was asked for).

Errors name the host and the status, never a header, a body or a proxy's
credentials (headers may echo the API key back).
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import DecodeError, HTTPError, InvalidHeader
from urllib3.util.retry import Retry

from . import hints
from .exceptions import UpstreamError

if TYPE_CHECKING:
    from .config import ToucanConfig

log = logging.getLogger("flask_toucan")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "flask-toucan"
CHUNK = 8192
#: Query parameter names masked by :func:`redact_url` (compiled by ``re``'s cache on first use).
_SECRET_PARAM = r"(?i)pass|secret|token|key|auth|credential"  # noqa: S105 - a pattern of names
#: ``retry_after`` given to callers when the upstream named none.
DEFAULT_RETRY_AFTER = 5


class Response(NamedTuple):
    """What one upstream call answered (status, headers, the body read within the cap)."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Transient(Exception):
    """One attempt failed in a way another attempt may fix (network, timeout)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def safe_host(url: str) -> str:
    """``host[:port]`` of a URL, without any ``user:password@``."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def redact_url(url: str) -> str:
    """``url`` with any password (userinfo or a secret-looking query value) replaced by ``***``.

    For output that names a URL (``flask toucan check``): a Redis or proxy
    URL often carries its password.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        netloc = f"{user}:***@{netloc.rsplit('@', 1)[1]}"
    elif parts.username is not None and parts.scheme.startswith(("redis", "rediss", "unix")):
        netloc = f"***@{netloc.rsplit('@', 1)[1]}"  # redis://password@host: a bare user is the password
    query = "&".join(
        f"{k}=***" if re.search(_SECRET_PARAM, k) else (f"{k}={v}" if sep else k)
        for k, sep, v in (item.partition("=") for item in parts.query.split("&") if item)
    )
    head = f"{parts.scheme}://{netloc}" if "://" in url else urlunsplit((parts.scheme, netloc, "", "", ""))
    return (
        head + parts.path + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    )


class Transport:
    """One pooled session plus the retry / deadline policy above."""

    def __init__(
        self,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        deadline: float = 10.0,
        retries: int = 2,
        max_bytes: int = 64 * 1024,
        backoff_factor: float = 0.2,
        backoff_jitter: float = 0.2,
        pool_size: int = 32,
        proxy: str | None = None,
        ca_bundle: str | None = None,
        trust_env: bool = False,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.retries = retries
        self.max_bytes = max_bytes
        self.backoff_factor = backoff_factor
        self.backoff_jitter = backoff_jitter
        self.proxy = proxy
        # An explicit bundle wins over REQUESTS_CA_BUNDLE even with trust_env:
        # it is passed with every call, not only set on the session.
        self.verify: str | bool = ca_bundle or True
        self.session = requests.Session()
        # Environment proxies / .netrc / CA variables only when asked for: the
        # call carries a secret, and a surprise proxy would see where it goes.
        self.session.trust_env = trust_env
        if proxy:
            self.session.proxies = {"http": proxy, "https": proxy}
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    def __repr__(self) -> str:
        via = f", proxy={safe_host(self.proxy)!r}" if self.proxy else ""
        return f"Transport(deadline={self.deadline}{via})"

    def close(self) -> None:
        self.session.close()

    def post(
        self, url: str, *, what: str, fresh: Callable[[], dict[str, Any]] | None = None, **kwargs: Any
    ) -> Response:
        """POST under one deadline with the retry policy; return the final response.

        ``kwargs`` go to :meth:`requests.Session.post` (``json``, ``data``,
        ``headers``, ``auth``). ``fresh``, if given, is called before every
        attempt and its keyword arguments win over ``kwargs``: a body that must
        differ per attempt (the exchange's assertion, whose ``jti`` the server
        spends on first sight even when its answer is lost) is built anew for
        each retry. A retryable status that is still there after the last
        attempt raises :class:`UpstreamError`; any other status is returned for
        the caller to judge (see :func:`flask_toucan.wire.parse_response`).
        """
        return self._send("POST", url, what, kwargs, fresh)

    def get(self, url: str, *, what: str, **kwargs: Any) -> Response:
        """GET (the headless API) under the same deadline, retries, decoding and size cap as :meth:`post`."""
        return self._send("GET", url, what, kwargs)

    def _send(
        self,
        method: str,
        url: str,
        what: str,
        kwargs: dict[str, Any],
        fresh: Callable[[], dict[str, Any]] | None = None,
    ) -> Response:
        host = safe_host(url)
        deadline_at = time.monotonic() + self.deadline
        attempt = 0
        while True:
            resp: Response | None = None
            reason = ""
            sent = kwargs if fresh is None else {**kwargs, **fresh()}
            try:
                resp = self._attempt(method, url, sent, deadline_at, what, host)
            except _Transient as exc:
                reason = exc.reason
            if resp is not None and resp.status not in RETRY_STATUSES:
                if 300 <= resp.status < 400:
                    raise UpstreamError(
                        f"{what} at {host} answered a redirect (HTTP {resp.status}); "
                        "redirects are not followed"
                    )
                return resp
            if attempt >= self.retries:
                raise _final_error(what, host, resp, reason)
            delay = self._delay(attempt, resp)
            if time.monotonic() + delay >= deadline_at:
                raise _final_error(what, host, resp, reason)
            log.info(
                "%s at %s: retrying in %.2f s (%s)",
                what,
                host,
                delay,
                reason or f"HTTP {resp and resp.status}",
            )
            time.sleep(delay)
            attempt += 1

    def probe(self, url: str, *, what: str) -> Response:
        """One GET, no retry, headers only (the body is not read): is ``url`` answering at all?

        For ``flask toucan check --live``: any HTTP status means reachable.
        """
        host = safe_host(url)
        try:
            r = self.session.get(
                url,
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,
                stream=True,
                verify=self.verify,
            )
        except requests.exceptions.SSLError:
            raise UpstreamError(f"{what} at {host}: TLS verification failed") from None
        except requests.RequestException as exc:
            raise UpstreamError(
                f"{what} at {host} is unreachable ({type(exc).__name__}): {hints.unreachable(what)}"
            ) from None
        r.close()
        return Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, b"")

    def _delay(self, attempt: int, resp: Response | None) -> float:
        """The server's ``Retry-After`` if it gave one, else jittered exponential backoff."""
        if resp is not None:
            after = parse_retry_after(resp.headers.get("retry-after"))
            if after is not None:
                return float(after)
        return float(self.backoff_factor * (2**attempt) + random.uniform(0, self.backoff_jitter))  # noqa: S311

    def _attempt(
        self, method: str, url: str, kwargs: dict[str, Any], deadline_at: float, what: str, host: str
    ) -> Response:
        remaining = deadline_at - time.monotonic()
        if remaining <= 0:
            raise _Transient("deadline reached")
        try:
            r = getattr(self.session, method.lower())(  # session.post / session.get
                url,
                timeout=(min(self.connect_timeout, remaining), min(self.read_timeout, remaining)),
                allow_redirects=False,
                stream=True,
                verify=self.verify,
                **kwargs,
            )
        except requests.exceptions.SSLError:
            # Permanent until someone fixes the CA: no retry, and say what to look at.
            raise UpstreamError(
                f"{what} at {host}: TLS verification failed (is TOUCAN_HTTP_CA_BUNDLE set "
                "to the CA that signed its certificate?)"
            ) from None
        except requests.exceptions.ProxyError:
            raise _Transient("proxy error") from None
        except requests.Timeout:
            raise _Transient("timed out") from None
        except requests.ConnectionError:
            raise _Transient("connection failed") from None
        except requests.RequestException as exc:
            # Not retryable (bad header, bad URL...). Its text may quote a header
            # value, i.e. the API key: name the type only.
            raise UpstreamError(f"{what} at {host} failed ({type(exc).__name__})") from None
        try:
            body = self._read_body(r, deadline_at, what, host)
        except BaseException:
            r.close()  # a half-read connection cannot be reused
            raise
        r.raw.release_conn()  # read to the end: the connection goes back to the pool
        headers = {k.lower(): v for k, v in r.headers.items()}
        return Response(r.status_code, headers, body)

    def _read_body(self, r: requests.Response, deadline_at: float, what: str, host: str) -> bytes:
        """Read and decode the body in small pieces, under the deadline and the size cap.

        ``read1`` returns after one read from the socket, so a body dripped
        one byte at a time still meets the deadline check; the idle-read
        timeout bounds each read, and is shortened to what is left of the deadline.
        """
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                remaining = deadline_at - time.monotonic()
                if remaining <= 0:
                    raise _Transient("deadline reached while reading the body")
                _set_read_timeout(r, min(self.read_timeout, remaining))
                chunk = r.raw.read1(CHUNK, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise UpstreamError(
                        f"{what} at {host} sent a response above {self.max_bytes} bytes (decoded)"
                    )
                chunks.append(chunk)
        except DecodeError:
            raise UpstreamError(f"{what} at {host} sent a body that does not decode") from None
        except HTTPError as exc:  # urllib3: read timeout, protocol error, connection reset
            if time.monotonic() >= deadline_at:
                raise _Transient("deadline reached while reading the body") from None
            name = "timed out" if "Timeout" in type(exc).__name__ else "connection broken"
            raise _Transient(f"{name} while reading the body") from None
        except OSError:
            raise _Transient("connection broken while reading the body") from None
        return b"".join(chunks)


def _set_read_timeout(r: requests.Response, seconds: float) -> None:
    """Bound the next socket read (urllib3 fixed it when the request was sent)."""
    conn = getattr(r.raw, "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def _final_error(what: str, host: str, resp: Response | None, reason: str) -> UpstreamError:
    if resp is None:
        slow = "deadline" in reason or "timed out" in reason
        problem = "did not answer in time" if slow else "is unreachable"
        return UpstreamError(
            f"{what} at {host} {problem} ({reason}): {hints.unreachable(what)}",
            retry_after=DEFAULT_RETRY_AFTER,
        )
    retry_after = parse_retry_after(resp.headers.get("retry-after"))
    return UpstreamError(
        f"{what} at {host} answered HTTP {resp.status}", retry_after=retry_after or DEFAULT_RETRY_AFTER
    )


def parse_retry_after(value: str | None) -> int | None:
    """Whole seconds from a ``Retry-After`` header (delay-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    try:
        seconds = Retry().parse_retry_after(value)
    except (InvalidHeader, ValueError, OverflowError):
        return None
    return max(0, math.ceil(seconds))


def make_transport(config: ToucanConfig, cls: type[Transport] = Transport) -> Transport:
    """The :class:`Transport` (or subclass ``cls``) a :class:`~flask_toucan.config.ToucanConfig` describes."""
    return cls(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        deadline=config.deadline,
        retries=config.retries,
        max_bytes=config.max_response_bytes,
        proxy=config.http_proxy,
        ca_bundle=config.ca_bundle,
        trust_env=config.trust_env,
    )
