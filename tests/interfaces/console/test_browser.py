"""The dashboard in headless Chromium (Debian's ``chromium``, driven by Playwright through
``executable_path``; ``playwright install`` is never run): log into the admin, open the
dashboard, start a run of the demo agent, watch its text stream in and its status turn
succeeded. Screenshots go to ``$ASTEROS_TEST_ARTIFACTS`` (default ``artifacts/``, git-ignored).

Skipped when Chromium or Playwright is missing, except in CI (``CI`` set), where that fails.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interfaces.agui.live import ADMIN_PASSWORD, ADMIN_USER, LiveServer
from tests.support.processes import ROOT, embedded_env, python_json

CHROMIUM = os.environ.get("ASTEROS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("ASTEROS_TEST_ARTIFACTS") or ROOT / "artifacts")
TIMEOUT_MS = 20_000

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


def missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed (pip install -r requirements.txt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def logged_in(browser, asteros_server: LiveServer) -> Iterator[tuple[object, list[str]]]:
    """One browser page, logged into the admin as staff, for the tests of this module."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{asteros_server.url}/admin/login/?next=/dashboard/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/.*"))
    yield page, errors
    context.close()


@pytest.fixture
def page(logged_in, asteros_server: LiveServer) -> Iterator[object]:
    page, errors = logged_in
    if "/dashboard/" not in page.url or "?" in page.url:
        page.goto(f"{asteros_server.url}/dashboard/")
    errors.clear()
    yield page
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_start_a_run_of_the_demo_agent_and_watch_it(page, asteros_server: LiveServer):
    from playwright.sync_api import expect

    expect(page.locator("#conn")).to_have_text("live")
    expect(page.locator('#cards [data-target="agent:chat-agent"]')).to_be_visible()
    page.select_option("#start-target", "agent:chat-agent")
    page.fill("#start-input", "hello from chromium")
    shot(page, "dashboard-before-run.png")
    page.click("#start-button")

    message = page.locator("#watch-body .run-view.depth-0 .msg.assistant .text").first
    expect(message).to_have_text("(offline scripted model) You said: hello from chromium")
    expect(page.locator("#watch-status")).to_have_text("succeeded")
    run_id = page.locator("#watch-title").inner_text().strip()
    row = page.locator(f'#runs-body tr[data-run-id="{run_id}"]')
    expect(row.locator(".status")).to_have_text("succeeded")
    expect(row).to_have_class(re.compile("selected"))
    shot(page, "dashboard-run-succeeded.png")

    # A tool call opens and closes in the watch panel.
    page.fill("#start-input", "What is 6 * 7?")
    page.click("#start-button")
    tool = page.locator("#watch-body .tool.closed").first
    expect(tool.locator(".tname")).to_contain_text("calculator")
    expect(tool.locator(".result")).to_contain_text("42")
    expect(page.locator("#watch-body .msg.assistant .text").last).to_have_text("The result is 42.")
    expect(page.locator("#watch-status")).to_have_text("succeeded")
    shot(page, "dashboard-tool-call.png")


def test_the_demo_slow_agent_streams_visibly(page, asteros_server: LiveServer):
    """The demo's slow-agent: its answer grows on the page a few words at a time."""
    from playwright.sync_api import expect

    from asteros_site.demo import SLOW_REPLY

    expect(page.locator("#conn")).to_have_text("live")
    page.select_option("#start-target", "agent:slow-agent")
    page.fill("#start-input", "watch me")
    page.click("#start-button")

    text = page.locator("#watch-body .run-view.depth-0 .msg.assistant .text").first
    expect(text).to_contain_text("This answer streams")
    partial = text.inner_text()
    assert page.locator("#watch-status").inner_text() != "succeeded", "the first words came before the end"
    final = SLOW_REPLY.replace("{input}", "watch me")
    expect(text).to_have_text(final, timeout=30_000)
    expect(page.locator("#watch-status")).to_have_text("succeeded")
    assert 0 < len(partial) < len(final) / 2, partial
    shot(page, "dashboard-slow-agent.png")


def test_the_usage_panel_shows_todays_tokens_and_cost(page, asteros_server: LiveServer):
    from playwright.sync_api import expect

    expect(page.locator("#conn")).to_have_text("live")
    page.select_option("#start-target", "agent:chat-agent")
    page.fill("#start-input", "count my tokens")
    page.click("#start-button")
    expect(page.locator("#watch-status")).to_have_text("succeeded")

    # The summary the dashboard receives every second carries today's usage.
    row = page.locator('#u-agents tbody tr[data-name="chat-agent"]')
    expect(row).to_be_visible()
    expect(row.locator(".cost")).to_have_text("0.00 USD")  # the scripted model's price is 0
    expect(page.locator("#u-cost")).to_have_text(re.compile(r"^\d+\.\d+ USD$"))
    expect(page.locator("#u-tokens")).to_have_text(re.compile(r"^[\d,]+$"))
    assert int(page.locator("#u-runs").inner_text().replace(",", "")) >= 1
    shot(page, "dashboard-usage.png")


def test_a_workflows_child_runs_nest_and_the_admin_shows_the_run(page, asteros_server: LiveServer):
    from playwright.sync_api import expect

    expect(page.locator("#conn")).to_have_text("live")
    page.select_option("#start-target", "workflow:agui-flow")
    page.fill("#start-input", "plan a picnic")
    page.click("#start-button")
    child = page.locator("#watch-body .child .run-view.depth-1").first
    expect(child.locator(".msg.assistant .text")).to_contain_text("plan a picnic")
    expect(page.locator("#watch-status")).to_have_text("succeeded")
    expect(page.locator("#watch-body .state pre").first).to_contain_text('"succeeded"')
    shot(page, "dashboard-workflow-nested.png")

    run_id = page.locator("#watch-title").inner_text().strip()
    page.click("#watch-admin")
    expect(page.locator("#asteros-live")).to_contain_text("succeeded")
    expect(page.locator("#asteros-children tbody tr")).to_have_count(1)
    expect(page.locator("table[data-asteros-timeline] tr[data-seq]").first).to_be_visible()
    expect(page.get_by_role("link", name="Watch live").first).to_have_attribute(
        "href", re.compile(f"/dashboard/\\?run={run_id}")
    )
    shot(page, "admin-run-page.png")


# --- human in the loop: a run waits for approval; a reviewer approves it from the dashboard or the admin

APPROVAL_AGENT = "browser-approvals"
SEED_APPROVAL_AGENT = f"""
import json
import django
django.setup()
from cosmos.models import Agent
Agent.objects.update_or_create(id="{APPROVAL_AGENT}", defaults=dict(
    name="Needs approval", provider="scripted", model="scripted-offline",
    tools=["calculator"], approvals={{"calculator": "always"}},
))
print(json.dumps("seeded"))
"""


@pytest.fixture(scope="module")
def approval_agent_live(asteros_server: LiveServer) -> str:
    """An agent of the live server whose calculator calls wait for a person's approval."""
    env = embedded_env(asteros_server.directory, ASTEROS_LOG_LEVEL="warning")
    assert python_json(SEED_APPROVAL_AGENT, env) == "seeded"
    return APPROVAL_AGENT


def start_waiting_run(page, asteros_server: LiveServer, agent_id: str) -> tuple[str, object]:
    """Start a run of ``agent_id`` from the dashboard; its interrupt's card, once it waits."""
    from playwright.sync_api import expect

    page.goto(f"{asteros_server.url}/dashboard/")  # a fresh snapshot names the new agent
    expect(page.locator("#conn")).to_have_text("live")
    page.select_option("#start-target", f"agent:{agent_id}")
    page.fill("#start-input", "What is 6 * 7?")
    page.click("#start-button")
    expect(page.locator("#watch-status")).to_have_text("interrupted")
    run_id = page.locator("#watch-title").inner_text().strip()
    card = page.locator(f'#waiting .interrupt[data-run-id="{run_id}"]')
    expect(card).to_be_visible()
    return run_id, card


def test_approve_a_waiting_tool_call_on_the_dashboard(page, asteros_server: LiveServer, approval_agent_live):
    from playwright.sync_api import expect

    run_id, card = start_waiting_run(page, asteros_server, approval_agent_live)
    expect(card.locator(".isubject")).to_have_text("tool calculator")
    expect(card.locator("textarea.iargs")).to_have_value(re.compile(r'"expression": "6 ?\* ?7"'))
    expect(page.locator(f'#runs-body tr[data-run-id="{run_id}"] .status')).to_have_text("interrupted")
    expect(page.locator("#watch-body .note").last).to_contain_text("waiting for a person: tool calculator")
    shot(page, "dashboard-waiting-for-approval.png")

    card.locator('button[data-decision="approve"]').click()

    expect(page.locator("#watch-status")).to_have_text("succeeded")
    expect(page.locator("#watch-body .msg.assistant .text").last).to_have_text("The result is 42.")
    expect(card).to_have_count(0)
    expect(page.locator("#waiting")).to_be_hidden()
    shot(page, "dashboard-approved.png")


def test_a_waiting_run_watched_from_the_list_stays_shown_as_waiting(
    page, asteros_server: LiveServer, approval_agent_live
):
    """The run's row (interrupted) is known before its replayed events arrive; the replayed
    RUN_STARTED must not turn the shown status back to running."""
    from playwright.sync_api import expect

    run_id, _card = start_waiting_run(page, asteros_server, approval_agent_live)
    page.goto(f"{asteros_server.url}/dashboard/")
    row = page.locator(f'#runs-body tr[data-run-id="{run_id}"]')
    expect(row.locator(".status")).to_have_text("interrupted")
    row.click()
    expect(page.locator("#watch-title")).to_have_text(run_id)
    expect(page.locator("#watch-body .note").last).to_contain_text("waiting for a person: tool calculator")
    expect(page.locator("#watch-status")).to_have_text("interrupted")

    page.locator(f'#waiting .interrupt[data-run-id="{run_id}"] button[data-decision="reject"]').click()
    expect(page.locator("#watch-status")).not_to_have_text("interrupted")


def test_approve_a_waiting_tool_call_in_the_admin(page, asteros_server: LiveServer, approval_agent_live):
    from playwright.sync_api import expect

    run_id, card = start_waiting_run(page, asteros_server, approval_agent_live)
    interrupt_id = card.get_attribute("data-interrupt-id")

    page.goto(f"{asteros_server.url}/admin/cosmos/interrupt/?status__exact=pending")
    row = page.locator("#result_list tbody tr").filter(has=page.locator(f'input[value="{interrupt_id}"]'))
    expect(row).to_contain_text("calculator")
    expect(row.locator(f'a[href*="{run_id}"]')).to_be_visible()
    shot(page, "admin-approvals-queue.png")
    row.locator("input[name=_selected_action]").check()
    page.select_option("select[name=action]", "approve_selected")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("1 interrupt(s) approved.")

    page.goto(f"{asteros_server.url}/admin/cosmos/run/{run_id}/change/")
    expect(page.locator("#asteros-live-status")).to_have_text("succeeded")
    expect(page.locator("#interrupts-group")).to_contain_text("approved")
    shot(page, "admin-run-approved.png")


def test_edit_the_arguments_and_approve_on_the_admins_resolve_page(
    page, asteros_server: LiveServer, approval_agent_live
):
    from playwright.sync_api import expect

    run_id, card = start_waiting_run(page, asteros_server, approval_agent_live)
    interrupt_id = card.get_attribute("data-interrupt-id")

    page.goto(f"{asteros_server.url}/admin/cosmos/interrupt/{interrupt_id}/change/")
    page.click("#asteros-resolve")
    expect(page.locator("#asteros-subject")).to_contain_text("calculator")
    page.check('input[name=decision][value="edit"]')
    page.fill("textarea[name=arguments]", "{not json")
    page.click("input[name=_resolve]")
    expect(page.locator(".field-arguments .errorlist")).to_be_visible()
    page.check('input[name=decision][value="edit"]')
    page.fill("textarea[name=arguments]", '{"expression": "2*3"}')
    page.fill("input[name=message]", "a smaller sum")
    shot(page, "admin-resolve-edit.png")
    page.click("input[name=_resolve]")
    expect(page.locator("ul.messagelist")).to_contain_text(f"Interrupt {interrupt_id[:8]} approved.")

    page.goto(f"{asteros_server.url}/admin/cosmos/run/{run_id}/change/")
    expect(page.locator("#asteros-live-status")).to_have_text("succeeded")
    expect(page.locator("table[data-asteros-timeline]")).to_contain_text('"content": "6"')
