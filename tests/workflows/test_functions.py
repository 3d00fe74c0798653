"""The workflow function registry, its decorator, discovery and the built-ins."""

from __future__ import annotations

import pytest

from workflows.functions import FunctionContext, function_registry, workflow_function
from workflows.workflow_functions import join, parse_json


def make_context(**fields) -> FunctionContext:
    defaults = {"workflow_id": "wf", "run_id": "r", "step": "s", "input": "in", "previous": "prev", "steps": {}}
    return FunctionContext(**(defaults | fields))


@pytest.fixture
def registered():
    names: list[str] = []
    yield names
    for name in names:
        function_registry.unregister(name)


def test_the_decorator_registers_with_or_without_arguments(registered):
    @workflow_function
    def tests_shout(text: str, times: int = 1) -> str:
        """Repeat text in capitals.

        More details here.
        """
        return " ".join([text.upper()] * times)

    @workflow_function(name="tests-renamed", description="Custom.")
    async def whatever(context, key: str) -> str:
        return context.state.get(key)

    registered += ["tests_shout", "tests-renamed"]
    shout, renamed = function_registry.get("tests_shout"), function_registry.get("tests-renamed")
    assert shout.description == "Repeat text in capitals."
    assert tests_shout("a", 2) == "A A"  # the function itself is returned unchanged
    assert (shout.needs_context, shout.is_async) == (False, False)
    assert (renamed.needs_context, renamed.is_async, renamed.description) == (True, True, "Custom.")
    assert "tests_shout" in function_registry.names()


def test_argument_names_are_checked_against_the_signature():
    set_state, parse = function_registry.get("set_state"), function_registry.get("parse_json")
    assert parse.check_args({"text": "x"}) is None
    assert "missing a required argument: 'text'" in parse.check_args({})
    assert "unexpected keyword argument 'txt'" in parse.check_args({"text": "x", "txt": "y"})
    assert set_state.check_args({"anything": 1, "goes": 2}) is None  # **values; context is never an argument


async def test_calls_pass_the_context_only_to_functions_that_ask(registered):
    @workflow_function
    def tests_remember(context, key: str, value):
        context.state[key] = value
        return context.previous

    registered.append("tests_remember")
    context = make_context()
    assert await function_registry.get("tests_remember").call(context, {"key": "k", "value": [1]}) == "prev"
    assert context.state == {"k": [1]}
    assert await function_registry.get("join").call(context, {"items": ["a", "b"], "separator": "+"}) == "a+b"


def test_builtin_functions_are_registered_and_discovered():
    from asteros_site.apps import autodiscover

    autodiscover()  # idempotent: importing workflow_functions modules again changes nothing
    assert {"set_state", "parse_json", "join"} <= set(function_registry.names())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Sure! Here it is:\n```json\n{"score": 8, "tags": ["x"]}\n```\nAnything else?', {"score": 8, "tags": ["x"]}),
        ("The list: [1, 2, 3].", [1, 2, 3]),
        ('not json {broken then {"ok": true}', {"ok": True}),
        ({"already": "data"}, {"already": "data"}),
    ],
)
def test_parse_json(text, expected):
    assert parse_json(text) == expected


def test_parse_json_without_json_fails_clearly():
    with pytest.raises(ValueError, match="no JSON object or list found"):
        parse_json("just words")


def test_join():
    assert join({"facts": "F", "questions": ["q"]}) == 'facts: F\n\nquestions: [\n  "q"\n]'
    assert join({"a": "1", "b": "2"}, separator=" | ", labels=False) == "1 | 2"
    assert join(["x", None, 3], separator=",") == "x,,3"
    assert join("single") == "single"


def test_set_state_passes_the_previous_output_through():
    context = make_context(state={"keep": 1})
    assert function_registry.get("set_state").fn(context, round=2) == "prev"
    assert context.state == {"keep": 1, "round": 2}
