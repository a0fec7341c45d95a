"""Jinja component kit: the Python side of ``templates/toucan/components.html``.

The macros in ``toucan/components.html`` are one-liners that call the
:class:`ComponentKit` registered as the Jinja global ``_toucan_kit``; all the
logic (option allow-list, validation, escaping, token, placeholder) lives here
so it can be tested without a template and so a host app that overrides the
macro file keeps the same checks.

Rules the kit keeps:

* no component is ever emitted without a token: no user, a refused permission,
  a failed attribute mapping or an upstream failure renders the placeholder
  template (``TOUCAN_PLACEHOLDER_TEMPLATE``) with a ``reason`` instead;
* option *names* are checked against an allow-list (a typo or an unknown name
  is a :class:`ComponentOptionError` at render time, never silently emitted);
  option *values* are validated where their syntax is known (``height``,
  ``server_url``, ``id``, ``class``) and always converted to plain text and
  escaped: a :class:`~markupsafe.Markup` value gets no pass (its ``__html__``
  is never trusted; an option is an attribute value, never markup);
* page-level work once per request (:mod:`flask_toucan.page`): the user, the
  tokens of every kind the page needs (one store round trip, concurrent
  mints on a cold page), the CSRF token, refresh URL and session tag; each
  component then only checks its options and formats its tags.
"""

from __future__ import annotations

import logging
import math
import re
from collections import ChainMap
from collections.abc import KeysView, Mapping
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, render_template, url_for
from jinja2 import TemplateNotFound, TemplateRuntimeError
from markupsafe import Markup, escape

from . import page
from .exceptions import (
    AttributeMappingError,
    AuthenticationRequired,
    PermissionDenied,
    StoreUnavailable,
    ToucanError,
    UpstreamError,
    UpstreamRejected,
)
from .mappers import KINDS
from .state import default_nonce_loader, get_state, nonce_in

log = logging.getLogger("flask_toucan")

#: The macro file whose import :func:`tune_import` makes cheap.
KIT_TEMPLATE = "toucan/components.html"
_TUNED_KEY = "toucan.kit_import_tuned"
#: Options every component macro accepts (``class_`` is an alias of ``class``).
COMMON_OPTIONS = frozenset({"theme", "height", "server_url", "id", "class", "class_", "aria_label"})
#: Extra options of ``tc_dashboard``.
DASHBOARD_OPTIONS = frozenset({"chart_id", "refresh_interval"})
_DASHBOARD_ALLOWED = COMMON_OPTIONS | DASHBOARD_OPTIONS

#: ``height`` as text: a number and one CSS length unit, nothing else (no ``calc()``,
#: no ``;``), so input can never smuggle CSS into the ``style`` attribute.
HEIGHT = r"^(?:0|[1-9]\d{0,4})(?:\.\d{1,2})?(?:px|em|rem|vh|vw|%)$"
MAX_HEIGHT_PX = 20_000

#: Placeholder reasons, one per way a component can be withheld.
#: ``misconfigured``: Toucan refused for good (:class:`UpstreamRejected`, e.g. no
#: active subscription): reloading will not help, unlike ``unavailable``.
REASONS = ("logged_out", "not_permitted", "no_attributes", "misconfigured", "unavailable")

#: One CSS class name (CSS 2.1 identifier, ASCII only): no quote, no ``<``, no space.
CLASS_NAME = r"^-?[_a-zA-Z]+[_a-zA-Z0-9-]*$"
MAX_CLASS_TOKENS = 32
MAX_CLASS_TOKEN_LENGTH = 64
#: An HTML id the host can also use in CSS and ``querySelector`` without escaping.
HTML_ID = r"^[A-Za-z_][A-Za-z0-9_:.-]{0,127}$"
#: Upstream codes as Toucan writes them (``UPPER_SNAKE``); anything else is logged as ``?``.
_LOGGABLE_CODE = r"^[A-Za-z0-9_.-]{1,64}$"


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """One of the patterns above, compiled on first use: nothing is compiled at import (bench 7b)."""
    return re.compile(pattern)


class ComponentOptionError(TemplateRuntimeError):
    """A component macro got an option it does not know or a value it cannot use.

    A template programming error (like Jinja's own ``UndefinedError``), so it
    surfaces as a template traceback in development instead of a placeholder.
    The message names the macro and the option, never the value.
    """


def _height(value: Any) -> str:
    if isinstance(value, bool):
        raise ComponentOptionError("height must be a number of pixels or a CSS length such as '480px'")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not 0 < value <= MAX_HEIGHT_PX:
            raise ComponentOptionError(f"height must be between 0 and {MAX_HEIGHT_PX} pixels")
        return f"{value:g}px"
    if isinstance(value, str) and _compiled(HEIGHT).match(str(value).strip()):
        return str(value).strip()
    raise ComponentOptionError(
        "height must be a number of pixels or a CSS length like '480px', '30rem', '60vh' or '100%'"
    )


def _server_url(value: Any) -> str:
    text = str(value) if isinstance(value, str) else None
    try:
        parts = urlsplit(text) if text is not None else None
    except ValueError:  # e.g. "http://[": an unclosed IPv6 bracket
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ComponentOptionError("server_url must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise ComponentOptionError("server_url must not carry credentials")
    assert text is not None
    return text.rstrip("/")


def _text(name: str, value: Any) -> str:
    """Plain text of a string or number option (``str()`` strips a ``Markup`` type)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ComponentOptionError(f"{name} must be a string")
    return str(value)


def _html_id(value: Any) -> str:
    text = _text("id", value)
    if not _compiled(HTML_ID).match(text):
        raise ComponentOptionError(
            "id must be an HTML id: a letter or '_' then letters, digits, '_', '-', ':' or '.' "
            "(at most 128 characters, no spaces)"
        )
    return text


def _classes(value: Any) -> str:
    """Class names only: a space-separated string or a list of names, each a CSS identifier."""
    if isinstance(value, str):
        tokens = str(value).split()
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        tokens = [t for v in value for t in str(v).split()]
    else:
        raise ComponentOptionError("class must be a string or a list of strings")
    if len(tokens) > MAX_CLASS_TOKENS:
        raise ComponentOptionError(f"class takes at most {MAX_CLASS_TOKENS} class names")
    for token in tokens:
        if len(token) > MAX_CLASS_TOKEN_LENGTH or not _compiled(CLASS_NAME).match(token):
            raise ComponentOptionError(
                "class takes class names only (letters, digits, '_' and '-', "
                "not starting with a digit), separated by spaces"
            )
    return " ".join(tokens)


#: The attributes :func:`_looks` validates, in its order.
_LOOK_NAMES = ("id", "class", "data-theme", "style", "aria-label")


def _looks(options: Mapping[str, Any]) -> tuple[str | None, str | None, str | None, str | None, str | None]:
    """The validated ``id``, ``class``, ``data-theme``, ``style`` and ``aria-label`` (``None``: not given).

    Plain text each (its validator applies ``str()``), to be escaped where emitted.
    """
    cls = options.get("class", options.get("class_"))
    height = options.get("height")
    theme = options.get("theme")
    ident = options.get("id")
    label = options.get("aria_label")
    return (
        None if ident is None else _html_id(ident),
        None if cls is None else _classes(cls),
        None if theme is None else _text("theme", theme),
        None if height is None else f"height: {_height(height)}",
        None if label is None else _text("aria_label", label),
    )


def render_attributes(attrs: Mapping[str, Any]) -> Markup:
    """`` name="value"`` pairs, values escaped (quotes, ``<``, ``&``), ``None`` left out.

    Each value is turned into a plain ``str`` first: ``escape()`` passes a
    ``Markup`` (anything with ``__html__``) through untouched, and an attribute
    value is text, never markup, whoever built it.
    """
    # Names are the kit's own constants; every value goes through str() then escape().
    return Markup(_attrs(*attrs.items()))  # noqa: S704


def _attrs(*pairs: tuple[str, Any]) -> str:
    """:func:`render_attributes` as plain text, for the kit's own f-strings (same escaping)."""
    return "".join([f' {name}="{escape(str(value))}"' for name, value in pairs if value is not None])


def _attr(name: str, value: Any) -> str:
    """One pair of :func:`_attrs` (``""`` for ``None``): str() then escape, like every value."""
    return "" if value is None else f' {name}="{escape(str(value))}"'


class _KitGlobals(ChainMap[str, Any]):
    """The kit template's globals: Jinja's own layered mapping, with a cheaper ``keys()``.

    On every ``{% from "toucan/components.html" import ... %}`` Jinja 3.1
    checks whether the importing template has globals the kit's template lacks
    (``ctx.globals_keys - template.globals.keys()``; if none, it reuses the
    module it made the first time). Against a ``ChainMap``'s keys view that
    set difference is a Python-level lookup per global (~6 µs per page with
    Flask's 14 globals). The same maps, asked for their keys when Jinja asks
    (so later additions to ``app.jinja_env.globals`` are seen), make it one
    C-level set difference. Lookups, iteration and writes are ``ChainMap``'s.
    """

    def keys(self) -> KeysView[str]:
        filled = [mapping for mapping in self.maps if mapping]
        if len(filled) == 1 and isinstance(filled[0], dict):
            return filled[0].keys()  # usually: no template globals, only the environment's
        merged: dict[str, None] = {}
        for mapping in reversed(self.maps):
            merged.update(dict.fromkeys(mapping))
        return merged.keys()


def tune_import(app: Flask) -> None:
    """Give the kit template (as ``app`` resolves ``toucan/components.html``) :class:`_KitGlobals`.

    The same globals, the same names exported, the import line unchanged: only
    Jinja's per-import check gets cheaper. A template reloaded later (debug
    auto-reload) simply keeps Jinja's plain ``ChainMap``.
    """
    try:
        template = app.jinja_env.get_template(KIT_TEMPLATE)
    except TemplateNotFound:  # pragma: no cover - the blueprint ships it
        app.extensions[_TUNED_KEY] = True
        return
    if type(template.globals) is ChainMap:
        template.globals = _KitGlobals(*template.globals.maps)
    app.extensions[_TUNED_KEY] = True


class ComponentKit:
    """The ``_toucan_kit`` Jinja global; one per app, stateless (reads the current app).

    Its entry points are static methods: ``_toucan_kit.dashboard`` is then a
    plain function, which Jinja's ``Context.call`` inspects faster than a bound
    method (about 0.4 µs a call: a page of twenty components makes twenty-one).
    """

    # ------------------------------------------------------------- scripts
    @staticmethod
    def scripts() -> Markup:
        """Two module scripts (component script, refresh script) with the CSP nonce.

        Nothing inline: both are external files, so ``script-src 'nonce-…'`` or a
        host allow-list is enough, with no ``'unsafe-inline'``. The escaped
        ``src`` values depend only on the app and its mount point and are
        built once each (:func:`flask_toucan.page.site`); the nonce,
        new on every request, is escaped on every call.
        """
        current = page.current_page()
        if _TUNED_KEY not in current.app.extensions:
            tune_import(current.app)
        hooks = current.state.hooks
        if hooks.nonce_loader is default_nonce_loader:  # the same lookup, on objects the page holds
            nonce = nonce_in(current.request, current.at.memo)
        else:
            nonce = hooks.csp_nonce()
        close = "></script>" if nonce is None else f' nonce="{escape(str(nonce))}"></script>'
        opens = current.site().scripts  # each src escaped when cached; the nonce just above
        return Markup(close.join(opens) + close if opens else "")  # noqa: S704

    # ---------------------------------------------------------- components
    @staticmethod
    def dashboard(dashboard_id: Any = None, **options: Any) -> Markup:
        """``<tc-dashboard>`` for a dashboard, or for one chart with ``chart_id=``."""
        ComponentKit._check_names("tc_dashboard", options, _DASHBOARD_ALLOWED)
        chart_id = options.get("chart_id")
        if (dashboard_id is None) == (chart_id is None):
            raise ComponentOptionError("tc_dashboard needs a dashboard id or chart_id=, not both")
        if chart_id is None:
            kind, ident = "dashboard", f' dashboard-id="{escape(_text("dashboard_id", dashboard_id))}"'
        else:
            kind, ident = "chart", f' chart-id="{escape(_text("chart_id", chart_id))}"'
        interval = options.get("refresh_interval")
        if interval is not None:
            if (
                isinstance(interval, bool)
                or not isinstance(interval, (int, float))
                or not 0 < interval <= 86400
            ):
                raise ComponentOptionError("refresh_interval must be a number of seconds")
            ident += _attr("refresh-interval", f"{interval:g}")
        return ComponentKit._component("tc-dashboard", kind, options, ident)

    @staticmethod
    def prefetch(*kinds: str) -> Markup:
        """``toucan_prefetch("dashboard", "assistant")``: load the page's tokens now, together.

        Optional: the kit learns each endpoint's kinds on its own after one
        render. Renders nothing; an unknown kind is a template error.
        """
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ComponentOptionError(
                f"toucan_prefetch: unknown kind {', '.join(map(repr, unknown))}; allowed: {', '.join(KINDS)}"
            )
        page.prefetch(kinds)
        return Markup("")

    @staticmethod
    def assistant(**options: Any) -> Markup:
        """``<tc-ai-assistant>``; the placeholder unless the user has ``ai.can_query``."""
        ComponentKit._check_names("tc_ai_assistant", options, COMMON_OPTIONS)
        return ComponentKit._component("tc-ai-assistant", "assistant", options, "")

    # ------------------------------------------------------------- helpers
    @staticmethod
    def _check_names(macro: str, options: Mapping[str, Any], allowed: frozenset[str]) -> None:
        if options.keys() <= allowed and not ("class" in options and "class_" in options):
            return
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ComponentOptionError(
                f"{macro}: unknown option {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(allowed - {'class_'}))}"
            )
        if "class" in options and "class_" in options:
            raise ComponentOptionError(f"{macro}: pass class or class_, not both")

    @staticmethod
    def _presentation(options: Mapping[str, Any]) -> dict[str, str | None]:
        """Validated host-side attributes: checked before any token is asked for."""
        return dict(zip(_LOOK_NAMES, _looks(options), strict=True))

    @staticmethod
    def _component(tag: str, kind: str, options: Mapping[str, Any], ident: str) -> Markup:
        """One component: its own attributes (``ident``: escaped already), then what its kind shares."""
        looks = _looks(options)
        server = options.get("server_url")
        server_url = _server_url(server) if server is not None else None
        current = page.current_page()
        if _TUNED_KEY not in current.app.extensions:
            tune_import(current.app)
        found = current.slots.get(kind)
        if found is None or found.token is None:  # not loaded yet, or withheld: the full path
            found, reason = _token_or_reason(current, tag, kind)
            if found is None or found.token is None:
                return ComponentKit._placeholder(reason, kind, dict(zip(_LOOK_NAMES, looks, strict=True)))
        # Each value is a plain str made by its validator (str() applied there), escaped here.
        pid, pcls, theme, style, plabel = looks
        own = (
            ("" if pid is None else f' id="{escape(pid)}"')
            + ("" if pcls is None else f' class="{escape(pcls)}"')
            + ("" if plabel is None else f' aria-label="{escape(plabel)}"')
            + ident
        )
        # auth-token and server-url: escaped once per kind and page (unless server_url= is given).
        if server is not None:
            head = _attrs(("auth-token", found.token.value), ("server-url", server_url))
        else:
            head = found.head if found.head is not None else page.head(current, found)
        look = ("" if theme is None else f' data-theme="{escape(theme)}"') + (
            "" if style is None else f' style="{escape(style)}"'
        )
        tail = found.tail if found.tail is not None else page.tail(current, kind, found)
        # Same permission set, same scope: the script refreshes one token per
        # scope (a dashboard and a chart usually share one), not one per kind.
        # Tabs of one login share tokens; the CSRF string differs per page (it is
        # timestamped), so they meet on a digest of the session id (the tail).
        return Markup(f"<{tag}{own}{head}{look}{tail}></{tag}>")  # noqa: S704 - constant tag, escaped attributes

    @staticmethod
    def _placeholder(reason: str, kind: str, presentation: Mapping[str, str | None]) -> Markup:
        state = get_state()
        login_url = url_for("toucan.login") if state.oauth is not None else None
        html = render_template(
            state.config.placeholder_template,
            reason=reason,
            kind=kind,
            login_url=login_url,
            attrs=render_attributes(
                {
                    "id": presentation.get("id"),
                    "class": " ".join(filter(None, ["toucan-placeholder", presentation.get("class")])),
                    "style": presentation.get("style"),
                    "data-theme": presentation.get("data-theme"),
                    "data-toucan-placeholder": reason,
                    "data-toucan-kind": kind,
                }
            ),
        )
        return Markup(html)  # noqa: S704 - output of an autoescaped template


def _token_or_reason(current: page.Page, tag: str, kind: str) -> tuple[page.Slot | None, str]:
    """``(slot, "")`` with the token, or ``(None, reason)`` for the placeholder.

    The page loads every kind it needs on the first call (one store round
    trip, concurrent mints): see :mod:`flask_toucan.page`.
    """
    try:
        found = page.slot(kind, current)
        if found.error is not None:
            raise found.error
        return found, ""
    except AuthenticationRequired:
        return None, "logged_out"
    except AttributeMappingError as exc:
        log.warning("flask-toucan: %s withheld: %s", tag, exc.message)
        return None, "no_attributes"
    except PermissionDenied:
        return None, "not_permitted"
    except UpstreamRejected as exc:
        # Toucan's code only: its free-text message is not ours to log or show.
        log.warning(
            "flask-toucan: %s withheld: Toucan rejected the token request (code %s, HTTP %s)",
            tag,
            loggable_code(exc.upstream_code),
            exc.upstream_status,
        )
        return None, "misconfigured"
    except (UpstreamError, StoreUnavailable) as exc:
        log.warning("flask-toucan: %s withheld: %s", tag, exc.message)
        return None, "unavailable"
    except ToucanError as exc:  # anything else: fail closed, no component
        log.warning("flask-toucan: %s withheld: %s", tag, type(exc).__name__)
        return None, "unavailable"


def loggable_code(code: Any) -> str:
    """Toucan's error ``code`` if it looks like one, else ``?`` (no log injection, no free text)."""
    return code if isinstance(code, str) and _compiled(_LOGGABLE_CODE).match(code) else "?"


#: Kept for callers of the former private names (the benchmarks build the hand page with them).
_session_tag = page.session_tag
_scope = page.scope_of


def init_app(app: Flask) -> None:
    """Register the template global the macros call."""
    app.jinja_env.globals["_toucan_kit"] = ComponentKit()
