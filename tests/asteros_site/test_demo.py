"""``asteros demo``: it keeps a user's edits, recreates what is missing, ``--reset`` restores; and
offline (the scripted model) the demo shows what the product does, run by the real worker."""

from __future__ import annotations

import json
import re

import pytest

from asteros_site.demo import DEMO_AGENTS, load_demo
from cosmos.models import TERMINAL_STATUSES, Agent, Interrupt, Run, RunEvent, RunStatus
from cosmos.services.runs import start_run
from interfaces.connectors.models import MCPServer
from stars.models import Membership, Role, Star
from tests.asteros_site.test_commands import command
from tests.support.runs import events, wait_for_run
from workflows.models import Workflow

DEMO_IDS = {*DEMO_AGENTS, "mcp-agent"}


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


# --- create what is missing, keep what exists, --reset restores


@pytest.mark.django_db
def test_demo_twice_keeps_an_edited_system_prompt(offline):
    command("asteros", "demo")
    Agent.objects.filter(id="agent-1").update(system_prompt="my own prompt", name="mine")
    Star.objects.filter(id="chat-team").update(description="my team")

    output = command("asteros", "demo")

    agent = Agent.objects.get(id="agent-1")
    assert (agent.system_prompt, agent.name) == ("my own prompt", "mine")
    assert Star.objects.get(id="chat-team").description == "my team"
    assert "demo: created nothing; kept 11 rows as they are (--reset restores them)" in output, output


@pytest.mark.django_db
def test_demo_recreates_a_deleted_row_and_only_that_one(offline):
    command("asteros", "demo")
    Agent.objects.filter(id="chat-agent").update(system_prompt="edited")
    Agent.objects.filter(id="slow-agent").delete()
    Membership.objects.filter(star_id="chat-team", agent_id="agent-2").delete()

    output = command("asteros", "demo")

    assert Agent.objects.get(id="slow-agent").parameters["tokens_per_second"] > 0
    assert Membership.objects.get(star_id="chat-team", agent_id="agent-2").role == Role.WORKER
    assert Agent.objects.get(id="chat-agent").system_prompt == "edited"
    assert "agent slow-agent" in output and "membership chat-team/agent-2" in output, output


@pytest.mark.django_db
def test_demo_reset_restores_every_demo_row(offline):
    command("asteros", "demo")
    original = Agent.objects.get(id="agent-1").system_prompt
    Agent.objects.filter(id="agent-1").update(system_prompt="my own prompt", parameters={})
    Agent.objects.filter(id="approval-agent").update(approvals={})
    Workflow.objects.filter(id="demo-workflow").update(name="mine")
    Membership.objects.create(star_id="chat-team", agent_id="chat-agent", name="extra", role=Role.WORKER, order=2)
    MCPServer.objects.filter(name="demo").update(enabled=False)

    output = command("asteros", "demo", "--reset")

    agent = Agent.objects.get(id="agent-1")
    assert agent.system_prompt == original and agent.parameters["rules"], "the edit is undone"
    assert Agent.objects.get(id="approval-agent").approvals == {"calculator": "always"}
    assert Workflow.objects.get(id="demo-workflow").name == "Demo workflow"
    members = dict(Membership.objects.filter(star_id="chat-team").values_list("agent_id", "role"))
    assert members == {"agent-1": Role.LEADER, "agent-2": Role.WORKER}, "an added member is dropped"
    assert MCPServer.objects.get(name="demo").enabled
    assert "demo reset: restored 11 rows, created nothing" in output, output
    assert set(Agent.objects.values_list("id", flat=True)) == DEMO_IDS
    for agent in Agent.objects.all():
        agent.full_clean()


# --- offline, the demo shows the product


@pytest.fixture
def demo(offline, transactional_db):
    load_demo()


def run_of(kind: str, target: str, message: str, timeout: float = 60, **kwargs) -> Run:
    return wait_for_run(start_run(kind, target, message, origin="api")[0].id, timeout, **kwargs)


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_worker")
def test_the_chat_team_leader_delegates_to_agent_2(demo):
    run = run_of("star", "chat-team", "octopuses")

    assert run.status == RunStatus.SUCCEEDED, run.error
    children = list(Run.objects.filter(parent=run).order_by("created_at"))
    leader = next(c for c in children if c.target == "agent-1")
    delegated = list(Run.objects.filter(target="agent-2", parent__in=[run, leader]))
    assert len(delegated) == 1, [(c.target, c.parent_id) for c in Run.objects.all()]
    worker = delegated[0]
    assert worker.status == RunStatus.SUCCEEDED and "octopuses" in worker.input["message"]
    calls = [e for e in events(leader.id) if e["type"] == "TOOL_CALL_START"]
    assert [c["toolCallName"] for c in calls] == ["delegate"]
    assert worker.output and worker.output in run.output, (worker.output, run.output)


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_worker")
def test_the_demo_workflow_output_is_readable_text(demo, admin_client):
    run = run_of("workflow", "demo-workflow", "octopuses", timeout=90)

    assert run.status == RunStatus.SUCCEEDED, run.error
    output = run.output
    assert isinstance(output, str)
    assert "octopuses" in output
    assert not output.lstrip().startswith(("{", "[", "(")), output
    assert "You said" not in output and "\\n" not in output and "{'" not in output, output
    assert len(output) < 400, "a paragraph, not every prompt nested in the next"
    research = Run.objects.get(parent=run, metadata__workflow_step="research")
    assert research.output.startswith("Notes on octopuses:")
    # The admin shows a text answer as text, not as a quoted JSON string.
    page = admin_client.get(f"/admin/cosmos/run/{research.id}/change/").content.decode()
    shown = re.search(r'<pre style="white-space: pre-wrap; margin: 0">(.*?)</pre>', page, re.S)
    assert shown and shown.group(1) == research.output, "line breaks kept, no quotes, no escapes"


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_worker")
def test_the_slow_agent_streams_text_over_time(demo):
    run = run_of("agent", "slow-agent", "hello")

    assert run.status == RunStatus.SUCCEEDED, run.error
    deltas = list(
        RunEvent.objects.filter(run_id=run.id, type="TEXT_MESSAGE_CONTENT")
        .order_by("seq")
        .values_list("created_at", flat=True)
    )
    assert len(deltas) >= 10, len(deltas)
    assert (deltas[-1] - deltas[0]).total_seconds() >= 2, "spread over seconds, not one burst"
    assert "hello" in run.output


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_worker")
def test_the_chat_agent_calls_a_tool(demo):
    run = run_of("agent", "chat-agent", "What is 6*7?")

    assert run.status == RunStatus.SUCCEEDED, run.error
    started = [e for e in events(run.id) if e["type"] == "TOOL_CALL_START"]
    results = [e for e in events(run.id) if e["type"] == "TOOL_CALL_RESULT"]
    assert [e["toolCallName"] for e in started] == ["calculator"]
    assert results[0]["content"] == "42" and "42" in run.output


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_worker")
def test_the_approval_agent_waits_for_a_person(demo, api_client):
    run = run_of("agent", "approval-agent", "What is 6*7?", statuses=(RunStatus.INTERRUPTED, *TERMINAL_STATUSES))

    assert run.status == RunStatus.INTERRUPTED, (run.status, run.error)
    interrupt = Interrupt.objects.get(run_id=run.id)
    assert (interrupt.kind, interrupt.status) == ("approval", "pending")
    assert "calculator" in json.dumps(interrupt.request) and "6*7" in json.dumps(interrupt.request)
    assert not [e for e in events(run.id) if e["type"] == "TOOL_CALL_RESULT"], "the tool waits for the person"

    # The person approves (the REST door here; the dashboard and the CLI do the same): the run ends.
    response = api_client.post(f"/api/runs/{run.id}/resume", {"decision": "approve"}, format="json")
    assert response.status_code == 202, response.content
    finished = wait_for_run(run.id, 60)
    assert finished.status == RunStatus.SUCCEEDED and finished.output == "The result is 42."


@pytest.mark.slow
@pytest.mark.usefixtures("embedded_worker")
def test_the_mcp_agent_calls_the_demo_mcp_tool(demo):
    run = run_of("agent", "mcp-agent", "What is a star?")

    assert run.status == RunStatus.SUCCEEDED, run.error
    started = [e["toolCallName"] for e in events(run.id) if e["type"] == "TOOL_CALL_START"]
    assert started == ["mcp__demo__glossary"]
    assert re.search(r"A Star is a team of agents", run.output)
