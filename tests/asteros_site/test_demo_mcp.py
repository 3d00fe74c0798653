"""The demo's MCP server: the demo agent calls its tools over stdio, offline, as a user sees it."""

from __future__ import annotations

import pytest

from asteros_site.demo import load_demo
from cosmos.models import RunStatus
from cosmos.services.runs import start_run
from tests.support.runs import events, wait_for_run

pytestmark = pytest.mark.slow


@pytest.fixture
def demo(monkeypatch, transactional_db):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    load_demo()


@pytest.mark.parametrize(
    ("question", "tool", "answer"),
    [
        ("What is a star?", "mcp__demo__glossary", "A Star is a team of agents"),
        ("Convert 3 km to mi", "mcp__demo__convert_units", "3 km = 1.86411 mi"),
    ],
)
def test_the_demo_agent_calls_the_demo_mcp_server(demo, embedded_worker, question, tool, answer):
    run = wait_for_run(start_run("agent", "mcp-agent", question, origin="api")[0].id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    started = [e for e in events(run.id) if e["type"] == "TOOL_CALL_START"]
    results = [e for e in events(run.id) if e["type"] == "TOOL_CALL_RESULT"]
    assert [e["toolCallName"] for e in started] == [tool]
    assert answer in results[0]["content"]
    assert answer in run.output
