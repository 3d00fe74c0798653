"""Fuzzing workflow definitions: the validator, and ``POST /api/workflows`` with auth on.

Generated definitions are nested steps of every type, with names that clash, targets that exist
or not, templates and expressions that parse or not, bounds in and out of range, and any JSON
where a field is expected. The validator always answers with a list of messages (it never
raises); the API answers 201 with the workflow, or a 400 in the one error shape, never a 5xx;
and a refused definition leaves no workflow row behind.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from django.test import Client
from hypothesis import example, given
from hypothesis import strategies as st

from interfaces.keys.models import APIKey
from tests.factories import make_agent, make_star
from tests.support.fuzzing import JSON_VALUES, fuzz_settings, mostly
from workflows.models import Workflow
from workflows.validation import MAX_STEPS, validate_definition

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

BOUNDED_EXAMPLES = 80
NAMES = ["a", "b", "c", "draft", "review", "bad name", ""]  # few, so that names clash
TEMPLATES = [
    "{{ input }}",
    "{{ previous }}",
    "{{ steps.a.output }}",
    "{{ loop.index }}",
    "{{ broken",
    "plain",
    "{{ 1 +",
]
EXPRESSIONS = ["input == 'x'", "loop.index < 3", "steps.a.output", "output != ''", "len(input) > 2", "((", "__import__"]


def field(good: st.SearchStrategy) -> st.SearchStrategy:
    return mostly(good)


leaf_steps = st.fixed_dictionaries(
    {"name": field(st.sampled_from(NAMES)), "type": field(st.sampled_from(["agent", "star", "workflow", "function"]))},
    optional={
        "agent": field(st.sampled_from(["writer", "ghost"])),
        "star": field(st.sampled_from(["team", "ghost"])),
        "workflow": field(st.sampled_from(["inner", "ghost"])),
        "function": field(st.sampled_from(["set_state", "parse_json", "join", "ghost"])),
        "args": field(
            st.dictionaries(st.sampled_from(["text", "items", "x"]), st.sampled_from(TEMPLATES) | JSON_VALUES)
        ),
        "prompt": field(st.sampled_from(TEMPLATES)),
        "input": field(st.sampled_from(TEMPLATES)),
        "timeout_seconds": field(st.integers(-5, 100_000) | st.floats(allow_nan=False)),
        "retry": field(
            st.fixed_dictionaries({}, optional={"max_attempts": JSON_VALUES, "backoff_seconds": JSON_VALUES})
        ),
        "continue_on_error": field(st.booleans()),
        "description": field(st.text(max_size=8)),
    },
)


def composite(children: st.SearchStrategy) -> st.SearchStrategy:
    step_lists = field(st.lists(children, max_size=3))
    return st.one_of(
        st.fixed_dictionaries(
            {"name": field(st.sampled_from(NAMES)), "type": st.just("parallel")},
            optional={
                "branches": field(
                    st.lists(
                        children | st.fixed_dictionaries({"name": st.sampled_from(NAMES), "steps": step_lists}),
                        max_size=3,
                    )
                ),
                "max_concurrency": JSON_VALUES,
                "fail_fast": JSON_VALUES,
            },
        ),
        st.fixed_dictionaries(
            {"name": field(st.sampled_from(NAMES)), "type": st.just("loop"), "steps": step_lists},
            optional={
                "max_iterations": field(st.integers(-1, 2000)),
                "until": field(st.sampled_from(EXPRESSIONS)),
                "stop_token": JSON_VALUES,
            },
        ),
        st.fixed_dictionaries(
            {"name": field(st.sampled_from(NAMES)), "type": st.just("condition")},
            optional={"if": field(st.sampled_from(EXPRESSIONS)), "then": step_lists, "else": step_lists},
        ),
        st.fixed_dictionaries(
            {"name": field(st.sampled_from(NAMES)), "type": st.just("router")},
            optional={
                "routes": field(
                    st.lists(
                        st.fixed_dictionaries(
                            {"name": st.sampled_from(NAMES), "steps": step_lists},
                            optional={"when": field(st.sampled_from(EXPRESSIONS))},
                        ),
                        max_size=3,
                    )
                ),
                "agent": field(st.sampled_from(["writer", "ghost"])),
                "expression": field(st.sampled_from(EXPRESSIONS)),
                "prompt": field(st.sampled_from(TEMPLATES)),
                "default": JSON_VALUES,
            },
        ),
        st.dictionaries(st.sampled_from(["name", "type", "steps", "branches"]), JSON_VALUES, max_size=3),
    )


steps = st.recursive(leaf_steps, composite, max_leaves=12)
broken_definitions = st.fixed_dictionaries(
    {"steps": field(st.lists(steps, min_size=1, max_size=4))},
    optional={
        "output": field(st.sampled_from(TEMPLATES)),
        "state": JSON_VALUES,
        "description": JSON_VALUES,
        "unknown": JSON_VALUES,
    },
)

# Valid definitions, built to be so: every type, nested, unique names, targets that exist.
VALID_LEAVES = [
    {"type": "agent", "agent": "writer", "prompt": "{{ input }}"},
    {"type": "agent", "agent": "writer", "prompt": "{{ previous }}", "retry": {"max_attempts": 2}},
    {"type": "star", "star": "team"},
    {"type": "workflow", "workflow": "inner", "input": "{{ previous }}"},
    {"type": "function", "function": "join", "args": {"items": "{{ input }}", "separator": " "}},
    {"type": "function", "function": "set_state", "args": {"seen": "{{ previous }}"}, "continue_on_error": True},
]


def valid_composite(children: st.SearchStrategy) -> st.SearchStrategy:
    blocks = st.lists(children, min_size=1, max_size=2)
    return st.one_of(
        st.builds(lambda body, n: {"type": "loop", "max_iterations": n, "steps": body}, blocks, st.integers(1, 3)),
        st.builds(
            lambda then, other: {"type": "condition", "if": "input != ''", "then": then, "else": other}, blocks, blocks
        ),
        st.builds(lambda branches: {"type": "parallel", "branches": branches}, blocks),
        st.builds(
            lambda a, b: {
                "type": "router",
                "routes": [
                    {"name": "one", "when": "input == 'x'", "steps": a},
                    {"name": "two", "when": "True", "steps": b},
                ],
                "default": "two",
            },
            blocks,
            blocks,
        ),
    )


def named(definition: dict) -> dict:
    """Give every step of a built definition a unique name, in definition order."""
    from workflows.definition import iter_steps

    definition = json.loads(json.dumps(definition))  # builds share leaf dicts: copy them
    for number, step in enumerate(iter_steps(definition["steps"]), start=1):
        step["name"] = f"s{number}"
    return definition


valid_definitions = st.lists(
    st.recursive(st.sampled_from(VALID_LEAVES), valid_composite, max_leaves=6), min_size=1, max_size=3
).map(lambda built: named({"steps": built, "output": "{{ previous }}"}))


@st.composite
def definitions(draw) -> Any:
    """A valid definition, broken at one place one time in three; or one broken all over."""
    if draw(st.integers(0, 3)) == 3:
        return draw(broken_definitions | JSON_VALUES)
    definition = draw(valid_definitions)
    if draw(st.integers(0, 2)) == 2:
        from workflows.definition import iter_steps

        target = draw(st.sampled_from(list(iter_steps(definition["steps"]))))
        key = draw(st.sampled_from(["name", "type", "agent", "steps", "max_iterations", "if", "routes", "prompt", "x"]))
        target[key] = draw(JSON_VALUES | st.sampled_from([*TEMPLATES, *EXPRESSIONS, "s1"]))
    return definition


def nested_loops(depth: int) -> dict:
    """A loop inside a loop, ``depth`` times: far deeper than MAX_DEPTH, still a small body."""
    step: dict[str, Any] = {"name": "leaf", "type": "agent", "agent": "writer"}
    for level in range(depth):
        step = {"name": f"l{level}", "type": "loop", "max_iterations": 1, "steps": [step]}
    return {"steps": [step]}


@pytest.fixture
def known(db) -> None:
    """What definitions may name: agent ``writer``, star ``team``, workflow ``inner``."""
    writer = make_agent("writer")
    make_star("team", leader=writer)
    Workflow.objects.create(id="inner", definition={"steps": [{"name": "only", "type": "agent", "agent": "writer"}]})


# Through the API a body nests at most about 330 loops before JSON parsing refuses it (a 400);
# code can register deeper ones, which only the validator sees.
DEEP = [nested_loops(depth) for depth in (50, 200, 300)]
DEEPER = nested_loops(3000)
MANY = {"steps": [{"name": f"s{i}", "type": "agent", "agent": "writer"} for i in range(MAX_STEPS + 1)]}


def test_the_validator_answers_every_definition_with_messages(known):
    @fuzz_settings(BOUNDED_EXAMPLES)
    @given(definition=definitions())
    @example(definition=DEEP[0])
    @example(definition=DEEP[1])
    @example(definition=DEEP[2])
    @example(definition=DEEPER)
    @example(definition=MANY)
    def check(definition: Any):
        problems = validate_definition(definition, workflow_id="fuzzed")
        assert isinstance(problems, list) and all(isinstance(p, str) and p for p in problems), problems

    check()


def test_the_api_answers_every_definition_with_201_or_a_clear_400(known, settings_options):
    settings_options(enable_auth=True, api_key="workflow-fuzz-settings-key-0123456789")
    _, key = APIKey.generate("workflow-fuzz", ["admin"])
    client = Client(headers={"Authorization": f"Bearer {key}"})
    statuses: Counter[int] = Counter()
    numbers = iter(range(1_000_000))

    @fuzz_settings(BOUNDED_EXAMPLES)
    @given(definition=definitions())
    @example(definition=DEEP[0])
    @example(definition=DEEP[1])
    @example(definition=DEEP[2])
    @example(definition=MANY)
    def check(definition: Any):
        workflow_id = f"fuzzed-{next(numbers)}"
        body = json.dumps({"id": workflow_id, "definition": definition})
        response = client.post("/api/workflows", body, content_type="application/json")
        statuses[response.status_code] += 1
        assert response.status_code in (201, 400), (response.status_code, response.content[:500])
        created = Workflow.objects.filter(id=workflow_id).exists()
        if response.status_code == 201:
            assert created and response.json()["id"] == workflow_id
            assert validate_definition(Workflow.objects.get(id=workflow_id).definition, workflow_id=workflow_id) == []
        else:
            error = response.json()["error"]
            assert error["code"] and error["message"], error
            assert not created  # nothing half-written

    check()
    assert statuses[201] and statuses[400], statuses
