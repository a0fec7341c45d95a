"""``flask toucan check --live``: one real round trip to the configured instance.

Mints one token for a probe user through a fresh transport built from the same
settings (so proxy, CA bundle and timeouts are what the app uses), and reports
what an operator needs before going live: reachability and latency, the
``server-url`` answer, clock skew from the upstream ``Date`` header, the token
lifetime, the required attributes, and the exchange in signed mode.

Every line is built from our own words and secret-free error messages: no
token, API key, client secret or URL password is ever printed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from cachelib import SimpleCache

from .cache import TokenCache
from .config import ToucanConfig
from .exceptions import ToucanError, UpstreamError, UpstreamRejected
from .http import Response, Transport, make_transport, redact_url, safe_host
from .mappers import AttributeValue, MapperRegistry, Permissions
from .minting import MintRequest, make_service
from .user import ToucanUser

#: Above this, tokens may be refused as not yet valid / already expired.
MAX_SKEW = 30.0
PROBE_ISSUER = "flask-toucan-check"


@dataclass
class Call:
    what: str
    host: str
    seconds: float
    status: int | None
    date: str | None
    received_at: float


class RecordingTransport(Transport):
    """A :class:`Transport` that remembers each call's latency, status and ``Date``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[Call] = []

    def post(self, url: str, *, what: str, **kwargs: Any) -> Response:
        started = time.monotonic()
        status = date = None
        try:
            resp = super().post(url, what=what, **kwargs)
            status, date = resp.status, resp.headers.get("date")
            return resp
        finally:
            self.calls.append(
                Call(what, safe_host(url), time.monotonic() - started, status, date, time.time())
            )


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def info(self, text: str) -> None:
        self.lines.append(f"  {text}")

    def warn(self, text: str) -> None:
        self.lines.append(f"  warning: {text}")

    def fail(self, reason: str, text: str) -> None:
        self.failures.append(reason)
        self.lines.append(f"  FAIL {reason}: {text}")


def run(
    config: ToucanConfig,
    mappers: MapperRegistry,
    *,
    subject: str,
    claims: Mapping[str, str],
    attributes: Mapping[str, str] | None,
) -> Report:
    """Mint one token for the probe user and check what surrounds it."""
    report = Report()
    user = ToucanUser(PROBE_ISSUER, subject, {"sub": subject, "iss": PROBE_ISSUER, **claims})
    attrs = _probe_attributes(config, mappers, user, attributes, report)
    transport = make_transport(config, RecordingTransport)
    assert isinstance(transport, RecordingTransport)
    try:
        if attrs is not None:
            _mint(config, transport, user, attrs, report)
        _server_url(config, transport, report)
    finally:
        transport.close()
    return report


def _probe_attributes(
    config: ToucanConfig,
    mappers: MapperRegistry,
    user: ToucanUser,
    given: Mapping[str, str] | None,
    report: Report,
) -> dict[str, AttributeValue] | None:
    required = config.required_attributes
    if given:
        missing = [name for name in required if not given.get(name)]
        if missing:
            report.fail("required-attributes", f"missing {', '.join(missing)} (pass --attr NAME=VALUE)")
            return None
        report.info(f"required attributes: {', '.join(required) or '(none)'} - given with --attr")
        return dict(given)
    try:
        attrs = mappers.map_attributes(user, required)
    except ToucanError as exc:
        report.fail(
            "required-attributes",
            f"the mappers gave the probe user nothing usable ({exc.message}); "
            "pass --attr NAME=VALUE or --claim NAME=VALUE",
        )
        return None
    report.info(f"required attributes: {', '.join(required) or '(none)'} - mapped from the probe's claims")
    return attrs


def _mint(
    config: ToucanConfig,
    transport: RecordingTransport,
    user: ToucanUser,
    attrs: dict[str, AttributeValue],
    report: Report,
) -> None:
    perms: Permissions = {"dashboard": {"can_view": True}}
    service = make_service(config, transport, TokenCache(SimpleCache(), config.margin_for))
    reason = "token-api" if config.mode == "api" else ("exchange" if config.exchange_url else "signing")
    try:
        token, lifetime = service.minter.mint(MintRequest(user, attrs, perms))
    except UpstreamRejected as exc:
        code = f", code {exc.upstream_code}" if exc.upstream_code else ""
        report.fail(reason, f"refused (HTTP {exc.upstream_status}{code}): {exc.message}")
        return
    except UpstreamError as exc:
        report.fail(reason, exc.message)
        return
    except ToucanError as exc:
        report.fail(reason, f"{type(exc).__name__}: {exc.message}")
        return
    for call in transport.calls:
        report.info(f"{call.what} at {call.host}: HTTP {call.status} in {call.seconds * 1000:.0f} ms")
    if not transport.calls:
        report.info("token signed locally (no exchange configured): nothing to reach")
    report.info(f"token: minted, {len(token.value)} characters, lifetime {lifetime:.0f} s")
    if lifetime < 60:
        report.warn(f"token lifetime {lifetime:.0f} s is very short: pages will refresh often")
    _clock_skew(transport.calls, report)


def _clock_skew(calls: list[Call], report: Report) -> None:
    dated = [c for c in calls if c.date]
    if not dated:
        if calls:
            report.warn("clock skew unknown: the upstream sent no Date header")
        return
    call = dated[-1]
    try:
        upstream = parsedate_to_datetime(call.date or "")
    except (TypeError, ValueError):
        report.warn("clock skew unknown: the upstream Date header does not parse")
        return
    if upstream.tzinfo is None:
        upstream = upstream.replace(tzinfo=UTC)
    skew = upstream.timestamp() - call.received_at
    # Date has a one-second resolution: anything within a second is no skew.
    shown = f"{round(skew):+d} s against {call.host}"
    if abs(skew) > MAX_SKEW:
        report.warn(f"clock skew {shown}: tokens may be refused as expired or not yet valid")
    else:
        report.info(f"clock skew: {shown} (ok, within {MAX_SKEW:.0f} s)")


def _server_url(config: ToucanConfig, transport: Transport, report: Report) -> None:
    url = config.server_url
    if not url:
        report.info("server-url: not set (signed mode without TOUCAN_BASE_URL)")
        return
    started = time.monotonic()
    try:
        resp = transport.probe(url, what="server-url")
    except UpstreamError as exc:
        report.fail("server-url", exc.message)
        return
    took = (time.monotonic() - started) * 1000
    report.info(f"server-url {redact_url(url)}: HTTP {resp.status} in {took:.0f} ms (reachable)")
