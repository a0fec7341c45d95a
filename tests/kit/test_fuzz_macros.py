"""Hypothesis fuzzing of macro options: any value of any type, ``Markup`` included.

The outcome is either a :class:`ComponentOptionError` (a template error the
host sees in development) or exactly one element with only the kit's own
attributes; never another exception, an extra element, an event handler or a
secret.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from flask_toucan.components import COMMON_OPTIONS, DASHBOARD_OPTIONS, ComponentOptionError

from .test_escaping import assert_no_injection, render
from .test_macros import ALICE


@pytest.fixture
def kit_app(host: Any) -> Any:
    """One host app per test, shared by its examples."""
    return host()


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            '" onmouseover="x',
            "'><script>alert(1)</script>",
            "a b",
            "480px",
            "http://[",
            "http://h/x",
            "&amp;",
            "\x00",
            "javascript:alert(1)",
        ]
    ),
)
VALUES = st.one_of(
    TEXT,
    TEXT.map(Markup),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.one_of(TEXT, TEXT.map(Markup), st.integers()), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@FUZZ
@given(
    macro=st.sampled_from(["tc_dashboard", "tc_ai_assistant"]),
    options=st.dictionaries(st.sampled_from(sorted(COMMON_OPTIONS | DASHBOARD_OPTIONS)), VALUES, max_size=4),
    logged_in=st.booleans(),
)
def test_fuzz_macro_options(kit_app, macro, options, logged_in):
    app, _ = kit_app
    args = dict(options)
    if macro == "tc_dashboard" and "chart_id" not in args:
        call = "tc_dashboard('sales-overview', **o)"
    else:
        call = f"{macro}(**o)"
    try:
        html = render(app, "{{ " + call + " }}", user=ALICE | {"ai": True} if logged_in else None, o=args)
    except ComponentOptionError:
        return
    assert_no_injection(html, "")
    for value in args.values():
        if isinstance(value, str) and any(c in value for c in "<>\"'&"):
            assert str(value) not in html  # emitted only escaped


def test_nan_and_infinity_heights_are_refused(host):
    app, _ = host()
    for value in (math.nan, math.inf, -math.inf, 0, -1, 10**9):
        try:
            render(app, "{{ tc_dashboard('d', height=v) }}", user=None, v=value)
        except ComponentOptionError:
            continue
        raise AssertionError(f"height {value!r} accepted")
