"""``python manage.py asteros run``: streams the answer, exits 0 on success and non-zero with
the error on failure; Ctrl-C cancels the run. Runs as a user would, in a subprocess on a fresh
embedded database."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.support.processes import DATABASE_FILE, ROOT, copy_database, embedded_env, manage, seeded_database

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]

MAKE_AGENTS = """
from cosmos.models import Agent
Agent.objects.create(id="keyless", provider="anthropic", model="claude-sonnet-4-5")
Agent.objects.create(id="sleepy", provider="scripted", parameters={"ttft_ms": 60000})
"""


@pytest.fixture(scope="module")
def cli_database(tmp_path_factory, migrated_database):
    folder = tmp_path_factory.mktemp("cli")
    return seeded_database(migrated_database, folder, ("asteros", "demo"), ("shell", "-c", MAKE_AGENTS))


@pytest.fixture
def cli_env(tmp_path, cli_database):
    copy_database(cli_database, tmp_path / DATABASE_FILE)
    return embedded_env(tmp_path) | {"ANTHROPIC_API_KEY": ""}


def run_statuses(env) -> list[tuple[str, str]]:
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return db.execute("SELECT target, status FROM cosmos_run ORDER BY created_at").fetchall()


def test_a_run_streams_its_tool_call_and_answer_and_exits_0(cli_env):
    result = manage(cli_env, "asteros", "run", "chat-agent", "what is 2+3?")

    assert result.returncode == 0, result.stderr[-2000:]
    assert '[tool calculator({"expression": "2+3"})]' in result.stdout
    assert "[result] 5" in result.stdout
    assert result.stdout.rstrip().endswith("The result is 5.")


def test_a_session_continues_the_conversation(cli_env):
    for message in ("first", "second"):
        assert manage(cli_env, "asteros", "run", "chat-agent", message, "--session", "s-1").returncode == 0
    assert [status for _, status in run_statuses(cli_env)] == ["succeeded", "succeeded"]


def test_a_failing_run_exits_non_zero_with_the_error(cli_env):
    result = manage(cli_env, "asteros", "run", "keyless", "hello")

    assert result.returncode == 1
    assert "error: model_auth" in result.stdout and "ANTHROPIC_API_KEY" in result.stdout


def test_an_unknown_agent_is_a_clear_error(cli_env):
    result = manage(cli_env, "asteros", "run", "no-such-agent", "hello")

    assert result.returncode != 0
    assert "not_found: No agent, star or workflow with id 'no-such-agent'." in result.stderr


def test_ctrl_c_cancels_the_run_and_exits_130(cli_env):
    process = subprocess.Popen(
        [sys.executable, "manage.py", "asteros", "run", "sleepy", "take a minute"],
        cwd=ROOT,
        env=cli_env | {"PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while run_statuses(cli_env) != [("sleepy", "running")]:
        assert time.monotonic() < deadline and process.poll() is None, "the run never started"
        time.sleep(0.1)

    process.send_signal(signal.SIGINT)
    try:
        stdout, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack to stderr
        _, stderr = process.communicate(timeout=10)
        pytest.fail(f"asteros run did not end 30 s after Ctrl-C; its threads:\n{stderr[-6000:]}")

    assert process.returncode == 130
    assert "cancelling" in stdout
    assert run_statuses(cli_env) == [("sleepy", "cancelled")]
