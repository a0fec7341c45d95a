"""Request checks of the refresh endpoint that must never crash on hostile headers.

Every header is attacker-controlled text: ``Origin: http://[`` makes
``urlsplit`` raise, ``Content-Length: -1`` or ``1e9`` is not a length, a CSRF
header may be megabytes of binary. Each check here either passes or raises a
:class:`ToucanError` (403 :class:`CSRFError` for cross-site signals, 400
:class:`BadRequest` for a malformed body description) that the blueprint turns
into JSON; nothing here lets a ``ValueError`` escape as a 500.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from werkzeug.datastructures import Headers
from werkzeug.http import parse_options_header

from .exceptions import BadRequest, CSRFError

#: Longer than any real Origin or Referer we compare; longer values are refused unparsed.
MAX_URL_HEADER = 4096
#: What ``fetch()`` from the page sends; a navigation or a no-cors request is not ours.
FETCH_MODES = ("cors", "same-origin")
FETCH_SITES = ("same-origin", "none")
_DIGITS = r"^[0-9]{1,19}$"  # compiled by re's cache on first use


def host_of(url: str) -> str | None:
    """The ``host[:port]`` of an absolute http(s) URL, lower-cased; ``None`` if it is not one.

    Never raises: control characters, non-ASCII, bad brackets (``http://[``,
    ``http://a]b``) and bad ports all give ``None``.
    """
    if not url or len(url) > MAX_URL_HEADER or not url.isascii() or not url.isprintable():
        return None
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for "http://h:99999" or "http://h:x"
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return parts.netloc.lower()


def check_same_origin(headers: Headers, host: str) -> None:
    """Refuse a cross-site or cross-origin request (403), whatever the headers hold.

    ``Origin`` is compared by host only, not scheme: behind a TLS-terminating
    proxy without ProxyFix the app sees http while the browser says https. With
    no ``Origin`` a ``Referer`` (if any) must name this host. ``Origin: null``
    passes only with ``Sec-Fetch-Site: same-origin`` (what a page under
    ``Referrer-Policy: no-referrer`` sends if a script overrides the kit's
    fetch); a sandboxed or cross-site ``null`` is refused. The CSRF token is
    checked after this in every case.
    """
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in FETCH_SITES:
        raise CSRFError("cross-site token requests are refused")
    mode = headers.get("Sec-Fetch-Mode")
    if mode is not None and mode not in FETCH_MODES:
        raise CSRFError("token requests must come from fetch() on the page")
    dest = headers.get("Sec-Fetch-Dest")
    if dest is not None and dest != "empty":
        raise CSRFError("token requests must come from fetch() on the page")
    expected = host.lower()
    origin = headers.get("Origin")
    if origin == "null" and site == "same-origin":
        # A same-origin POST from a page whose Referrer-Policy is no-referrer says
        # "Origin: null"; the browser's own Sec-Fetch-Site vouches for it.
        return
    if origin is not None:
        if host_of(origin) != expected:
            raise CSRFError("cross-origin token requests are refused")
        return
    referer = headers.get("Referer")
    if referer is not None and host_of(referer) != expected:
        raise CSRFError("cross-origin token requests are refused")


def check_body_headers(headers: Headers, max_body: int) -> None:
    """``Content-Length`` must be a plain number within ``max_body`` (400 otherwise)."""
    raw = headers.get("Content-Length")
    if raw is None:
        return
    if not re.match(_DIGITS, raw.strip()):
        raise BadRequest("Content-Length is not a number of bytes")
    if int(raw) > max_body:
        raise BadRequest(f"the body is larger than {max_body} bytes")


def check_json_content_type(headers: Headers) -> None:
    """A non-empty body must say ``application/json`` (UTF-8, if a charset is named)."""
    raw = headers.get("Content-Type", "")
    if raw == "application/json":  # what fetch() sends: nothing to parse
        return
    mimetype, options = parse_options_header(raw)
    if mimetype.lower() != "application/json":
        raise BadRequest("the body must be sent as Content-Type: application/json")
    charset = options.get("charset")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise BadRequest("the JSON body must be UTF-8")


__all__ = ["check_body_headers", "check_json_content_type", "check_same_origin", "host_of"]
