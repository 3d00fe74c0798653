"""The safe expression evaluator and the templates built on it: no database, no code execution."""

from __future__ import annotations

import pytest

from cosmos.runtime.expressions import ExpressionError, compile_expression, to_text
from workflows.templating import compile_template, render, render_value, value_templates

CONTEXT = {
    "input": "Tell me about Octopuses",
    "previous": "draft two",
    "steps": {
        "research": {"status": "succeeded", "output": "Eight arms. DONE"},
        "step-1": {"status": "succeeded", "output": ["a", "b", "c"]},
        "scores": {"status": "succeeded", "output": {"quality": 7, "tags": ["x"]}},
    },
    "state": {"count": 2, "topic": "sea"},
    "loop": {"iteration": 3, "max_iterations": 5},
}


def evaluate(source: str, context: dict | None = None):
    return compile_expression(source).evaluate(CONTEXT if context is None else context)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("input", "Tell me about Octopuses"),
        ("steps.research.output", "Eight arms. DONE"),
        ("steps['step-1'].output[1]", "b"),
        ("steps['step-1'].output[-1]", "c"),
        ("steps['step-1'].output[:2]", ["a", "b"]),
        ("steps.scores.output.quality >= 7", True),
        ("steps.scores.output.tags", ["x"]),
        ("contains(steps.research.output, 'DONE')", True),
        ("'arms' in steps.research.output", True),
        ("'y' not in steps.scores.output.tags", True),
        ("len(steps['step-1'].output) == 3", True),
        ("lower(input) == 'tell me about octopuses'", True),
        ("state.count + 1", 3),
        ("(state.missing or 0) + 1", 1),
        ("state.count * 2 - 1", 3),
        ("state.count / 4", 0.5),
        ("state.count % 2 == 0 and not state.missing", True),
        ("1 < state.count <= 2", True),
        ("'yes' if loop.iteration > 2 else 'no'", "yes"),
        ("loop.iteration == loop.max_iterations", False),
        ("steps.nothing.output", None),
        ("steps.research.output.deeper", None),
        ("state.topic + '!'", "sea!"),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("int(' 42 ') + float('0.5')", 42.5),
        ("startswith(input, 'Tell') and endswith(input, 'puses')", True),
        ("max(1, state.count, 0)", 2),
        ("state.missing is None", True),
        ("str(steps.scores.output.quality) + '/10'", "7/10"),
        ("-state.count", -2),
    ],
)
def test_expressions(source, expected):
    assert evaluate(source) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os')", "calls __import__()"),
        ("__import__('os').system('id')", "may only call functions by name"),
        ("open('/etc/passwd')", "calls open()"),
        ("eval('1')", "calls eval()"),
        ("input.upper()", "may only call functions by name"),
        ("(lambda: 1)()", "may only call functions by name"),
        ("[x for x in steps]", "comprehensions"),
        ("{'a': 1}", "object literals"),
        ("2 ** 64", "'**'"),
        ("f'{input}'", "f-strings"),
        ("(x := 1)", "assignments"),
        ("len(input, key=1)", "keyword arguments"),
        ("steps.step-1.output", "needs brackets"),
        ("a +", "not a valid expression"),
        ("", "empty"),
        ("x" * 2001, "longer than"),
        ("b'bytes'", "literal of type bytes"),
    ],
)
def test_unsafe_or_broken_expressions_are_refused(source, message):
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert message in str(caught.value)


def test_lookups_never_reach_python_attributes():
    class Secret:
        password = "hunter2"

    context = {"obj": Secret(), "text": "abc"}
    assert evaluate("obj.password", context) is None
    assert evaluate("text.__class__", context) is None
    assert evaluate("obj['__dict__']", context) is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("'a' * 3", "cannot apply mult"),
        ("state.count < 'x'", "cannot compare"),
        ("int('abc')", "int() cannot convert"),
        ("state.count / 0", "division by zero"),
        ("len(5)", "len() needs"),
        ("-input", "a sign needs a number"),
        ("input[0:2:0]", "slice"),
    ],
)
def test_evaluation_errors_name_the_expression(source, message):
    with pytest.raises(ExpressionError) as caught:
        evaluate(source)
    assert message in str(caught.value) and repr(source) in str(caught.value)


def test_names_and_step_references_are_known_before_running():
    expression = compile_expression("contains(steps.a.output, state.x) or steps['b-2'].status == previous")
    assert expression.names == {"steps", "state", "previous"}
    assert expression.step_refs == {"a", "b-2"}


def test_to_text():
    assert to_text(None) == ""
    assert to_text(True) == "true"
    assert to_text(3) == "3"
    assert to_text({"é": [1]}) == '{\n  "é": [\n    1\n  ]\n}'


def test_templates_render_text():
    text = render("Notes on {{ input }}: {{ steps.research.output }} ({{ state.count }}){{ state.none }}.", CONTEXT)
    assert text == "Notes on Tell me about Octopuses: Eight arms. DONE (2)."


def test_a_lone_placeholder_keeps_its_type_for_function_arguments():
    args = {"items": "{{ steps['step-1'].output }}", "label": "n={{ state.count }}", "nested": ["{{ state.count }}"]}
    assert render_value(args, CONTEXT) == {"items": ["a", "b", "c"], "label": "n=2", "nested": [2]}
    assert render_value(" {{ state.count }} ", CONTEXT) == 2
    assert render_value(7, CONTEXT) == 7
    assert list(value_templates(args)) == ["{{ steps['step-1'].output }}", "n={{ state.count }}", "{{ state.count }}"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("Hello {{ input", "never closed"),
        ("Hello {{ }}", "empty placeholder"),
        ("{{ open('x') }}", "calls open()"),
    ],
)
def test_bad_templates(source, message):
    with pytest.raises(ExpressionError) as caught:
        compile_template(source)
    assert message in str(caught.value)
