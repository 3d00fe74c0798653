"""``asteros run`` of a star or a workflow, and how the target is named: ``kind:id`` or an id only
one kind has. Each child run (a member, a step) is printed under its label, its lines in order,
before the parent's answer; an approval asked by a member is answered on the terminal as for an
agent. Real subprocesses on a fresh embedded database, scripted models."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import DATABASE_FILE, ROOT, copy_database, embedded_env, seeded_database

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]

# Two members whose answers are three lines each, paced so that they stream at the same time.
MAKE_DEFINITIONS = """
from cosmos.models import Agent
from stars.models import Membership, Role, Star
from workflows.models import Workflow

def paced(agent_id, word):
    reply = "\\n".join(f"{word} {n}" for n in ("one", "two", "three"))
    return Agent.objects.create(
        id=agent_id, provider="scripted", parameters={"reply": reply, "tokens_per_second": 60}
    )

alpha, beta = paced("alpha", "alpha"), paced("beta", "beta")
boss = Agent.objects.create(id="boss", provider="scripted", parameters={"rules": [
    {"when": ".", "call": "delegate", "arguments": {"member": "alpha", "instruction": "go"}},
    {"when": ".", "call": "delegate", "arguments": {"member": "beta", "instruction": "go"}},
]})
careful = Agent.objects.create(
    id="careful", provider="scripted", tools=["calculator"], approvals={"calculator": "always"}
)
crew = Star.objects.create(id="crew", name="Crew", mode="delegate")
Membership.objects.create(star=crew, agent=boss, name="lead", role=Role.LEADER, order=0)
Membership.objects.create(star=crew, agent=alpha, name="alpha", role=Role.WORKER, order=1, description="a")
Membership.objects.create(star=crew, agent=beta, name="beta", role=Role.WORKER, order=2, description="b")
checked = Star.objects.create(id="checked", name="Checked", mode="delegate")
Membership.objects.create(star=checked, agent=careful, name="calc", role=Role.LEADER, order=0)
Workflow.objects.create(id="fan-out", name="Fan out", definition={
    "steps": [{"name": "both", "type": "parallel", "branches": [
        {"name": "a", "type": "agent", "agent": "alpha", "prompt": "{{ input }}"},
        {"name": "b", "type": "agent", "agent": "beta", "prompt": "{{ input }}"},
    ]}],
    "output": "{{ 'DONE: both answered' if steps.a.output and steps.b.output else 'MISSING' }}",
})
# One id, two kinds.
Agent.objects.create(id="twin", provider="scripted")
Star.objects.create(id="twin", name="Twin", mode="delegate")
"""


@pytest.fixture(scope="module")
def cli_database(tmp_path_factory, migrated_database):
    folder = tmp_path_factory.mktemp("cli-kinds")
    return seeded_database(migrated_database, folder, ("asteros", "demo"), ("shell", "-c", MAKE_DEFINITIONS))


@pytest.fixture
def cli_env(tmp_path, cli_database):
    copy_database(cli_database, tmp_path / DATABASE_FILE)
    return embedded_env(tmp_path) | {"ANTHROPIC_API_KEY": ""}


def asteros(env, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "asteros", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def labelled(stdout: str, label: str) -> list[str]:
    prefix = f"[{label}] "
    return [line.removeprefix(prefix) for line in stdout.splitlines() if line.startswith(prefix)]


def last_labelled_line(stdout: str) -> int:
    return max(i for i, line in enumerate(stdout.splitlines()) if line.startswith("["))


def test_a_star_prints_each_members_lines_under_its_name_in_order_then_the_answer(cli_env):
    result = asteros(cli_env, "run", "star:crew", "plan it")

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert labelled(result.stdout, "alpha") == ["alpha one", "alpha two", "alpha three"]
    assert labelled(result.stdout, "beta") == ["beta one", "beta two", "beta three"]
    # The leader is a child run too; its tool calls show under its name.
    assert any(line.startswith("[tool delegate(") for line in labelled(result.stdout, "lead"))
    lines = result.stdout.splitlines()
    answer = next(i for i, line in enumerate(lines) if not line.startswith("["))
    assert answer > last_labelled_line(result.stdout), result.stdout  # the star's answer comes last
    assert "alpha one" in "\n".join(lines[answer:]) and "beta three" in "\n".join(lines[answer:])


def test_a_workflow_prints_each_steps_lines_under_its_name_in_order_then_its_output(cli_env):
    result = asteros(cli_env, "run", "workflow:fan-out", "go")

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert labelled(result.stdout, "step a") == ["alpha one", "alpha two", "alpha three"]
    assert labelled(result.stdout, "step b") == ["beta one", "beta two", "beta three"]
    assert result.stdout.splitlines()[-1] == "DONE: both answered"
    assert last_labelled_line(result.stdout) < len(result.stdout.splitlines()) - 1


def test_a_bare_id_that_one_kind_has_runs_that_kind(cli_env):
    result = asteros(cli_env, "run", "fan-out", "go")

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert labelled(result.stdout, "step a") == ["alpha one", "alpha two", "alpha three"]


def test_an_agent_prefix_runs_the_agent_of_an_id_two_kinds_have(cli_env):
    result = asteros(cli_env, "run", "agent:twin", "hello")

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert result.stdout.strip() == "(offline scripted model) You said: hello"


def test_an_ambiguous_id_is_refused_with_the_choices(cli_env):
    result = asteros(cli_env, "run", "twin", "hello")

    assert result.returncode != 0
    assert "ambiguous_target: 'twin' is the id of more than one definition; name one of: agent:twin, star:twin." in (
        result.stderr
    )
    assert "embedded worker started" not in result.stderr  # refused before anything started


def test_an_unknown_id_or_kind_is_a_clear_error(cli_env):
    unknown = asteros(cli_env, "run", "nobody", "hello")
    wrong_kind = asteros(cli_env, "run", "team:crew", "hello")
    missing_star = asteros(cli_env, "run", "star:nobody", "hello")

    assert unknown.returncode != 0 and "not_found: No agent, star or workflow with id 'nobody'." in unknown.stderr
    assert wrong_kind.returncode != 0
    assert "unknown_kind: Unknown run kind 'team'; known kinds: agent, star, workflow." in wrong_kind.stderr
    assert missing_star.returncode != 0 and "not_found:" in missing_star.stderr and "nobody" in missing_star.stderr


def test_a_members_approval_is_answered_on_the_terminal_and_the_star_finishes(cli_env):
    result = asteros(cli_env, "run", "star:checked", "what is 6*7?", stdin="approve\n")

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert '[approval] the agent wants to call calculator({"expression": "6*7"})' in result.stdout
    assert "[calc] [result] 42" in result.stdout
    assert result.stdout.rstrip().endswith("The result is 42.")


def test_a_star_left_waiting_is_finished_by_asteros_resolve_which_follows_the_star(cli_env):
    left = asteros(cli_env, "run", "checked", "what is 6*7?")
    assert left.returncode == 0, left.stdout + left.stderr[-2000:]
    command = next(line for line in left.stdout.splitlines() if line.startswith("Resolve it with:"))
    interrupt_id = command.split()[-2]

    resolved = asteros(cli_env, "resolve", interrupt_id, "approve")

    assert resolved.returncode == 0, resolved.stdout + resolved.stderr[-2000:]
    # The member's rest under its name, then the star's answer.
    assert "[calc] [result] 42" in resolved.stdout
    assert resolved.stdout.rstrip().endswith("The result is 42.")
    assert "[approval]" not in resolved.stdout
