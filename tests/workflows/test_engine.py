"""Workflow runs end to end on the embedded worker with the offline scripted model: data passing
through templates, the event stream (steps, state, subagents, text), and the leaf step kinds."""

from __future__ import annotations

import pytest

from cosmos.models import Run, RunStatus
from cosmos.services import runs as run_services
from cosmos.services.checkpoints import call_key
from tests.factories import make_star, make_workflow
from tests.support.runs import assert_gapless, event_types, events, wait_for_run
from tests.workflows.helpers import children, final_state, in_process_functions, run_workflow, scripted, step_events
from workflows.functions import FunctionContext, function_registry, workflow_function

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]

SEEN: dict[str, dict] = {}


@workflow_function(name="tests_engine_inspect")
def inspect_context(context: FunctionContext, label: str, data) -> dict:
    """Records what a function sees, and changes the shared state."""
    SEEN[context.run_id] = {
        "input": context.input,
        "previous": context.previous,
        "steps": dict(context.steps),
        "state": dict(context.state),
        "step": context.step,
        "workflow": context.workflow_id,
    }
    context.state["seen"] = label
    context.state.pop("drop", None)
    return {"label": label, "data": data}


@pytest.fixture(scope="module", autouse=True)
def _unregister():
    yield
    function_registry.unregister("tests_engine_inspect")


def test_outputs_pass_between_agent_steps_through_templates():
    research = scripted("NOTES[{input}]")
    writer = scripted("ARTICLE[{input}]")
    run = run_workflow(
        {
            "steps": [
                {"name": "research", "type": "agent", "agent": research.id, "prompt": "facts on {{ input }}"},
                {
                    "name": "write",
                    "type": "agent",
                    "agent": writer.id,
                    "prompt": "{{ steps.research.output }} / {{ previous }} / {{ input }}",
                },
            ]
        },
        "octopuses",
    )

    assert run.status == RunStatus.SUCCEEDED, run.error
    notes = "NOTES[facts on octopuses]"
    assert run.output == f"ARTICLE[{notes} / {notes} / octopuses]"
    first, second = children(run)
    assert (first.kind, first.target, first.input) == ("agent", research.id, {"message": "facts on octopuses"})
    assert second.input == {"message": f"{notes} / {notes} / octopuses"}
    assert first.metadata == {
        "workflow_id": run.target,
        "workflow_run": str(run.id),
        "workflow_step": "research",
        "attempt": 1,
        "workflow_call": call_key("research", 1, "agent", research.id, "facts on octopuses"),
    }
    assert first.origin == "workflow" and first.max_attempts == 1


def test_the_event_stream():
    agent = scripted("ok {input}")
    run = run_workflow(
        {
            "steps": [
                {"name": "one", "type": "agent", "agent": agent.id},
                {"name": "two", "type": "agent", "agent": agent.id},
            ]
        }
    )

    assert_gapless(run.id)
    stream = events(run.id)
    types = [e["type"] for e in stream]
    assert types[:3] == ["RUN_STARTED", "STATE_SNAPSHOT", "STEP_STARTED"]
    assert stream[1]["snapshot"] == {
        "input": "topic",
        "state": {},
        "steps": {"one": {"status": "pending"}, "two": {"status": "pending"}},
    }
    assert step_events(run.id) == [
        ("STEP_STARTED", "one"),
        ("STEP_FINISHED", "one"),
        ("STEP_STARTED", "two"),
        ("STEP_FINISHED", "two"),
    ]
    child_ids = [str(c.id) for c in children(run)]
    started = [e for e in stream if e["type"] == "SUBAGENT_STARTED"]
    assert [e["runId"] for e in started] == child_ids
    assert started[0] == {
        "type": "SUBAGENT_STARTED",
        "runId": child_ids[0],
        "parentRunId": str(run.id),
        "stepName": "one",
        "kind": "agent",
        "agentId": agent.id,
    }
    finished = [e for e in stream if e["type"] == "SUBAGENT_FINISHED"]
    assert [e["output"] for e in finished] == ["ok topic", "ok ok topic"]
    # The final output as one assistant message, then the run's end.
    assert types[-4:] == ["TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END", "RUN_FINISHED"]
    assert stream[-3]["delta"] == run.output == stream[-1]["result"] == "ok ok topic"
    state = final_state(run.id)
    assert state["steps"]["one"] == {"status": "succeeded", "attempts": 1, "run": child_ids[0], "output": "ok topic"}
    assert state["steps"]["two"]["output"] == "ok ok topic"
    assert None not in [v for e in stream for v in e.values()]


@in_process_functions
def test_the_output_template_and_the_shared_state():
    agent = scripted("[{input}]")
    definition = {
        "state": {"tone": "dry", "drop": 1},
        "steps": [
            {"name": "draft", "type": "agent", "agent": agent.id, "prompt": "{{ state.tone }} {{ input.topic }}"},
            {
                "name": "inspect",
                "type": "function",
                "function": "tests_engine_inspect",
                "args": {"label": "L-{{ state.tone }}", "data": "{{ steps.draft }}"},
            },
        ],
        "output": "{{ steps.draft.output }} | {{ state.seen }} | {{ previous.label }}",
    }
    workflow = make_workflow(definition=definition)
    run, _ = run_services.start_run("workflow", workflow.id, {"input": {"topic": "eels"}, "state": {"tone": "wry"}})
    run = wait_for_run(run.id, 30)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "[wry eels] | L-wry | L-wry"
    seen = SEEN[str(run.id)]
    assert seen["input"] == {"topic": "eels"}
    assert seen["previous"] == "[wry eels]"
    assert seen["steps"]["draft"] == "[wry eels]" and seen["steps"]["inspect"] is None
    assert seen["state"] == {"tone": "wry", "drop": 1}
    assert (seen["step"], seen["workflow"]) == ("inspect", workflow.id)
    state = final_state(run.id)
    assert state["state"] == {"tone": "wry", "seen": "L-wry"}
    assert state["steps"]["inspect"]["output"] == {
        "label": "L-wry",
        "data": {"status": "succeeded", "attempts": 1, "run": str(children(run)[0].id), "output": "[wry eels]"},
    }


def test_function_steps_and_built_ins_need_no_child_run():
    agent = scripted('Here you go: {"score": 8, "tags": ["a", "b"]} - enjoy')
    run = run_workflow(
        {
            "steps": [
                {"name": "rate", "type": "agent", "agent": agent.id},
                {"name": "parse", "type": "function", "function": "parse_json", "args": {"text": "{{ previous }}"}},
                {
                    "name": "remember",
                    "type": "function",
                    "function": "set_state",
                    "args": {"best": "{{ previous.score }}"},
                },
                {
                    "name": "tags",
                    "type": "function",
                    "function": "join",
                    "args": {"items": "{{ steps.parse.output.tags }}", "separator": "+"},
                },
            ],
            "output": "{{ previous }} {{ state.best * 2 }}",
        }
    )

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "a+b 16"
    assert len(children(run)) == 1
    state = final_state(run.id)
    assert state["steps"]["parse"]["output"] == {"score": 8, "tags": ["a", "b"]}
    assert state["steps"]["remember"]["output"] == {"score": 8, "tags": ["a", "b"]}  # passes previous through
    assert state["state"] == {"best": 8}


def test_a_nested_workflow_step_runs_the_other_workflow_as_a_child():
    agent = scripted("<{input}>")
    inner = make_workflow(
        definition={"steps": [{"name": "inner-step", "type": "agent", "agent": agent.id, "prompt": "in:{{ input }}"}]}
    )
    run = run_workflow(
        {
            "steps": [
                {"name": "nested", "type": "workflow", "workflow": inner.id, "input": "{{ input }}!"},
                {"name": "after", "type": "agent", "agent": agent.id, "prompt": "{{ steps.nested.output }}"},
            ]
        },
        "x",
    )

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "<<in:x!>>"
    nested, _after = children(run)
    assert (nested.kind, nested.target, nested.status) == ("workflow", inner.id, RunStatus.SUCCEEDED)
    assert nested.metadata["workflow_path"] == [run.target]
    (grandchild,) = children(nested)
    assert (grandchild.kind, grandchild.input) == ("agent", {"message": "in:x!"})
    assert "STEP_STARTED" in event_types(nested.id)
    started = next(e for e in events(run.id) if e["type"] == "SUBAGENT_STARTED")
    assert started["kind"] == "workflow" and started["workflowId"] == inner.id


def test_a_star_step_runs_the_star_as_a_child():
    leader = scripted("team answer: {input}")
    star = make_star(leader=leader, workers=[scripted()])
    run = run_workflow(
        {"steps": [{"name": "team", "type": "star", "star": star.id, "prompt": "Plan {{ input }}"}]}, "a party"
    )

    (child,) = children(run)
    assert (child.kind, child.target, child.input) == ("star", star.id, {"message": "Plan a party"})
    assert run.status == child.status == RunStatus.SUCCEEDED, (run.error, child.error)
    assert run.output == child.output
    started = next(e for e in events(run.id) if e["type"] == "SUBAGENT_STARTED")
    assert started["starId"] == star.id


def test_the_demo_workflow_passes_data_from_research_to_the_writer(monkeypatch):
    from asteros_site.demo import load_demo

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    load_demo()
    run, _ = run_services.start_run("workflow", "demo-workflow", "octopuses")
    run = wait_for_run(run.id, 60)

    assert run.status == RunStatus.SUCCEEDED, run.error
    steps = [c.metadata["workflow_step"] for c in children(run)]
    assert steps[0] == "research" and sorted(steps[1:3]) == ["check", "questions"] and steps[3:] == ["write", "write"]
    by_step = {c.metadata["workflow_step"]: c for c in children(run)}
    assert "octopuses" in by_step["research"].input["message"]
    assert by_step["research"].output in by_step["check"].input["message"]  # research feeds the fan-out
    writes = children(run)[3:]
    assert by_step["questions"].output in writes[0].input["message"]  # the fan-out feeds the writer
    assert "Improve your last draft: " + writes[0].output in writes[1].input["message"]  # the loop feeds itself
    assert run.output == writes[1].output
    assert final_state(run.id)["steps"]["drafting"]["stopped"] == "max_iterations"


def test_a_workflow_input_can_be_a_conversation():
    agent = scripted("{input}")
    workflow = make_workflow(definition={"steps": [{"name": "echo", "type": "agent", "agent": agent.id}]})
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "last"},
    ]
    run, _ = run_services.start_run("workflow", workflow.id, {"messages": messages})
    assert wait_for_run(run.id, 30).output == "last"
    assert Run.objects.filter(parent=run).get().input == {"message": "last"}


def test_the_execute_api_runs_a_workflow_and_refuses_a_broken_one(api_client):
    agent = scripted("<{input}>")
    workflow = make_workflow(definition={"steps": [{"name": "a", "type": "agent", "agent": agent.id}]})

    response = api_client.post(f"/api/workflows/{workflow.id}/execute?wait=20", {"input": "hi"}, format="json")
    body = response.json()
    assert (body["kind"], body["status"], body["output"]) == ("workflow", "succeeded", "<hi>")
    assert {"events", "stream", "cancel"} <= set(body["links"])

    type(agent).objects.filter(id=agent.id).delete()
    response = api_client.post(f"/api/workflows/{workflow.id}/execute", {"input": "hi"}, format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_workflow"
    assert f"Step 'a': unknown agent {agent.id!r}." in error["message"]
