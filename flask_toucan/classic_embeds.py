"""``tc_embed``: a classic (self-hosted Toucan 3) embed, the launcher script or the iframe.

Toucan 3 does not render Toucan AI's ``<tc-dashboard>``: an embed is one of
two snippets (docs-v3 "Embed a story with user attributes", "Passing extra
variables"), each with the opaque token the instance's exchange issued::

    <div …><script async src="{instance}/scripts/embedLauncher.js?id=ID&token=T[&view=V][&variables=J]"
                   type="text/javascript" nonce="…"></script></div>
    <div …><iframe src="{instance}/embed.html?id=ID&token=T[&view=V][&variables=J]" …></iframe></div>

``J`` is ``{"extra": variables}`` as JSON (the docs put every key under
``extra``). ``{instance}`` is ``TOUCAN_BASE_URL``. The token is the user's
``dashboard`` token of the classic profile (``TOUCAN_MODE = "signed"`` with
``TOUCAN_EXCHANGE_URL``): the exchanged opaque token, as ``tc_dashboard``
gets it; the signed assertion never reaches the page. Outside the classic
profile there is no such token (api mode's token is Toucan AI's, signed mode
without the exchange would put our assertion in the page), so the embed is
the ``misconfigured`` placeholder.

Both forms sit in a container ``<div data-toucan-embed="script|iframe">``
carrying the refresh attributes every component has (``data-toucan-kind``,
scope, expiry, CSRF): ``toucan-refresh.js`` re-mounts the embed with the new
token before it expires (a new launcher script, or a new frame built hidden
and swapped in on ``load``).

Every value (id, view, each variable, the token) is URL-encoded into the
query and the URL then HTML-escaped into the attribute, whatever its type;
the variables are JSON (``Markup`` is text like any string). A template
author's mistake (unknown mode or option, an id that is not an embed id,
variables that are not a JSON object) is a :class:`ComponentOptionError`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup, escape

from . import page
from .components import (
    _LOOK_NAMES,
    ComponentKit,
    ComponentOptionError,
    _looks,
    _text,
    _token_or_reason,
)
from .state import default_nonce_loader, nonce_in

log = logging.getLogger("flask_toucan")

MODES = ("script", "iframe")
#: The token kind an embed uses: the classic profile's dashboard token (one refresh with tc_dashboard).
KIND = "dashboard"
#: An embed id as Toucan's Embed Manager shows them: letters, digits, ``_``, ``-``, ``.``.
EMBED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_VIEW = 256
#: The JSON of the variables, encoded: a launcher URL must stay well under common URL limits.
MAX_VARIABLES_BYTES = 4096
OPTIONS = frozenset({"id", "class", "class_", "height", "aria_label", "title"})
LAUNCHER_PATH = "/scripts/embedLauncher.js"
FRAME_PATH = "/embed.html"


def _embed_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or not EMBED_ID.match(str(value)):
        raise ComponentOptionError(
            "tc_embed: the embed id must be Toucan's embed id (letters, digits, '_', '-' or '.', "
            "at most 128 characters)"
        )
    return str(value)


def _view(value: Any) -> str | None:
    if value is None:
        return None
    text = _text("view", value)
    if not text.strip() or len(text) > MAX_VIEW:
        raise ComponentOptionError(
            f"tc_embed: view must be a non-empty string of at most {MAX_VIEW} characters"
        )
    return text


def _finite(value: Any) -> Any:
    """``value`` made of JSON types only (``Markup`` and other ``str`` subclasses become text)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ComponentOptionError("tc_embed: a variable is not a finite number")
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise ComponentOptionError("tc_embed: variable names must be strings")
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    raise ComponentOptionError("tc_embed: variables take strings, numbers, booleans, None, lists and objects")


def _variables(value: Any) -> str | None:
    """``{"extra": variables}`` as compact JSON, or ``None`` for no variables."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ComponentOptionError("tc_embed: variables must be a mapping of names to values")
    text = json.dumps({"extra": _finite(value)}, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if len(text.encode()) > MAX_VARIABLES_BYTES:
        raise ComponentOptionError(f"tc_embed: variables are over {MAX_VARIABLES_BYTES} bytes as JSON")
    return text


def embed_url(
    instance: str, mode: str, embed_id: str, token: str, view: str | None, variables: str | None
) -> str:
    """The launcher or frame URL, every query value percent-encoded (spaces as ``%20``)."""
    query = [("id", embed_id), ("token", token)]
    if view is not None:
        query.append(("view", view))
    if variables is not None:
        query.append(("variables", variables))
    path = LAUNCHER_PATH if mode == "script" else FRAME_PATH
    return f"{instance}{path}?{urlencode(query, quote_via=quote, safe='')}"


def _nonce(current: page.Page) -> str | None:
    hooks = current.state.hooks
    if hooks.nonce_loader is default_nonce_loader:
        nonce = nonce_in(current.request, current.at.memo)
    else:
        nonce = hooks.csp_nonce()
    return None if nonce is None else str(nonce)


def _instance(current: page.Page) -> str | None:
    """``TOUCAN_BASE_URL`` in the classic profile (signed mode + exchange), else ``None``."""
    config = current.state.config
    if config.mode != "signed" or config.exchange_url is None or not config.base_url:
        return None
    return config.base_url.rstrip("/")


def embed(
    embed_id: Any = None, view: Any = None, variables: Any = None, mode: Any = "script", **options: Any
) -> Markup:
    """``tc_embed(embed_id, view=None, variables=None, mode="script"|"iframe", **options)``.

    Options: ``id``, ``class`` / ``class_``, ``height``, ``aria_label`` (on the
    container) and, for the iframe, ``title`` (its accessible name; default
    "Toucan embed"). Checked before any token is asked for.
    """
    ComponentKit._check_names("tc_embed", options, OPTIONS)
    if mode not in MODES:
        raise ComponentOptionError("tc_embed: mode must be 'script' or 'iframe'")
    if "title" in options and mode != "iframe":
        raise ComponentOptionError("tc_embed: title= is the iframe's name; it needs mode='iframe'")
    ident = _embed_id(embed_id)
    chosen = _view(view)
    extra = _variables(variables)
    title = _text("title", options["title"]) if "title" in options else "Toucan embed"
    looks = _looks(options)
    current = page.current_page()
    presentation = dict(zip(_LOOK_NAMES, looks, strict=True))
    instance = _instance(current)
    if instance is None:
        log.warning(
            "flask-toucan: tc-embed withheld: it needs the classic profile "
            "(signed mode with TOUCAN_EXCHANGE_URL and TOUCAN_BASE_URL)"
        )
        return ComponentKit._placeholder("misconfigured", "embed", presentation)
    found = current.slots.get(KIND)
    if found is None or found.token is None:
        found, reason = _token_or_reason(current, "tc-embed", KIND)
        if found is None or found.token is None:
            return ComponentKit._placeholder(reason, "embed", presentation)
    url = embed_url(instance, mode, ident, found.token.value, chosen, extra)
    pid, pcls, _theme, style, plabel = looks
    container = (
        ("" if pid is None else f' id="{escape(pid)}"')
        + f' class="{escape(" ".join(filter(None, ["toucan-embed", pcls])))}"'
        + ("" if style is None else f' style="{escape(style)}"')
        + ("" if plabel is None else f' role="region" aria-label="{escape(plabel)}"')
        + f' data-toucan-embed="{mode}" data-toucan-embed-id="{escape(ident)}"'
        + (found.tail if found.tail is not None else page.tail(current, KIND, found))
    )
    if mode == "script":
        nonce = _nonce(current)
        inner = (
            f'<script async src="{escape(url)}" type="text/javascript"'
            + ("" if nonce is None else f' nonce="{escape(nonce)}"')
            + "></script>"
        )
    else:
        inner = (
            f'<iframe src="{escape(url)}" title="{escape(title)}" width="100%" height="100%" '
            'frameborder="0"></iframe>'
        )
    return Markup(f"<div{container}>{inner}</div>")  # noqa: S704 - every value escaped above
