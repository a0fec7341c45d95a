"""``tc_result_renderer``: the envelope's visualizations in a JSON data block, escaped, and ``payload``.

The browser side (``element.payload`` set from the block under a strict CSP)
is tests/mcp/test_renderer_browser.py.
"""

from __future__ import annotations

import json
import re

import pytest
from flask import render_template_string

from flask_toucan.components import ComponentOptionError
from flask_toucan.result_renderer import PAYLOAD_SCRIPT, PAYLOAD_SCRIPT_HASH

from .helpers import make_app

MACRO = '{% from "toucan/components.html" import tc_result_renderer %}'
HOSTILE = "</script><script>alert(1)</script><!-- ' \" & \u2028"


@pytest.fixture
def app():
    app, _ = make_app("http://toucan.invalid", "key", TOUCAN_ASSISTANT_ROUTE=False)
    return app


def data_of(html: str) -> dict:
    match = re.fullmatch(
        r'<tc-result-renderer[^>]*><script type="application/json">(.*?)</script>'
        r"<script>(.*)</script></tc-result-renderer>",
        html,
        re.S,
    )
    assert match, html
    assert match.group(2) == PAYLOAD_SCRIPT  # the constant payload script, nothing of the data in it
    return json.loads(match.group(1))


def test_envelope_renders_its_visualizations(app):
    envelope = {
        "schema": "toucan-mcp-v1",
        "answer": "x",
        "threadId": "t",
        "visualizations": [{"type": "bar", "title": HOSTILE, "columns": ["a", "b"], "rows": [["k", 1]]}],
    }
    with app.test_request_context():
        html = render_template_string(
            MACRO + '{{ tc_result_renderer(env, height=300, class_="r") }}', env=envelope
        )
    assert html.startswith('<tc-result-renderer class="r" style="height: 300px">')
    # The title did not end the block: the data block and the payload script, no more.
    assert html.count("<script") == 2 and html.count("</script>") == 2
    assert "<!--" not in html
    assert data_of(html) == {"visualizations": envelope["visualizations"]}


def test_single_visualization_and_nonce(app):
    viz = {"type": "kpi", "title": "Total", "columns": ["Sales"], "rows": [[5]]}
    with app.test_request_context():
        from flask import g

        g.csp_nonce = "abc123"
        html = render_template_string(MACRO + "{{ tc_result_renderer(v) }}", v=viz)
    assert '<script type="application/json" nonce="abc123">' in html
    assert f'<script nonce="abc123">{PAYLOAD_SCRIPT}</script></tc-result-renderer>' in html
    data = html.split(">", 2)[2].split("</script>", 1)[0]
    assert json.loads(data) == {"visualizations": [viz]}


def test_payload_script_hash_is_its_csp_source():
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(PAYLOAD_SCRIPT.encode()).digest()).decode()
    assert PAYLOAD_SCRIPT_HASH == f"'sha256-{digest}'"
    assert "</" not in PAYLOAD_SCRIPT and "<!--" not in PAYLOAD_SCRIPT


@pytest.mark.parametrize("bad", ["text", 3, None, [1, 2]])
def test_bad_data_is_the_placeholder_not_an_error(app, bad):
    """Upstream's data is never the template's mistake (more in test_envelope_shapes.py)."""
    with app.test_request_context():
        html = render_template_string(MACRO + "{{ tc_result_renderer(v) }}", v=bad)
    assert 'data-toucan-placeholder="unavailable"' in html and "<tc-result-renderer" not in html


def test_unknown_option_is_refused(app):
    with app.test_request_context(), pytest.raises(ComponentOptionError):
        render_template_string(MACRO + "{{ tc_result_renderer(v, onclick='x') }}", v=[])
