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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from .components import ComponentKit, ComponentOptionError, render_attributes
from .state import get_state

TAG = "tc-result-renderer"
#: The one place the data's carrier is named (see the module docstring).
DATA_SCRIPT_TYPE = "application/json"
OPTIONS = frozenset({"theme", "height", "id", "class", "class_", "aria_label"})


def _visualizations(value: Any) -> list[Mapping[str, Any]]:
    """An envelope's ``visualizations``, or one visualization as a list of one."""
    if isinstance(value, Mapping) and "visualizations" in value:
        items = value["visualizations"]
    elif isinstance(value, Mapping) and "type" in value:
        items = [value]
    else:
        items = value
    if (
        isinstance(items, str | bytes)
        or not isinstance(items, Sequence)
        or not all(isinstance(v, Mapping) for v in items)
    ):
        raise ComponentOptionError(
            "tc_result_renderer takes a toucan-mcp-v1 envelope, a visualization, or a list of them"
        )
    return [dict(v) for v in items]


def result_renderer(envelope_or_visualization: Any, /, **options: Any) -> Markup:
    """``<tc-result-renderer …><script type="application/json">…</script></tc-result-renderer>``."""
    ComponentKit._check_names("tc_result_renderer", options, OPTIONS)
    presentation = ComponentKit()._presentation(options)
    data = htmlsafe_json_dumps({"visualizations": _visualizations(envelope_or_visualization)})
    nonce = get_state().hooks.csp_nonce()
    script = Markup(  # noqa: S704 - htmlsafe_json_dumps output, attributes escaped
        f"<script{render_attributes({'type': DATA_SCRIPT_TYPE, 'nonce': nonce})}>{data}</script>"
    )
    return Markup(f"<{TAG}{render_attributes(presentation)}>{script}</{TAG}>")  # noqa: S704
