"""Every save-time validation error, through ``full_clean()`` as the admin, the API and code
registration call it. Each message names the step at fault."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from cosmos.services.errors import Invalid, NotRunnable
from tests.factories import build_workflow, make_agent, make_star, make_workflow
from workflows.models import Workflow
from workflows.services import check_runnable
from workflows.validation import MAX_DEPTH, MAX_STEPS, validate_definition

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def known():
    """An agent ``writer``, a star ``team`` and a workflow ``inner`` that definitions may name."""
    writer = make_agent("writer")
    make_star("team", leader=writer)
    make_workflow("inner", definition={"steps": [agent("only")]})


def agent(name: str, prompt: str | None = None, **fields) -> dict:
    step = {"name": name, "type": "agent", "agent": "writer", **fields}
    if prompt is not None:
        step["prompt"] = prompt
    return step


def errors_of(definition, workflow_id: str = "wf") -> list[str]:
    with pytest.raises(ValidationError) as caught:
        build_workflow(workflow_id, definition=definition).full_clean()
    return caught.value.message_dict["definition"]


def loop(name: str, steps: list, **fields) -> dict:
    return {"name": name, "type": "loop", "max_iterations": 3, "steps": steps, **fields}


def parallel(name: str, *branches, **fields) -> dict:
    return {"name": name, "type": "parallel", "branches": list(branches), **fields}


def router(name: str, routes: list, **fields) -> dict:
    return {"name": name, "type": "router", "routes": routes, **fields}


CASES = {
    # unknown targets
    "unknown agent": ([{"name": "a", "type": "agent", "agent": "ghost"}], "Step 'a': unknown agent 'ghost'."),
    "agent missing": ([{"name": "a", "type": "agent"}], "Step 'a': 'agent' must name an agent (its id)."),
    "unknown star": ([{"name": "a", "type": "star", "star": "ghost"}], "Step 'a': unknown star 'ghost'."),
    "unknown workflow": (
        [{"name": "a", "type": "workflow", "workflow": "ghost"}],
        "Step 'a': unknown workflow 'ghost'.",
    ),
    "unknown function": (
        [{"name": "a", "type": "function", "function": "ghost"}],
        "Step 'a': unknown function 'ghost'; known functions: ",
    ),
    "function missing": ([{"name": "a", "type": "function"}], "Step 'a': a function step needs 'function'"),
    "function arguments": (
        [{"name": "a", "type": "function", "function": "parse_json", "args": {"txt": "x"}}],
        "Step 'a': the arguments do not fit function 'parse_json': missing a required argument: 'text'",
    ),
    "function args shape": (
        [{"name": "a", "type": "function", "function": "join", "args": ["x"]}],
        "Step 'a': 'args' must be a JSON object",
    ),
    "unknown router agent": (
        [router("r", [{"name": "x", "steps": []}], agent="ghost")],
        "Step 'r': unknown agent 'ghost'.",
    ),
    # names
    "duplicate names": ([agent("a"), agent("a")], "Step 'a': the name is used twice"),
    "duplicate in a branch": ([agent("a"), parallel("p", agent("a"))], "Step 'a': the name is used twice"),
    "duplicate in a loop body": ([loop("l", [agent("l")])], "Step 'l': the name is used twice"),
    "duplicate in a route": (
        [router("r", [{"name": "x", "when": "true", "steps": [agent("b")]}, {"name": "y", "steps": [agent("b")]}])],
        "Step 'b': the name is used twice",
    ),
    "bad name": ([agent("has space")], "Step 'has space': a name may only use letters, digits, '_' and '-'"),
    "no name": ([{"type": "agent", "agent": "writer"}], "Step #1 needs a 'name'."),
    "nested no name": ([parallel("p", {"name": "b", "steps": [{"type": "agent"}]})], "Step #1 in 'p' needs a 'name'."),
    # references
    "reference to a later step": (
        [agent("a", "{{ steps.b.output }}"), agent("b")],
        "Step 'a': 'prompt' refers to step 'b', which does not run before it.",
    ),
    "reference to no step": (
        [agent("a", "{{ steps.reserch.output }}")],
        "Step 'a': 'prompt' refers to step 'reserch', which does not exist.",
    ),
    "reference to a parallel sibling": (
        [parallel("p", agent("a"), agent("b", "{{ steps.a.output }}"))],
        "Step 'b': 'prompt' refers to step 'a', which does not run before it.",
    ),
    "reference across condition branches": (
        [
            {
                "name": "c",
                "type": "condition",
                "if": "true",
                "then": [agent("t")],
                "else": [agent("e", "{{ steps.t.output }}")],
            }
        ],
        "Step 'e': 'prompt' refers to step 't', which does not run before it.",
    ),
    "reference to itself": ([agent("a", "{{ steps.a.output }}")], "Step 'a': 'prompt' refers to its own step"),
    "reference to the enclosing loop": (
        [loop("l", [agent("a", "{{ steps.l.output }}")])],
        "Step 'a': 'prompt' refers to step 'l', which does not run before it.",
    ),
    "bracket reference": (
        [agent("a", "{{ steps['later-step'].output }}"), agent("later-step")],
        "Step 'a': 'prompt' refers to step 'later-step', which does not run before it.",
    ),
    "reference in function args": (
        [{"name": "a", "type": "function", "function": "join", "args": {"items": "{{ steps.z.output }}"}}],
        "Step 'a': 'args' refers to step 'z', which does not exist.",
    ),
    "reference in the output": ([agent("a")], "The workflow's 'output' refers to step 'zz', which does not exist."),
    # loops
    "loop without a bound": (
        [{"name": "l", "type": "loop", "until": "true", "steps": [agent("a")]}],
        "Step 'l': a loop needs 'max_iterations' (1 to 1000) so that it always ends.",
    ),
    "loop bound zero": (
        [loop("l", [agent("a")], max_iterations=0)],
        "Step 'l': 'max_iterations' must be a whole number",
    ),
    "loop bound text": (
        [loop("l", [agent("a")], max_iterations="3")],
        "Step 'l': 'max_iterations' must be a whole number",
    ),
    "loop bound huge": (
        [loop("l", [agent("a")], max_iterations=10**6)],
        "Step 'l': 'max_iterations' must be a whole number",
    ),
    "loop without a body": ([loop("l", [])], "Step 'l': a loop needs a non-empty 'steps' list"),
    "loop stop token": ([loop("l", [agent("a")], stop_token=" ")], "Step 'l': 'stop_token' must be non-empty text."),
    # nested workflows
    "workflow includes itself": (
        [{"name": "me", "type": "workflow", "workflow": "wf"}],
        "Step 'me': a workflow cannot include itself as a step.",
    ),
    # expressions and templates
    "bad until": ([loop("l", [agent("a")], until="output ==")], "Step 'l': 'until' is not valid: "),
    "unsafe if": (
        [{"name": "c", "type": "condition", "if": "__import__('os')", "then": [agent("a")]}],
        "Step 'c': 'if' is not valid: ",
    ),
    "bad router expression": (
        [router("r", [{"name": "x", "steps": []}], expression="steps..x")],
        "Step 'r': 'expression' is not valid: ",
    ),
    "bad when": ([router("r", [{"name": "x", "when": "1 +", "steps": []}])], "Step 'r': 'routes[1].when' is not valid"),
    "bad template": ([agent("a", "Hello {{ input")], "Step 'a': 'prompt' is not a valid template: "),
    "unknown name": ([agent("a", "{{ inptu }}")], "Step 'a': 'prompt' uses unknown name 'inptu'"),
    "loop outside a loop": (
        [agent("a", "{{ loop.iteration }}")],
        "uses unknown name 'loop' ('loop' only exists inside",
    ),
    "output outside until": (
        [{"name": "c", "type": "condition", "if": "output", "then": [agent("a")]}],
        "Step 'c': 'if' uses unknown name 'output' ('output' only exists in a loop's 'until')",
    ),
    "prompt not text": ([agent("a", prompt=5)], "Step 'a': 'prompt' must be text."),
    # shapes
    "unknown type": ([{"name": "a", "type": "teleport"}], "Step 'a': unknown type 'teleport'; use one of agent, "),
    "unknown key": ([agent("a", promt="x")], "Step 'a': unknown key(s) 'promt' for an agent step"),
    "step not an object": (["a"], "Step #1 must be an object."),
    "timeout": ([agent("a", timeout_seconds=0)], "Step 'a': 'timeout_seconds' must be a number of seconds above 0"),
    "retry shape": ([agent("a", retry=3)], "Step 'a': 'retry' must be an object with 'max_attempts'"),
    "retry attempts": (
        [agent("a", retry={"max_attempts": 0})],
        "Step 'a': 'retry.max_attempts' must be a whole number",
    ),
    "retry backoff": (
        [agent("a", retry={"backoff_seconds": -1})],
        "Step 'a': 'retry.backoff_seconds' must be a number",
    ),
    "continue_on_error": (
        [agent("a", continue_on_error="yes")],
        "Step 'a': 'continue_on_error' must be true or false.",
    ),
    "parallel without branches": ([parallel("p")], "Step 'p': a parallel step needs 'branches'"),
    "parallel concurrency": ([parallel("p", agent("a"), max_concurrency=0)], "Step 'p': 'max_concurrency' must be"),
    "parallel fail_fast": ([parallel("p", agent("a"), fail_fast="no")], "Step 'p': 'fail_fast' must be true or false."),
    "branch without a name": ([parallel("p", {"steps": [agent("a")]})], "Step 'p': branch #1 needs a 'name'."),
    "branch without steps": (
        [parallel("p", {"name": "b", "steps": []})],
        "Step 'p': branch #1 needs a non-empty 'steps'",
    ),
    "branch names twice": (
        [parallel("p", {"name": "b", "steps": [agent("x")]}, {"name": "b", "steps": [agent("y")]})],
        "Step 'p': two branches are named 'b'.",
    ),
    "branch not an object": ([parallel("p", "x")], "Step 'p': branch #1 must be a step or a"),
    "condition without if": (
        [{"name": "c", "type": "condition", "then": [agent("a")]}],
        "Step 'c': a condition needs 'if'",
    ),
    "condition without then": (
        [{"name": "c", "type": "condition", "if": "true"}],
        "Step 'c': a condition needs a non-empty 'then'",
    ),
    "router without routes": ([router("r", [], expression="input")], "Step 'r': a router needs 'routes'"),
    "router agent and expression": (
        [router("r", [{"name": "x", "steps": []}], agent="writer", expression="input")],
        "Step 'r': a router chooses with 'agent' or with 'expression', not both.",
    ),
    "router without a choice": (
        [router("r", [{"name": "x", "steps": []}])],
        "Step 'r': a router needs 'agent', 'expression'",
    ),
    "router default": (
        [router("r", [{"name": "x", "steps": []}], expression="input", default="y")],
        "Step 'r': 'default' must be one of the route names ('x').",
    ),
    "router when with agent": (
        [router("r", [{"name": "x", "when": "true", "steps": []}], agent="writer")],
        "Step 'r': route #1: 'when' is only used when the router has no 'agent' or 'expression'.",
    ),
    "router route names twice": (
        [router("r", [{"name": "x", "steps": []}, {"name": "x", "steps": []}], expression="input")],
        "Step 'r': two routes are named 'x'.",
    ),
    "route without steps": (
        [router("r", [{"name": "x"}], expression="input")],
        "Step 'r': route #1 needs a 'steps' list",
    ),
    "prompt without agent": (
        [router("r", [{"name": "x", "steps": []}], expression="input", prompt="hi")],
        "Step 'r': 'prompt' is only used with 'agent'.",
    ),
}


@pytest.mark.parametrize(("steps", "expected"), list(CASES.values()), ids=list(CASES))
def test_validation_errors(steps, expected):
    definition = {"steps": steps}
    if expected.startswith("The workflow's 'output'"):
        definition["output"] = "{{ steps.zz.output }}"
    messages = errors_of(definition)
    assert any(expected in message for message in messages), messages


def test_definition_level_errors():
    messages = errors_of({"steps": [agent("a")], "ouput": "x", "state": []})
    assert any("Unknown key(s) 'ouput'" in m for m in messages)
    assert any("'state' (the initial shared state) must be a JSON object" in m for m in messages)


def test_a_declared_input_schema_is_an_object_schema():
    schema = {"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]}
    build_workflow("wf", definition={"steps": [agent("a")], "input_schema": schema}).full_clean()
    for wrong in ({"type": "string"}, [], "topic"):
        messages = errors_of({"steps": [agent("a")], "input_schema": wrong})
        assert any("'input_schema' must be a JSON Schema object" in m for m in messages), (wrong, messages)
    messages = errors_of({"steps": [agent("a")], "input_schema": {"type": "object", "properties": []}})
    assert any("'input_schema' is not a valid JSON Schema" in m for m in messages), messages


def test_too_many_steps_and_too_deep():
    assert f"at most {MAX_STEPS} are allowed" in errors_of({"steps": [agent(f"s{i}") for i in range(MAX_STEPS + 1)]})[0]
    steps: list = [agent("leaf")]
    for depth in range(MAX_DEPTH + 1):
        steps = [loop(f"l{depth}", steps)]
    assert any(f"nested more than {MAX_DEPTH} levels deep" in m for m in errors_of({"steps": steps}))


def test_a_nested_workflow_that_includes_this_one_through_others():
    make_workflow("outer-b", definition={"steps": [{"name": "call-inner", "type": "workflow", "workflow": "inner"}]})
    make_workflow("outer-c", definition={"steps": [{"name": "call-b", "type": "workflow", "workflow": "outer-b"}]})
    inner = Workflow.objects.get(id="inner")
    inner.definition = {"steps": [agent("only"), {"name": "back", "type": "workflow", "workflow": "outer-c"}]}
    with pytest.raises(ValidationError) as caught:
        inner.full_clean()
    assert caught.value.message_dict["definition"] == [
        "Step 'back': workflow 'outer-c' includes this workflow again "
        "(inner → outer-c → outer-b → inner); it would never end."
    ]


def test_every_error_is_reported_at_once_in_step_order():
    messages = errors_of(
        {"steps": [agent("a", "{{ steps.b.output }}"), {"name": "b", "type": "agent", "agent": "ghost"}]}
    )
    assert messages == [
        "Step 'a': 'prompt' refers to step 'b', which does not run before it.",
        "Step 'b': unknown agent 'ghost'.",
    ]


def test_a_definition_using_every_feature_is_valid():
    definition = {
        "state": {"round": 0},
        "steps": [
            agent("research", "Research {{ input }}", retry={"max_attempts": 2, "backoff_seconds": 0.5}),
            {"name": "team", "type": "star", "star": "team", "prompt": "{{ steps.research.output }}"},
            {
                "name": "nested",
                "type": "workflow",
                "workflow": "inner",
                "input": "{{ previous }}",
                "timeout_seconds": 30,
            },
            parallel(
                "fan",
                agent("facts", "{{ steps.research.output }}"),
                {"name": "reader", "steps": [agent("questions"), agent("answers", "{{ steps.questions.output }}")]},
                max_concurrency=2,
                fail_fast=True,
            ),
            loop(
                "refine",
                [
                    {
                        "name": "count",
                        "type": "function",
                        "function": "set_state",
                        "args": {"round": "{{ state.round + 1 }}"},
                    },
                    agent("draft", "{{ loop.iteration }}: {{ steps.fan.output.facts }} {{ steps.answers.output }}"),
                ],
                until="contains(output, 'OK') or state.round >= 3",
                stop_token="[DONE]",
            ),
            {"name": "check", "type": "condition", "if": "len(steps.draft.output) > 10", "then": [agent("polish")]},
            router(
                "route",
                [{"name": "short", "description": "Brief", "steps": [agent("brief")]}, {"name": "long", "steps": []}],
                agent="writer",
                default="long",
            ),
            {"name": "parse", "type": "function", "function": "parse_json", "args": {"text": "{{ previous }}"}},
        ],
        "output": "{{ steps.polish.output or steps.draft.output }}",
    }
    assert validate_definition(definition, workflow_id="wf") == []
    make_workflow("wf", definition=definition)


def test_code_registration_validates_the_same_way():
    from workflows.services import upsert_workflow

    with pytest.raises(Invalid) as caught:
        upsert_workflow("coded", {"definition": {"steps": [{"name": "a", "type": "agent", "agent": "ghost"}]}})
    assert caught.value.details == {"definition": ["Step 'a': unknown agent 'ghost'."]}
    workflow = upsert_workflow("coded", {"name": "Coded", "definition": {"steps": [agent("a")]}})
    assert (workflow.source, workflow.name) == ("code", "Coded")


def test_a_workflow_that_broke_after_saving_is_refused_at_run_time():
    ghost = make_agent("soon-gone")
    make_workflow("fragile", definition={"steps": [{"name": "a", "type": "agent", "agent": ghost.id}]})
    check_runnable("fragile")
    ghost.delete()
    with pytest.raises(NotRunnable) as caught:
        check_runnable("fragile")
    assert caught.value.code == "invalid_workflow"
    assert "Step 'a': unknown agent 'soon-gone'." in caught.value.message
    Workflow.objects.filter(id="fragile").update(enabled=False)
    with pytest.raises(NotRunnable, match="disabled"):
        check_runnable("fragile")


def test_the_example_in_the_docs_is_valid():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "workflows.md").read_text()
    example = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    for agent_id in ("agent-1", "agent-2", "chat-agent"):
        make_agent(agent_id)
    assert validate_definition(example, workflow_id="docs") == []
