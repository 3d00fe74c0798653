"""The admin's pages, the home page and the dashboard in headless Chromium, at a desktop size
(1400x1000) and a phone's (390x844): the agent editor (provider choices, model suggestions,
JSON editors), the star page with its members inline, a run's read-only page, ``/`` and the
dashboard. Screenshots go to ``$ASTEROS_TEST_ARTIFACTS`` (default ``artifacts/``), one per
page and size (``<page>-<width>x<height>.png``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from cosmos.formatting import format_duration
from cosmos.runtime.providers import MODEL_SUGGESTIONS
from tests.interfaces.agui.live import ADMIN_PASSWORD, ADMIN_USER, LiveServer
from tests.interfaces.console.test_browser import TIMEOUT_MS, browser, shot  # noqa: F401  (browser: a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]

DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]


def name_of(stem: str, viewport: dict) -> str:
    return f"{stem}-{viewport['width']}x{viewport['height']}.png"


@pytest.fixture(scope="module", params=SIZES)
def sized(request, browser, asteros_server: LiveServer) -> Iterator[tuple[object, dict, list[str]]]:  # noqa: F811
    """A logged-in staff page at one size; JavaScript errors are collected."""
    viewport = request.param
    context = browser.new_context(viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{asteros_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))
    yield page, viewport, errors
    context.close()


@pytest.fixture
def at(sized) -> Iterator[tuple[object, dict]]:
    page, viewport, errors = sized
    errors.clear()
    yield page, viewport
    assert not errors, f"JavaScript errors on the page: {errors}"


def overflow(page, selector: str = "html") -> dict:
    """How wide the element is against the viewport (scrollWidth: what it would need)."""
    return page.evaluate(
        """(selector) => {
            const el = document.querySelector(selector);
            const box = el.getBoundingClientRect();
            return {scroll: el.scrollWidth, right: box.right, viewport: window.innerWidth};
        }""",
        selector,
    )


def test_the_agent_editor(at, asteros_server: LiveServer):
    from playwright.sync_api import expect

    page, viewport = at
    page.goto(f"{asteros_server.url}/admin/cosmos/agent/add/")
    provider = page.locator("select[name=provider]")
    expect(provider.locator("option[value=scripted]")).to_have_count(1)
    expect(provider.locator("option[value=openai]")).to_have_count(1)
    # The model's suggestions follow the provider.
    datalist = page.locator("#id_model_suggestions option")
    for name in ("openai", "anthropic"):
        provider.select_option(name)
        expect(datalist).to_have_count(len(MODEL_SUGGESTIONS[name]))
        assert datalist.evaluate_all("(options) => options.map((o) => o.value)") == list(MODEL_SUGGESTIONS[name])
    # parameters and tools are django-jsonform editors (rendered by its script), not text boxes.
    expect(page.locator(".field-parameters .rjf-form-wrapper")).to_be_visible()
    expect(page.locator(".field-tools .rjf-form-wrapper")).to_be_visible()
    expect(page.locator(".field-parameters")).to_contain_text("Temperature")
    expect(page.locator(".field-parameters")).to_contain_text("Rules")
    # The tools are picked from the catalogue: open the list, pick one.
    page.locator(".field-tools .rjf-multiselect-field-input").click()
    options = page.locator(".field-tools .rjf-multiselect-field-option")
    expect(options.filter(has_text=re.compile(r"^\s*calculator\s*$"))).to_have_count(1)
    expect(options.filter(has_text=re.compile(r"^\s*mcp:demo/\*\s*$"))).to_have_count(1)
    options.filter(has_text=re.compile(r"^\s*calculator\s*$")).locator("input").check()
    expect(page.locator(".field-tools .rjf-multiselect-field-input-item")).to_contain_text("calculator")
    page.keyboard.press("Escape")
    # Another JSON field: a syntax error shows as it is typed and the form is not sent.
    page.fill("#id_id", "browser-agent")
    page.fill("textarea[name=metadata]", '{"team": ')
    note = page.locator(".field-metadata .asteros-json-error")
    expect(note).to_be_visible()
    expect(note).to_contain_text("Not valid JSON")
    shot(page, name_of("admin-agent-add", viewport))
    page.click("input[name=_save]")
    assert page.url.endswith("/admin/cosmos/agent/add/")  # refused before it left the page
    page.fill("textarea[name=metadata]", '{"team": "browsers"}')
    expect(note).to_be_hidden()


def test_the_star_page_and_its_members_inline(at, asteros_server: LiveServer):
    from playwright.sync_api import expect

    page, viewport = at
    page.goto(f"{asteros_server.url}/admin/stars/star/chat-team/change/")
    # The config is edited as the star's limits, one field each.
    expect(page.locator(".field-config .rjf-form-wrapper")).to_contain_text("Max delegations")
    inline = page.locator("#memberships-group")
    expect(inline).to_be_visible()
    expect(inline.locator("tr.form-row.has_original")).to_have_count(2)
    shot(page, name_of("admin-star-members", viewport))
    if viewport is DESKTOP:
        # Every column of the members' table fits the page: no scrolling sideways, inside or out.
        table = overflow(page, "#memberships-group table")
        assert table["right"] <= table["viewport"], table
        assert table["scroll"] <= table["viewport"], table
        page_width = overflow(page)
        assert page_width["scroll"] <= page_width["viewport"], page_width


def test_a_run_is_started_from_plain_text_and_its_page_is_read_only(at, asteros_server: LiveServer):
    from playwright.sync_api import expect

    page, viewport = at
    page.goto(f"{asteros_server.url}/admin/cosmos/run/add/")
    page.select_option("select[name=kind]", "agent")
    page.fill("input[name=target]", "chat-agent")
    text = f"hello from the add form at {viewport['width']}"
    page.fill("textarea[name=input]", text)
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_be_visible()
    link = page.locator("#result_list tbody tr th a").first
    link.click()
    expect(page.locator("#asteros-live-status")).to_have_text("succeeded", timeout=TIMEOUT_MS)
    page.reload()
    expect(page.locator(".field-input")).to_contain_text(text)
    # A view, not a form: no Save buttons.
    expect(page.locator("input[name=_save]")).to_have_count(0)
    expect(page.locator("input[name=_continue]")).to_have_count(0)
    expect(page.locator("input[name=_addanother]")).to_have_count(0)
    duration = page.locator(".field-duration .readonly").inner_text().strip()
    assert re.fullmatch(r"\d+ (ms|s|min|h)( \d+ (s|min))?", duration), duration
    shot(page, name_of("admin-run-page", viewport))
    page.goto(f"{asteros_server.url}/admin/cosmos/run/")
    durations = page.locator("#result_list td.field-duration").all_inner_texts()
    assert durations and all("." not in value for value in durations), durations
    shot(page, name_of("admin-run-list", viewport))


def test_the_home_page(at, asteros_server: LiveServer):
    from playwright.sync_api import expect

    page, viewport = at
    page.goto(f"{asteros_server.url}/")
    expect(page.locator("#count-running")).to_be_visible()
    expect(page.locator("#recent")).to_be_visible()
    links = page.locator("#links a")
    for label in ("Admin", "Live dashboard", "REST API", "API docs", "A2A agent card", "MCP"):
        expect(links.filter(has_text=re.compile(f"^{label}$"))).to_have_count(1)
    shot(page, name_of("home", viewport))
    width = overflow(page)
    assert width["scroll"] <= width["viewport"], f"the home page scrolls sideways: {width}"
    page.locator("#links a", has_text=re.compile("^API docs$")).click()
    page.wait_for_url(re.compile(r".*/api/docs"))


def test_the_dashboard_and_its_durations(at, asteros_server: LiveServer):
    from playwright.sync_api import expect

    page, viewport = at
    page.goto(f"{asteros_server.url}/dashboard/")
    expect(page.locator("#conn")).to_have_text("live")
    shot(page, name_of("dashboard", viewport))
    # The dashboard's script formats durations by the same rules as the admin and the home page.
    samples = [0, 0.85, 0.9995, 1.5, 2.5, 59.6, 123.4, 3600, 3661, 90061]
    shown = page.evaluate("(values) => values.map((s) => window.asterosFormatDuration(s * 1000))", samples)
    assert shown == [format_duration(value) for value in samples]
    # The admin header links to the dashboard and the API docs.
    page.goto(f"{asteros_server.url}/admin/")
    expect(page.locator("#asteros-nav a", has_text="Dashboard")).to_have_attribute("href", "/dashboard/")
    expect(page.locator("#asteros-nav a", has_text="API docs")).to_have_attribute("href", re.compile(r"/api/docs$"))


def test_an_edit_shows_in_the_history_and_is_undone_by_a_restore(at, asteros_server: LiveServer):
    from playwright.sync_api import expect

    page, viewport = at
    change = f"{asteros_server.url}/admin/cosmos/agent/chat-agent/change/"
    page.goto(change)
    original = page.locator("#id_description").input_value()
    edited = f"Edited in the browser at {viewport['width']}px."
    page.fill("#id_description", edited)
    page.click("input[name=_continue]")
    expect(page.locator("#id_description")).to_have_value(edited)
    page.click("a.historylink")
    expect(page.locator("#revision-diff")).to_contain_text(f'+  "description": "{edited}"')
    shot(page, name_of("admin-agent-history", viewport))
    width = overflow(page)
    assert width["scroll"] <= width["viewport"], width  # nothing scrolls sideways, at either size
    # The row after the current one is the revision before the edit.
    page.locator("#revision-list tbody tr").nth(1).locator("input[type=submit]").click()
    expect(page.locator(".messagelist")).to_contain_text("restored as revision")
    page.goto(change)
    expect(page.locator("#id_description")).to_have_value(original)
