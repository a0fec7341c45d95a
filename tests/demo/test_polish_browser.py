"""What a visitor noticed (issue 10, item 9): phone layout, live grant panel, labels, charts."""

from __future__ import annotations

from typing import Any

import pytest

from demo.users import find_user

from .helpers import no_csp_violations, shot, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

ALICE = find_user("alice")  # acme, emea, analyst
PHONE = (390, 844)
#: Two rows of the header at most: brand / token / sign-out, then the nav (each ~45 px).
MAX_HEADER_PX = 120


def layout(page: Any) -> dict[str, float]:
    return page.evaluate(
        """() => ({scroll: document.documentElement.scrollWidth, inner: innerWidth,
                   header: document.querySelector("header.topbar").getBoundingClientRect().height})"""
    )


def test_phone_layout_has_no_horizontal_overflow_and_a_short_header(visitor: Any, artifacts_dir: str) -> None:
    page = visitor(*PHONE).sign_in(ALICE)
    for path, ready in (("/overview", "#dash-regional-performance"), ("/assistant", "#assistant")):
        if not page.url.endswith(path):
            page.goto(page.url.rsplit("/", 1)[0] + path)
        wait_ready(page, ready)
        seen = layout(page)
        assert seen["scroll"] <= seen["inner"], f"{path} scrolls sideways: {seen}"
        assert seen["header"] <= MAX_HEADER_PX, f"{path} header wraps: {seen}"
        page.locator("#grant").scroll_into_view_if_needed()
        box = page.locator("#grant").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE[0]
        shot(page, artifacts_dir, f"phone{path.replace('/', '-')}")
    no_csp_violations(page)


def test_grant_panel_expiry_follows_background_refreshes(visitor: Any) -> None:
    page = visitor().sign_in(ALICE)
    wait_ready(page, "#dash-sales-overview")
    first = page.inner_text("[data-grant-expires]")
    # TOKEN_LIFETIME is a few seconds in these tests: the refresh script renews soon.
    page.wait_for_selector("#grant[data-refreshes]", timeout=15_000)
    later = page.inner_text("[data-grant-expires]")
    assert later.endswith(" UTC") and later != first


def test_region_shows_as_its_label_and_one_region_charts_by_month(visitor: Any) -> None:
    page = visitor().sign_in(ALICE)
    wait_ready(page, "#dash-regional-performance")
    cell = page.inner_text("#dash-regional-performance td[data-col='region']")
    assert cell == "EMEA"  # the code "emea" stays in the row id only
    assert page.get_attribute("#dash-regional-performance tr[data-row-id]", "data-row-id") == "emea"
    bars = page.locator("#dash-regional-performance svg.tc-chart rect")
    assert bars.count() == 12  # one region in scope: a bar per month, not a single bar


def test_assistant_inputs_are_styled(visitor: Any) -> None:
    page = visitor().sign_in(ALICE)
    page.goto(page.url.rsplit("/", 1)[0] + "/assistant")
    wait_ready(page, "#assistant")
    style = page.eval_on_selector(
        "#assistant .tc-form button",
        "b => { const s = getComputedStyle(b); return [s.backgroundColor, s.borderRadius, s.paddingLeft]; }",
    )
    assert style == ["rgb(47, 129, 247)", "6px", "16px"]  # the sandbox's embed.js styles, not UA defaults
    radius = page.eval_on_selector("#assistant .tc-form input", "i => getComputedStyle(i).borderRadius")
    assert radius == "6px"
