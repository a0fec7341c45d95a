"""Whatever shape Toucan's envelope takes, no 500 (issue 22, item 2).

``tc_result_renderer(envelope)`` draws upstream data: ``visualizations`` that
are not objects (``["just a string", 42]``) are skipped, and an envelope with
nothing drawable left renders the ``unavailable`` placeholder; it never raises
(an unknown *option* is still the template's mistake). The ask route checks the
envelope before it hands it on: only JSON objects in ``visualizations``, strict
JSON (no ``NaN``), else 502 ``upstream_protocol_error``. The sandbox's MCP
``envelope`` fault plays the buggy Toucan, so the full path runs (SDK, parser,
route, renderer). Hypothesis fuzzes both.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import render_template_string
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flask_toucan.assistant import parse_envelope
from flask_toucan.exceptions import UpstreamProtocolError

from .helpers import ACME, make_app

MACRO = '{% from "toucan/components.html" import tc_result_renderer %}'
URL = "/toucan/assistant/ask"
# The data block, then the constant script that sets ``payload`` from it (result_renderer.py).
RENDERER = re.compile(
    r'<tc-result-renderer[^>]*><script type="application/json">(.*?)</script>'
    r"<script>[^<]*</script></tc-result-renderer>",
    re.S,
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
VISUALIZATION = st.fixed_dictionaries(
    {"type": st.sampled_from(["bar", "kpi", "line"]) | JSON_VALUES},
    optional={"title": JSON_VALUES, "columns": JSON_VALUES, "rows": JSON_VALUES},
)
VISUALIZATIONS = st.one_of(JSON_VALUES, st.lists(st.one_of(VISUALIZATION, JSON_VALUES), max_size=4))
ENVELOPES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {"visualizations": VISUALIZATIONS},
        optional={
            "answer": JSON_VALUES | st.text(max_size=10),
            "threadId": JSON_VALUES,
            "schema": JSON_VALUES,
        },
    ),
)


def no_constants(name: str) -> Any:
    raise AssertionError(f"{name} is not JSON a browser reads")


def strict_loads(text: str) -> Any:
    return json.loads(text, parse_constant=no_constants)


@pytest.fixture
def app():
    app, _ = make_app("http://toucan.invalid", "key", TOUCAN_ASSISTANT_ROUTE=False)
    return app


def render(app, value: Any) -> str:
    with app.test_request_context():
        return render_template_string(MACRO + "{{ tc_result_renderer(v) }}", v=value)


def drawn(html: str) -> list[dict[str, Any]] | None:
    """The visualizations in the data block, or ``None`` for the placeholder."""
    match = RENDERER.fullmatch(html)
    if match is None:
        assert 'data-toucan-placeholder="unavailable"' in html and "<tc-result-renderer" not in html, html
        return None
    data = strict_loads(match.group(1))
    assert set(data) == {"visualizations"} and all(isinstance(v, dict) for v in data["visualizations"])
    return data["visualizations"]


def test_items_that_are_not_objects_are_skipped(app):
    """The attack run's 500: ``ComponentOptionError`` from upstream data."""
    good = {"type": "kpi", "title": "Total", "columns": ["Sales"], "rows": [[5]]}
    envelope = {"answer": "x", "threadId": "t", "visualizations": ["just a string", 42, good, None]}
    assert drawn(render(app, envelope)) == [good]


@pytest.mark.parametrize(
    "bad",
    [
        {"answer": "x", "threadId": "t", "visualizations": ["just a string", 42]},
        {"answer": "x", "visualizations": "bar"},
        {"answer": "x", "visualizations": {"type": "bar"}},
        {"visualizations": [{"type": "bar", "rows": [[float("nan")]]}]},
        "text",
        3,
        None,
        [1, 2],
    ],
)
def test_nothing_drawable_is_the_placeholder(app, bad):
    assert drawn(render(app, bad)) is None


def test_an_envelope_without_visualizations_draws_nothing(app):
    assert drawn(render(app, {"answer": "no viz", "threadId": "t"})) == []
    assert drawn(render(app, [])) == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=ENVELOPES)
@example(value={"visualizations": ["just a string", 42]})
@example(value={"visualizations": [{"type": "bar", "title": "</script><!--"}]})
def test_fuzz_renderer_never_raises(app, value):
    html = render(app, value)
    items = drawn(html)
    if items is not None:
        assert html.count("</script>") == 2  # the data block and the payload script, no more


def tool_result(envelope: Any) -> dict[str, Any]:
    return {"structured": envelope, "text": json.dumps(envelope)}


@settings(max_examples=300, deadline=None)
@given(value=ENVELOPES)
def test_fuzz_parse_envelope(value):
    """What ``ask()`` hands on is a drawable envelope, or an ``UpstreamProtocolError``."""
    try:
        envelope = parse_envelope(tool_result(value), "toucan.test")
    except UpstreamProtocolError:
        return
    assert isinstance(envelope["answer"], str) and isinstance(envelope["threadId"], str)
    assert all(isinstance(v, dict) for v in envelope["visualizations"])
    strict_loads(json.dumps(envelope))


def test_nan_outside_visualizations_is_a_protocol_error():
    """The SDK turns a NaN in structured content into null; a text-only result keeps it."""
    text = '{"answer": "x", "threadId": "t", "visualizations": [], "extra": NaN}'
    with pytest.raises(UpstreamProtocolError):
        parse_envelope({"text": text}, "toucan.test")
    nan_item = '{"answer": "x", "threadId": "t", "visualizations": [{"type": "bar", "v": NaN}]}'
    assert parse_envelope({"text": nan_item}, "toucan.test")["visualizations"] == []


def ask(client) -> Any:
    return client.post(URL, json={"question": "total sales"}, headers={"X-Toucan-CSRF": client.csrf_token})


def check_route(app, resp) -> None:
    """200 with a drawable envelope, or 502 ``upstream_protocol_error``; never a 500."""
    assert resp.status_code in (200, 502), resp.get_data(as_text=True)
    body = strict_loads(resp.get_data(as_text=True))
    if resp.status_code == 502:
        assert body["error"] == "upstream_protocol_error"
        return
    assert all(isinstance(v, dict) for v in body["visualizations"])
    drawn(render(app, body))  # what the route answers, the renderer can draw (or placeholder)


@pytest.mark.integration
def test_route_drops_items_that_are_not_objects(host, mcp_endpoint):
    app, _ = host
    mcp_endpoint.set_faults(envelope={"visualizations": ["just a string", 42]})
    with app.test_client(user=ACME) as client:
        resp = ask(client)
    check_route(app, resp)
    assert resp.status_code == 200 and resp.json["visualizations"] == []


@pytest.mark.integration
@pytest.mark.parametrize(
    "patch", [{"answer": 42}, {"threadId": ["t"]}, {"visualizations": "bar"}, {"answer": None}]
)
def test_route_refuses_what_is_not_an_envelope(host, mcp_endpoint, patch):
    app, _ = host
    mcp_endpoint.set_faults(envelope=patch)
    with app.test_client(user=ACME) as client:
        resp = ask(client)
    check_route(app, resp)
    assert resp.status_code == 502


@pytest.mark.integration
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    patch=st.fixed_dictionaries(
        {}, optional={"visualizations": VISUALIZATIONS, "answer": JSON_VALUES, "extra": JSON_VALUES}
    )
)
def test_fuzz_route_over_envelope_shapes(host, mcp_endpoint, patch):
    app, _ = host
    mcp_endpoint.set_faults(envelope=patch)
    with app.test_client(user=ACME) as client:
        check_route(app, ask(client))
