"""``tc_result_renderer``: draw an MCP answer's visualizations with ``<tc-result-renderer>``.

Toucan's MCP tool returns a ``toucan-mcp-v1`` envelope whose ``visualizations``
the ``<tc-result-renderer>`` web component renders. Toucan's docs name the
component but not how it receives the data, so the choice is made here, in one
place (``docs/wire.md`` says so): the data travels in a
``<script type="application/json">`` child, ``{"visualizations": [...]}``.

Why a child and not an attribute: a data block is never executed, so a strict
CSP (no ``'unsafe-inline'``) does not block it, it has no size limit an
attribute would strain, and the JSON is escaped by Jinja's
``htmlsafe_json_dumps`` (``<``, ``>``, ``&`` and ``'`` as ``\\u`` escapes), so a
value such as ``</script><script>…`` or ``<!--`` cannot end the block. The
component reads it with ``textContent`` and draws with DOM text nodes only.

A public summary of ``<tc-result-renderer>`` says it reads a ``payload`` DOM
property; Toucan's pages do not say so, so this too is our choice: a tiny
inline script after the JSON child (:data:`PAYLOAD_SCRIPT`, constant text,
with the page's CSP nonce, or allowed by its hash :data:`PAYLOAD_SCRIPT_HASH`)
sets ``element.payload`` from the child: the visualization when the element
holds one (``tc_result_renderer(viz)``, or an envelope with one), the list
when it holds several. It sets it once the element is defined (so the
component's own ``payload`` setter, if it has one, gets it) and never over a
value the page set itself. The JSON child stays: it is what a strict CSP lets
through even where the script is blocked, and what the sandbox's component reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from .components import ComponentKit, render_attributes
from .state import get_state

TAG = "tc-result-renderer"
#: The one place the data's carrier is named (see the module docstring).
DATA_SCRIPT_TYPE = "application/json"
OPTIONS = frozenset({"theme", "height", "id", "class", "class_", "aria_label"})
log = logging.getLogger("flask_toucan")
#: Sets ``payload`` on its parent from the JSON child (constant: allowed by nonce or by hash).
PAYLOAD_SCRIPT = (
    "(function(s){var e=s.parentElement,d=e&&e.querySelector('script[type=\"application/json\"]');"
    "if(!d)return;var v=JSON.parse(d.textContent).visualizations,p=v.length===1?v[0]:v,"
    "t=e.localName,f=function(){if(e.payload===undefined)e.payload=p;};"
    "if(customElements.get(t))f();else customElements.whenDefined(t).then(f);})(document.currentScript)"
)
#: The ``script-src`` source that allows :data:`PAYLOAD_SCRIPT` without a nonce.
PAYLOAD_SCRIPT_HASH = (
    f"'sha256-{base64.b64encode(hashlib.sha256(PAYLOAD_SCRIPT.encode()).digest()).decode()}'"
)


def _visualizations(value: Any) -> list[dict[str, Any]] | None:
    """The visualizations to draw, or ``None`` when nothing in ``value`` can be drawn.

    ``value`` is data from upstream (an envelope from ``assistant.ask()``, its
    ``visualizations``, one visualization), never a template author's mistake:
    a shape we cannot use degrades instead of raising. Items that are not JSON
    objects (``["just a string", 42]``), or that would not make strict JSON
    (``NaN``), are skipped and counted in the log (never their content); if
    nothing drawable is left of a non-empty answer, the caller shows the
    placeholder. An envelope without visualizations draws an empty renderer.
    """
    if isinstance(value, Mapping) and "visualizations" in value:
        items = value["visualizations"]
    elif isinstance(value, Mapping) and "type" in value:
        items = [value]
    elif isinstance(value, Mapping) and "answer" in value:
        items = []
    else:
        items = value
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        log.warning(
            "flask-toucan: tc_result_renderer got no list of visualizations (%s)", type(items).__name__
        )
        return None
    kept = [dict(v) for v in items if isinstance(v, Mapping) and _strict_json(v)]
    if len(kept) < len(items):
        log.warning(
            "flask-toucan: tc_result_renderer skipped %d of %d visualizations",
            len(items) - len(kept),
            len(items),
        )
    return kept if kept or not items else None


def _strict_json(item: Mapping[str, Any]) -> bool:
    """Whether ``item`` dumps as JSON a browser's ``JSON.parse`` reads (no ``NaN``, no odd types)."""
    try:
        json.dumps(item, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def result_renderer(envelope_or_visualization: Any, /, **options: Any) -> Markup:
    """``<tc-result-renderer …>`` with the JSON child and the script that sets ``payload`` from it.

    An unknown option is the template's mistake (:class:`ComponentOptionError`);
    the data is upstream's, so bad data renders the ``unavailable`` placeholder.
    """
    ComponentKit._check_names("tc_result_renderer", options, OPTIONS)
    presentation = ComponentKit()._presentation(options)
    visualizations = _visualizations(envelope_or_visualization)
    if visualizations is None:
        return ComponentKit._placeholder("unavailable", "result", presentation)
    data = htmlsafe_json_dumps({"visualizations": visualizations})
    nonce = get_state().hooks.csp_nonce()
    script = Markup(  # noqa: S704 - htmlsafe_json_dumps output, a constant script, attributes escaped
        f"<script{render_attributes({'type': DATA_SCRIPT_TYPE, 'nonce': nonce})}>{data}</script>"
        f"<script{render_attributes({'nonce': nonce})}>{PAYLOAD_SCRIPT}</script>"
    )
    return Markup(f"<{TAG}{render_attributes(presentation)}>{script}</{TAG}>")  # noqa: S704
