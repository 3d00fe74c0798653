"""``asteros run`` when the run stops for a person: the terminal shows the tool call or the
question, reads the decision from stdin, resolves it and follows the run to its end. At the end of
stdin the run is left waiting (exit 0, its id and how to resolve it), and ``asteros resolve``
decides later and follows the rest. Real subprocesses with stdin piped, on a fresh embedded
database."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest

from tests.support.processes import DATABASE_FILE, ROOT, copy_database, embedded_env, seeded_database

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]

MAKE_AGENTS = """
from cosmos.models import Agent
Agent.objects.create(id="careful", provider="scripted", tools=["calculator"], approvals={"calculator": "always"})
Agent.objects.create(
    id="curious", provider="scripted", tools=["ask_human"],
    parameters={"rules": [{"when": ".", "call": "ask_human", "arguments": {"question": "Which city?"}}]},
)
Agent.objects.create(
    id="counting", provider="scripted", tools=["ask_human"],
    parameters={"rules": [{"when": ".", "call": "ask_human",
                           "arguments": {"question": "How many?", "schema": {"type": "integer"}}}]},
)
"""


@pytest.fixture(scope="module")
def cli_database(tmp_path_factory, migrated_database):
    return seeded_database(migrated_database, tmp_path_factory.mktemp("cli"), ("shell", "-c", MAKE_AGENTS))


@pytest.fixture
def cli_env(tmp_path, cli_database):
    copy_database(cli_database, tmp_path / DATABASE_FILE)
    return embedded_env(tmp_path)


def asteros(env, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``manage.py asteros ...`` with ``stdin`` piped in (None: an empty stdin, at its end at once)."""
    return subprocess.run(
        [sys.executable, "manage.py", "asteros", *args],
        cwd=ROOT,
        env=env,
        input=stdin or "",
        capture_output=True,
        text=True,
        timeout=120,
    )


def rows(env, query: str) -> list[tuple]:
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///")) as db:
        return db.execute(query).fetchall()


def the_interrupt(env) -> tuple[str, str, str, str]:
    ((interrupt_id, *rest),) = rows(env, "SELECT id, status, decision, resolved_by FROM cosmos_interrupt")
    return (str(uuid.UUID(interrupt_id)), *rest)  # SQLite keeps uuids as bare hex


def run_statuses(env) -> list[str]:
    return [status for (status,) in rows(env, "SELECT status FROM cosmos_run ORDER BY created_at")]


def test_approve_on_the_terminal_runs_the_call_and_follows_the_run_to_its_end(cli_env):
    result = asteros(cli_env, "run", "careful", "what is 6*7?", stdin="approve\n")

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert '[approval] the agent wants to call calculator({"expression": "6*7"})' in result.stdout
    assert "[resumed]" in result.stdout and "[result] 42" in result.stdout
    assert result.stdout.rstrip().endswith("The result is 42.")
    _, status, decision, resolved_by = the_interrupt(cli_env)
    assert (status, decision) == ("approved", "approve") and re.fullmatch(r"cli:.+", resolved_by)
    assert run_statuses(cli_env) == ["succeeded"]


def test_edit_runs_the_call_with_the_typed_arguments(cli_env):
    result = asteros(cli_env, "run", "careful", "what is 6*7?", stdin='edit {"expression": "2*3"}\n')

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "[result] 6" in result.stdout


def test_reject_gives_the_model_the_reason(cli_env):
    result = asteros(cli_env, "run", "careful", "what is 6*7?", stdin="reject too expensive\n")

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "too expensive" in result.stdout
    assert the_interrupt(cli_env)[1] == "rejected"


def test_a_reply_it_cannot_read_asks_again(cli_env):
    result = asteros(cli_env, "run", "careful", "what is 6*7?", stdin="maybe\nedit [1, 2]\n\napprove\n")

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "Type approve, reject [why] or edit {json arguments}." in result.stdout
    assert "edit takes the new arguments as a JSON object" in result.stdout
    assert result.stdout.count("[approval]") == 4  # asked again after each of the three
    assert "[result] 42" in result.stdout


def test_a_question_takes_the_typed_answer(cli_env):
    result = asteros(cli_env, "run", "curious", "plan my trip", stdin="Paris\n")

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "[question] Which city?" in result.stdout
    assert "[result] Paris" in result.stdout
    assert the_interrupt(cli_env)[1:3] == ("answered", "answer")


def test_an_answer_that_does_not_match_the_schema_is_refused_and_asked_again(cli_env):
    result = asteros(cli_env, "run", "counting", "go", stdin="many\n3\n")

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert '(JSON matching {"type": "integer"})' in result.stdout
    assert "does not match the question's schema" in result.stdout
    assert "[result] 3" in result.stdout


def test_at_the_end_of_stdin_the_run_is_left_waiting_and_asteros_resolve_finishes_it(cli_env):
    left = asteros(cli_env, "run", "careful", "what is 6*7?")

    assert left.returncode == 0, left.stdout + left.stderr[-2000:]
    interrupt_id, status, _, _ = the_interrupt(cli_env)
    assert status == "pending" and run_statuses(cli_env) == ["interrupted"]
    run_id = uuid.UUID(rows(cli_env, "SELECT id FROM cosmos_run")[0][0])
    assert f"Run {run_id} is waiting for a decision" in left.stdout
    assert f"python manage.py asteros resolve {interrupt_id} approve" in left.stdout

    resolved = asteros(cli_env, "resolve", interrupt_id, "approve")

    assert resolved.returncode == 0, resolved.stdout + resolved.stderr[-2000:]
    assert f"interrupt {interrupt_id} approved" in resolved.stdout
    assert "[result] 42" in resolved.stdout and resolved.stdout.rstrip().endswith("The result is 42.")
    assert "[approval]" not in resolved.stdout  # it follows from the decision on
    assert run_statuses(cli_env) == ["succeeded"]


def test_asteros_resolve_refuses_a_bad_reply_an_unknown_id_and_a_second_decision(cli_env):
    asteros(cli_env, "run", "careful", "what is 6*7?")
    interrupt_id = the_interrupt(cli_env)[0]

    bad = asteros(cli_env, "resolve", interrupt_id, "maybe")
    unknown = asteros(cli_env, "resolve", "00000000-0000-0000-0000-000000000000", "approve")
    assert asteros(cli_env, "resolve", interrupt_id, "reject").returncode == 0
    again = asteros(cli_env, "resolve", interrupt_id, "approve")

    assert bad.returncode != 0 and "invalid_decision: Type approve" in bad.stderr
    assert unknown.returncode != 0 and "not_found" in unknown.stderr
    assert again.returncode != 0 and "already_resolved" in again.stderr
    assert the_interrupt(cli_env)[1] == "rejected"


def test_ctrl_c_at_the_prompt_cancels_the_waiting_run_and_exits_130(cli_env):
    process = subprocess.Popen(
        [sys.executable, "manage.py", "asteros", "run", "careful", "what is 6*7?"],
        cwd=ROOT,
        env=cli_env | {"PYTHONFAULTHANDLER": "1"},
        stdin=subprocess.PIPE,  # kept open: nobody types, the prompt waits
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while run_statuses(cli_env) != ["interrupted"]:
            assert time.monotonic() < deadline and process.poll() is None, "the run never paused"
            time.sleep(0.1)
        time.sleep(0.5)  # the prompt is up

        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)  # stdin still open: the blocked read must not keep it alive
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            pytest.fail(f"asteros run did not end 30 s after Ctrl-C at the prompt:\n{process.stderr.read()[-6000:]}")
        stdout = process.stdout.read()
    finally:
        process.stdin.close()
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130
    assert "[approval]" in stdout and "cancelling" in stdout
    assert run_statuses(cli_env) == ["cancelled"]
    assert the_interrupt(cli_env)[1] == "cancelled"
