"""The HTTP client for Toucan's token API and the token exchange endpoint.

``requests`` gives the pooled connections (one session per app) and urllib3's
``Retry`` decides what is retryable and how long to back off (exponential with
jitter, ``Retry-After`` honoured). What neither gives is a bound on the whole
call, retries and a slow-drip body included, so this module drives the
attempts itself under one deadline:

* at most ``retries`` extra attempts, only on connection errors, 429, 502,
  503 and 504; any other status is final;
* a ``Retry-After`` that would end past the deadline ends the call at once
  (the caller gets an :class:`UpstreamError` carrying it);
* redirects are never followed (a token API that redirects is misconfigured,
  and following would resend the API key elsewhere);
* the body is read in small pieces, checking the deadline and a size cap.

Errors name the URL's host and the status, never a header or body (they may
echo the API key).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .exceptions import UpstreamError

RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "flask-toucan"


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Transport:
    """One pooled session plus the retry / deadline policy above."""

    def __init__(
        self,
        *,
        connect_timeout: float = 3.0,
        deadline: float = 10.0,
        retries: int = 2,
        max_bytes: int = 64 * 1024,
        backoff_factor: float = 0.2,
        backoff_jitter: float = 0.2,
        pool_size: int = 32,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=0,
            allowed_methods=None,  # POST too: the token API has no side effect to repeat
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_jitter,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy / .netrc surprises for a secret-bearing call
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    def close(self) -> None:
        self.session.close()

    def post(self, url: str, *, what: str, **kwargs: Any) -> Response:
        """POST with retries under one deadline; returns the final non-retryable response."""
        return self._send("POST", url, what, kwargs)

    def get(self, url: str, *, what: str, **kwargs: Any) -> Response:
        """GET (the headless API) under the same deadline, retries and size cap as :meth:`post`."""
        return self._send("GET", url, what, kwargs)

    def _send(self, method: str, url: str, what: str, kwargs: dict[str, Any]) -> Response:
        host = urlsplit(url).netloc
        deadline_at = time.monotonic() + self.deadline
        retry = self.retry
        while True:
            remaining = deadline_at - time.monotonic()
            if remaining <= 0:
                raise UpstreamError(f"{what} at {host} did not answer within the deadline")
            error: Exception | None = None
            resp: Response | None = None
            raw: Any = None
            try:
                resp, raw = self._attempt(method, url, kwargs, deadline_at, what, host)
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = exc
            except requests.RequestException as exc:
                # Not retryable (bad header, bad URL...). Its text may quote a header
                # value, i.e. the API key: name the type only.
                raise UpstreamError(f"{what} at {host} failed ({type(exc).__name__})") from None
            if resp is not None and resp.status not in RETRY_STATUSES:
                if 300 <= resp.status < 400:
                    raise UpstreamError(
                        f"{what} at {host} answered a redirect (HTTP {resp.status}); "
                        "redirects are not followed"
                    )
                return resp
            # Retryable: ask urllib3's Retry whether another attempt is allowed.
            try:
                retry = retry.increment(
                    method=method, url=url, response=raw, error=None if resp else _as_urllib3(error)
                )
            except Exception:
                raise self._final_error(what, host, resp) from None
            delay = retry.get_backoff_time()
            if raw is not None:
                after = retry.get_retry_after(raw)
                if after is not None:
                    delay = after
            if time.monotonic() + delay >= deadline_at:
                raise self._final_error(what, host, resp)
            time.sleep(delay)

    def _attempt(
        self, method: str, url: str, kwargs: dict[str, Any], deadline_at: float, what: str, host: str
    ) -> tuple[Response, Any]:
        remaining = deadline_at - time.monotonic()
        read_timeout = max(0.05, min(remaining, 2.0))
        r = getattr(self.session, method.lower())(
            url,
            timeout=(min(self.connect_timeout, remaining), read_timeout),
            allow_redirects=False,
            stream=True,
            **kwargs,
        )
        try:
            chunks: list[bytes] = []
            size = 0
            while True:
                if time.monotonic() > deadline_at:
                    raise UpstreamError(f"{what} at {host} did not answer within the deadline")
                chunk = r.raw.read1(8192)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise UpstreamError(f"{what} at {host} sent an oversized response")
                chunks.append(chunk)
        except requests.exceptions.RequestException:
            raise
        except UpstreamError:
            raise
        except Exception as exc:  # urllib3 read errors (timeouts, protocol)
            raise requests.ConnectionError(type(exc).__name__) from None
        finally:
            r.close()
        headers = {k.lower(): v for k, v in r.headers.items()}
        return Response(r.status_code, headers, b"".join(chunks)), r.raw

    @staticmethod
    def _final_error(what: str, host: str, resp: Response | None) -> UpstreamError:
        if resp is None:
            return UpstreamError(f"{what} at {host} is unreachable", retry_after=5)
        retry_after = _retry_after_seconds(resp.headers.get("retry-after"))
        return UpstreamError(f"{what} at {host} answered HTTP {resp.status}", retry_after=retry_after or 5)


def _as_urllib3(error: Exception | None) -> Exception | None:
    from urllib3.exceptions import ConnectTimeoutError, ProtocolError

    if error is None:
        return None
    if isinstance(error, requests.ReadTimeout):
        return ProtocolError(type(error).__name__)
    return ConnectTimeoutError(type(error).__name__)


def _retry_after_seconds(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return max(1, math.ceil(Retry().parse_retry_after(value)))
    except Exception:
        return None
