"""parallel, loop, condition and router steps. Concurrency is read from the child runs' own
start and end timestamps (which runs overlapped), never from wall-clock durations."""

from __future__ import annotations

import pytest

from cosmos.models import RunStatus
from tests.workflows.helpers import (
    child_of_step,
    children,
    final_state,
    max_overlap,
    run_workflow,
    scripted,
    step_events,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]


def agent_step(name: str, agent, prompt: str | None = None, **fields) -> dict:
    step = {"name": name, "type": "agent", "agent": agent.id, **fields}
    if prompt is not None:
        step["prompt"] = prompt
    return step


# --- parallel


def fan_out(agent, count: int, **fields) -> dict:
    branches = [agent_step(f"b{i}", agent, f"{i}:{{{{ previous }}}}") for i in range(count)]
    return {"name": "fan", "type": "parallel", "branches": branches, **fields}


def test_parallel_branches_overlap_and_return_their_outputs_by_name():
    slow = scripted("<{input}>", ttft_ms=1000)
    run = run_workflow({"steps": [fan_out(slow, 4)]}, "x")

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == {"b0": "<0:x>", "b1": "<1:x>", "b2": "<2:x>", "b3": "<3:x>"}
    assert max_overlap(children(run)) == 4


def test_max_concurrency_bounds_the_branches_running_at_once():
    slow = scripted("<{input}>", ttft_ms=600)
    run = run_workflow({"steps": [fan_out(slow, 5, max_concurrency=2)]})

    assert run.status == RunStatus.SUCCEEDED, run.error
    runs = children(run)
    assert len(runs) == 5 and max_overlap(runs) == 2


def test_multi_step_branches_run_in_order_and_see_the_steps_before_them():
    agent = scripted("[{input}]")
    branch_a = {
        "name": "a",
        "steps": [agent_step("a1", agent, "a1"), agent_step("a2", agent, "{{ steps.a1.output }}+")],
    }
    run = run_workflow(
        {
            "steps": [
                {"name": "fan", "type": "parallel", "branches": [branch_a, agent_step("b", agent, "b")]},
                agent_step("join", agent, "{{ steps.a2.output }} {{ steps.fan.output.b }}"),
            ]
        }
    )

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert final_state(run.id)["steps"]["fan"]["output"] == {"a": "[[a1]+]", "b": "[b]"}
    assert run.output == "[[[a1]+] [b]]"


def test_fail_fast_cancels_the_running_branches_and_skips_the_waiting_ones():
    failing, warmup = scripted(fail="boom"), scripted(ttft_ms=500)
    slow = scripted(ttft_ms=20_000)
    # "bad" fails only after a warm-up step, so "slow" is surely running by then.
    bad = {"name": "bad-branch", "steps": [agent_step("warmup", warmup), agent_step("bad", failing)]}
    branches = [agent_step("slow", slow), bad, agent_step("never", slow)]
    run = run_workflow(
        {"steps": [{"name": "fan", "type": "parallel", "branches": branches, "max_concurrency": 2, "fail_fast": True}]},
        timeout=15,
    )

    assert run.status == RunStatus.FAILED
    assert run.error == {"code": "step_failed", "message": "Step 'bad' failed: boom (in 'fan')"}
    (slow_run,), (bad_run,) = child_of_step(run, "slow"), child_of_step(run, "bad")
    assert bad_run.status == RunStatus.FAILED
    assert slow_run.status == RunStatus.CANCELLED
    assert slow_run.started_at < bad_run.finished_at <= slow_run.finished_at  # it was running when the other failed
    assert child_of_step(run, "never") == []
    steps = final_state(run.id)["steps"]
    assert (steps["slow"]["status"], steps["bad"]["status"], steps["never"]["status"]) == (
        "cancelled",
        "failed",
        "skipped",
    )


def test_without_fail_fast_every_branch_runs_before_the_step_fails():
    failing = scripted(fail="boom")
    slow = scripted("done", ttft_ms=300)
    branches = [agent_step("slow", slow), agent_step("bad", failing), agent_step("later", slow)]
    run = run_workflow({"steps": [{"name": "fan", "type": "parallel", "branches": branches, "max_concurrency": 2}]})

    assert run.status == RunStatus.FAILED
    assert run.error["message"] == "Step 'bad' failed: boom (in 'fan')"
    (slow_run,), (bad_run,), (later,) = (child_of_step(run, n) for n in ("slow", "bad", "later"))
    assert (slow_run.status, later.status) == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED)
    assert later.started_at >= min(slow_run.finished_at, bad_run.finished_at)  # it waited for a free slot


# --- loop


def test_a_loop_ends_when_until_holds_and_feeds_each_round_the_last_output():
    agent = scripted("+{input}")
    body = [
        {"name": "count", "type": "function", "function": "set_state", "args": {"n": "{{ (state.n or 0) + 1 }}"}},
        agent_step("grow", agent, "{{ previous }}"),
    ]
    run = run_workflow(
        {"steps": [{"name": "refine", "type": "loop", "max_iterations": 10, "until": "state.n >= 3", "steps": body}]},
        "x",
    )

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "+++x"
    assert len(children(run)) == 3
    state = final_state(run.id)
    assert (state["steps"]["refine"]["iteration"], state["steps"]["refine"]["stopped"]) == (3, "until")
    assert state["state"] == {"n": 3}
    assert step_events(run.id).count(("STEP_STARTED", "grow")) == 3


def test_a_loop_ends_at_its_bound():
    agent = scripted("round {input}")
    loop = {
        "name": "refine",
        "type": "loop",
        "max_iterations": 3,
        "until": "contains(output, 'never')",
        "steps": [agent_step("draft", agent, "{{ loop.iteration }}/{{ loop.max_iterations }}")],
    }
    run = run_workflow({"steps": [loop]})

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert [c.input["message"] for c in children(run)] == ["1/3", "2/3", "3/3"]
    assert run.output == "round 3/3"
    assert final_state(run.id)["steps"]["refine"]["stopped"] == "max_iterations"


def test_a_loop_ends_on_the_agents_stop_token():
    agent = scripted("final text [DONE]")
    loop = {
        "name": "refine",
        "type": "loop",
        "max_iterations": 5,
        "stop_token": "[DONE]",
        "steps": [agent_step("a", agent)],
    }
    run = run_workflow({"steps": [loop]})

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "final text"
    assert len(children(run)) == 1
    assert final_state(run.id)["steps"]["refine"]["stopped"] == "stop_token"


# --- condition


@pytest.mark.parametrize(
    ("message", "taken", "skipped"), [("urgent: fix", "fast", "slow"), ("whenever", "slow", "fast")]
)
def test_a_condition_takes_one_branch(message, taken, skipped):
    agent = scripted("{input}")
    condition = {
        "name": "triage",
        "type": "condition",
        "if": "contains(lower(input), 'urgent')",
        "then": [agent_step("fast", agent, "FAST {{ input }}")],
        "else": [agent_step("slow", agent, "SLOW {{ input }}")],
    }
    run = run_workflow({"steps": [condition, agent_step("after", agent, "{{ previous }}!")]}, message)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == f"{taken.upper()} {message}!"
    steps = final_state(run.id)["steps"]
    assert (steps[taken]["status"], steps[skipped]["status"], steps["triage"]["branch"]) == (
        "succeeded",
        "skipped",
        "then" if taken == "fast" else "else",
    )


def test_a_false_condition_without_else_passes_the_previous_output_on():
    agent = scripted("{input}")
    condition = {"name": "maybe", "type": "condition", "if": "false", "then": [agent_step("never", agent)]}
    run = run_workflow({"steps": [condition, agent_step("after", agent, "{{ previous }}.")]}, "x")
    assert run.output == "x."
    assert final_state(run.id)["steps"]["never"] == {"status": "skipped"}


# --- router


def routes(agent, *, when: bool = False) -> list[dict]:
    """billing (runs ``pay``), tech (runs ``fix``) and other (runs nothing)."""
    billing = {
        "name": "billing",
        "description": "Invoices and payments",
        "steps": [agent_step("pay", agent, "PAY {{ input }}")],
    }
    tech = {"name": "tech", "description": "Bugs", "steps": [agent_step("fix", agent, "FIX {{ input }}")]}
    other = {"name": "other", "steps": []}
    if when:
        billing["when"], tech["when"], other["when"] = "contains(input, 'invoice')", "contains(input, 'bug')", "true"
    return [billing, tech, other]


@pytest.mark.parametrize(
    ("message", "output"), [("my invoice", "PAY my invoice"), ("a bug", "FIX a bug"), ("hello", "hello")]
)
def test_a_router_takes_the_first_route_whose_when_holds(message, output):
    agent = scripted("{input}")
    run = run_workflow({"steps": [{"name": "route", "type": "router", "routes": routes(agent, when=True)}]}, message)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == output


def test_a_router_by_expression_with_a_default():
    agent = scripted("{input}")
    classify = agent_step("classify", agent, "{{ input }}")
    router = {
        "name": "route",
        "type": "router",
        "expression": "lower(strip(previous))",
        "routes": routes(agent),
        "default": "other",
    }
    assert run_workflow({"steps": [classify, router]}, " TECH").output == "FIX  TECH"
    run = run_workflow({"steps": [classify, router]}, "unknown")
    assert run.output == "unknown"
    steps = final_state(run.id)["steps"]
    assert steps["route"]["route"] == "other" and steps["pay"]["status"] == steps["fix"]["status"] == "skipped"


@pytest.mark.parametrize(("reply", "output"), [("billing", "PAY q"), ("I'd say **Tech**, clearly.", "FIX q")])
def test_an_agent_chooses_the_route_by_name(reply, output):
    chooser = scripted(reply)
    worker = scripted("{input}")
    router = {"name": "route", "type": "router", "agent": chooser.id, "routes": routes(worker)}
    run = run_workflow({"steps": [router]}, "q")

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == output
    prompt = child_of_step(run, "route")[0].input["message"]
    assert "- billing: Invoices and payments\n- tech: Bugs\n- other" in prompt and prompt.endswith("Request:\nq")


def test_a_router_that_matches_nothing_fails_naming_the_step():
    chooser = scripted("no idea")
    router = {"name": "route", "type": "router", "agent": chooser.id, "routes": [{"name": "a", "steps": []}]}
    run = run_workflow({"steps": [router]})
    assert run.status == RunStatus.FAILED
    expected = f"Step 'route' failed: no route matched: agent {chooser.id!r} answered 'no idea'; the routes are a."
    assert run.error["message"] == expected
