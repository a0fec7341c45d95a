"""``tc_embed``: classic Toucan 3 embeds (launcher script / iframe) as the kit renders them.

The classic profile's exchange is ``bench.upstream.CountingUpstream`` (its
``/exchange`` answers an opaque ``tok-…``). What is checked: the URL is
docs-v3's (``id``, ``token``, ``view``, ``variables`` = ``{"extra": …}``), every
value percent-encoded then HTML-escaped whatever its type, the CSP nonce on
the script, the refresh attributes on the container, the same placeholders as
the other components, a :class:`ComponentOptionError` for a template mistake,
and never our signed assertion in the page.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import render_template_string
from markupsafe import Markup

from bench.upstream import CountingUpstream
from flask_toucan.components import ComponentOptionError

from .test_page import ALICE, make_app

IMPORT = '{% from "toucan/components.html" import tc_embed, tc_dashboard %}'


@pytest.fixture
def upstream() -> Iterator[CountingUpstream]:
    with CountingUpstream() as up:
        yield up


@pytest.fixture
def classic(upstream: CountingUpstream) -> Any:
    app, toucan = make_app("signed", upstream)
    toucan.csp_nonce_loader(lambda: 'n0nce"<')
    return app, toucan


def render(env: Any, call: str, claims: dict[str, Any] | None = ALICE, **context: Any) -> str:
    app, toucan = env
    with app.test_request_context("/page"):
        if claims is not None:
            toucan.login_user(claims)
        return render_template_string(IMPORT + "{{ " + call + " }}", **context)


def src_of(page: str, tag: str) -> tuple[str, dict[str, list[str]]]:
    found = re.search(rf'<{tag} [^>]*src="([^"]*)"', page)
    assert found, page
    url = html.unescape(found.group(1))
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query, keep_blank_values=True)


def test_script_form_is_docs_v3s_launcher_with_the_exchanged_token(classic: Any) -> None:
    page = render(classic, 'tc_embed("story-1", view="north", variables={"region": "emea", "n": 3})')
    base, query = src_of(page, "script")
    assert base == "https://toucan.test/scripts/embedLauncher.js"
    assert query["id"] == ["story-1"] and query["view"] == ["north"]
    assert query["token"][0].startswith("tok-")  # the exchanged opaque token
    assert json.loads(query["variables"][0]) == {"extra": {"region": "emea", "n": 3}}
    assert page.startswith(
        '<div class="toucan-embed" data-toucan-embed="script" data-toucan-embed-id="story-1"'
    )
    assert 'type="text/javascript" nonce="n0nce&#34;&lt;"></script></div>' in page
    assert "async" in page
    for attr in ("data-toucan-kind", "data-toucan-scope", "data-toucan-expires-in", "data-toucan-csrf"):
        assert f" {attr}=" in page
    assert "eyJ" not in page  # no JWS (our assertion) anywhere: only the opaque token


def test_iframe_form(classic: Any) -> None:
    call = 'tc_embed("story-1", mode="iframe", height=480, title="Sales", id="e", class_="x y")'
    page = render(classic, call)
    base, query = src_of(page, "iframe")
    assert base == "https://toucan.test/embed.html"
    assert set(query) == {"id", "token"}
    assert '<div id="e" class="toucan-embed x y" style="height: 480px" data-toucan-embed="iframe"' in page
    assert 'title="Sales" width="100%" height="100%" frameborder="0"></iframe></div>' in page
    assert "<script" not in page


def test_one_token_for_embeds_and_dashboards(classic: Any, upstream: CountingUpstream) -> None:
    page = render(classic, 'tc_embed("a") }}{{ tc_embed("b", mode="iframe") }}{{ tc_dashboard("d")')
    tokens = set(re.findall(r"tok-[0-9a-f]{32}", page))
    assert len(tokens) == 1 and len(upstream.calls) == 1


@pytest.mark.parametrize(
    ("view", "variables"),
    [
        ('x" onload="alert(1)', {"q": '"><script>alert(1)</script>'}),
        (Markup("<b>&amp;</b>"), {"m": Markup("<i>x</i>"), "list": [1, 2.5, True, None, "a&b=c"]}),
        (42, {"nested": {"deep": ["</script>", "&#x27;"]}}),
    ],
)
def test_every_value_is_encoded_whatever_its_type(classic: Any, view: Any, variables: Any) -> None:
    page = render(classic, "tc_embed('s', view=view, variables=variables)", view=view, variables=variables)
    assert page.count("<script") == 1 and page.count("<") == 4  # div, script, /script, /div: no tag injected
    assert "onload" not in page.split("src=")[0]
    _, query = src_of(page, "script")
    assert query["view"] == [str(view)]
    expected = json.loads(json.dumps({"extra": variables}, default=str))
    assert json.loads(query["variables"][0]) == expected
    raw = re.search(r'src="([^"]*)"', page)
    assert raw is not None and not set(raw.group(1)) & set("<>\"' ")  # percent-encoded, then escaped


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('tc_embed("s", mode="div")', "mode must be 'script' or 'iframe'"),
        ('tc_embed("bad id")', "embed id"),
        ('tc_embed("x" * 200)', "embed id"),
        ("tc_embed()", "embed id"),
        ("tc_embed(True)", "embed id"),
        ('tc_embed("../x")', "embed id"),
        ('tc_embed("s", theme="dark")', "unknown option 'theme'"),
        ('tc_embed("s", title="t")', "needs mode='iframe'"),
        ('tc_embed("s", variables=[1])', "variables must be a mapping"),
        ('tc_embed("s", variables={"x": nan})', "finite number"),
        ('tc_embed("s", variables={"x": aset})', "variables take"),
        ('tc_embed("s", variables={1: 2})', "names must be strings"),
        ('tc_embed("s", variables={"x": "y" * 5000})', "over 4096 bytes"),
        ('tc_embed("s", view="")', "view must be"),
        ('tc_embed("s", view=[1])', "view must be a string"),
        ('tc_embed("s", height="1px;color:red")', "height"),
    ],
)
def test_template_mistakes_are_component_option_errors(classic: Any, call: str, message: str) -> None:
    with pytest.raises(ComponentOptionError, match=re.escape(message)):
        render(classic, call, nan=math.nan, aset={1, 2})


def test_placeholders(classic: Any, upstream: CountingUpstream) -> None:
    logged_out = render(classic, 'tc_embed("s", id="e")', claims=None)
    assert 'data-toucan-placeholder="logged_out"' in logged_out and 'data-toucan-kind="embed"' in logged_out
    assert 'id="e"' in logged_out and "see this embed" in logged_out
    upstream.refuse = lambda body: True  # 403 NO_ACTIVE_SUBSCRIPTION from the exchange
    refused = render(classic, 'tc_embed("s", mode="iframe")', claims={**ALICE, "sub": "zed"})
    assert 'data-toucan-placeholder="misconfigured"' in refused and "<iframe" not in refused
    _, toucan = classic
    toucan.attribute("organization_id")(lambda user: None)
    missing = render(classic, 'tc_embed("s")', claims={**ALICE, "sub": "ann"})
    assert 'data-toucan-placeholder="no_attributes"' in missing


@pytest.mark.parametrize("mode", ["api", "signed"])
def test_outside_the_classic_profile_it_is_misconfigured(
    upstream: CountingUpstream, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    # api mode: Toucan AI's token; signed mode without the exchange: our assertion. Neither goes in.
    env = make_app(mode, upstream) if mode == "api" else make_app("signed")
    page = render(env, 'tc_embed("s")')
    assert 'data-toucan-placeholder="misconfigured"' in page and "<script" not in page
    assert "needs the classic profile" in caplog.text
    assert upstream.calls == []  # nothing minted for it
