"""Save-time validation of workflow definitions.

Returns a list of messages, each naming the step at fault; an empty list means valid. The
admin, the API and code registration all call ``validate_definition`` (through
``Workflow.clean()``), so a definition is refused the same way everywhere.

Checked: the shape of every step and its fields; unknown agents, stars, workflows and functions;
duplicate step names (nested ones included); references to steps that do not run before;
loops without a bound; nested workflows that include themselves, directly or through others;
expressions and templates that do not parse or use unknown names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from cosmos.models import Agent
from cosmos.runtime.expressions import Expression, ExpressionError, compile_expression
from stars.models import Star

from .definition import (
    BRANCH_KEYS,
    COMMON_KEYS,
    DEFINITION_KEYS,
    ROUTE_KEYS,
    STEP_KEYS,
    STEP_TYPES,
    iter_steps,
    step_names,
)
from .functions import function_registry
from .templating import compile_template, value_templates

__all__ = ["STEP_TYPES", "validate_definition"]

MAX_STEPS = 200
MAX_DEPTH = 8
MAX_ITERATIONS = 1000
MAX_ATTEMPTS = 10
MAX_TIMEOUT = 24 * 3600
MAX_BACKOFF = 3600
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
BASE_NAMES = frozenset({"input", "previous", "steps", "state"})
LOOP_NAMES = frozenset({"loop"})
UNTIL_NAMES = frozenset({"loop", "output"})


def validate_definition(definition: Any, *, workflow_id: str | None = None) -> list[str]:
    if not isinstance(definition, dict):
        return ["The definition must be a JSON object with a 'steps' list."]
    steps = definition.get("steps")
    if not isinstance(steps, list) or not steps:
        return ["The definition needs a non-empty 'steps' list."]
    return _Validator(definition, workflow_id).run()


@dataclass
class _Scope:
    """Where a step sits: what ran before it, and the names its expressions may use."""

    available: set[str]
    depth: int = 0
    in_loop: bool = False
    where: str = ""  # " in 'fanout'" for nested steps

    def nested(self, owner: str, *, loop: bool = False) -> _Scope:
        return _Scope(set(self.available), self.depth + 1, self.in_loop or loop, f" in {owner!r}")

    @property
    def names(self) -> frozenset[str]:
        return BASE_NAMES | LOOP_NAMES if self.in_loop else BASE_NAMES


@dataclass
class _Validator:
    definition: dict
    workflow_id: str | None
    errors: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def run(self) -> list[str]:
        steps = self.definition["steps"]
        unknown = sorted(set(self.definition) - DEFINITION_KEYS)
        if unknown:
            self.errors.append(
                f"Unknown key(s) {_quoted(unknown)}; a definition has {_quoted(sorted(DEFINITION_KEYS))}."
            )
        if "state" in self.definition and not isinstance(self.definition["state"], dict):
            self.errors.append("'state' (the initial shared state) must be a JSON object.")
        if "input_schema" in self.definition:
            self.input_schema(self.definition["input_schema"])
        total = sum(1 for _ in iter_steps(steps))
        if total > MAX_STEPS:
            self.errors.append(f"The workflow has {total} steps; at most {MAX_STEPS} are allowed.")
            return self.errors
        self.all_names = set(step_names(steps))
        self.targets = _Targets.load(steps)
        self.walk(steps, _Scope(set()))
        if "output" in self.definition:
            self.template("The workflow's", "output", self.definition["output"], _Scope(set(self.all_names)))
        return self.errors

    # --- steps

    def walk(self, steps: list, scope: _Scope) -> None:
        """Check a list of steps in order; ``scope.available`` grows as they run."""
        if scope.depth > MAX_DEPTH:
            self.errors.append(f"Steps{scope.where} are nested more than {MAX_DEPTH} levels deep.")
            return
        for index, step in enumerate(steps, start=1):
            position = f"#{index}{scope.where}"
            if not isinstance(step, dict):
                self.errors.append(f"Step {position} must be an object.")
                continue
            name = step.get("name")
            if not isinstance(name, str) or not name:
                self.errors.append(f"Step {position} needs a 'name'.")
                continue
            self.step(step, name, scope)
            scope.available.add(name)

    def step(self, step: dict, name: str, scope: _Scope) -> None:
        if not NAME.match(name):
            self.error(name, "a name may only use letters, digits, '_' and '-' (at most 64 characters).")
        if name in self.seen:
            self.error(name, "the name is used twice (step names are unique in the whole workflow, branches included).")
        self.seen.add(name)
        kind = step.get("type")
        if kind not in STEP_TYPES:
            self.error(name, f"unknown type {kind!r}; use one of {', '.join(STEP_TYPES)}.")
            return
        unknown = sorted(set(step) - COMMON_KEYS - STEP_KEYS[kind])
        if unknown:
            allowed = sorted(STEP_KEYS[kind] | COMMON_KEYS - {"name", "type"})
            article = "an" if kind == "agent" else "a"
            self.error(
                name, f"unknown key(s) {_quoted(unknown)} for {article} {kind} step; it takes {_quoted(allowed)}."
            )
        self.common(step, name)
        getattr(self, f"check_{kind}")(step, name, scope)

    def common(self, step: dict, name: str) -> None:
        if "description" in step and not isinstance(step["description"], str):
            self.error(name, "'description' must be text.")
        if "timeout_seconds" in step and not _number(step["timeout_seconds"], low=0, high=MAX_TIMEOUT, strict=True):
            self.error(name, f"'timeout_seconds' must be a number of seconds above 0 (at most {MAX_TIMEOUT}).")
        if "continue_on_error" in step and not isinstance(step["continue_on_error"], bool):
            self.error(name, "'continue_on_error' must be true or false.")
        if "retry" in step:
            retry = step["retry"]
            if not isinstance(retry, dict) or set(retry) - {"max_attempts", "backoff_seconds"}:
                self.error(name, "'retry' must be an object with 'max_attempts' and 'backoff_seconds'.")
                return
            if "max_attempts" in retry and not _whole(retry["max_attempts"], 1, MAX_ATTEMPTS):
                self.error(name, f"'retry.max_attempts' must be a whole number from 1 to {MAX_ATTEMPTS}.")
            if "backoff_seconds" in retry and not _number(retry["backoff_seconds"], low=0, high=MAX_BACKOFF):
                self.error(name, f"'retry.backoff_seconds' must be a number from 0 to {MAX_BACKOFF}.")

    def check_agent(self, step: dict, name: str, scope: _Scope) -> None:
        self.target(step, name, "agent", self.targets.agents)
        if "prompt" in step:
            self.template(f"Step {name!r}:", "prompt", step["prompt"], scope, owner=name)

    def check_star(self, step: dict, name: str, scope: _Scope) -> None:
        self.target(step, name, "star", self.targets.stars)
        if "prompt" in step:
            self.template(f"Step {name!r}:", "prompt", step["prompt"], scope, owner=name)

    def check_workflow(self, step: dict, name: str, scope: _Scope) -> None:
        target = step.get("workflow")
        if self.workflow_id is not None and target == self.workflow_id:
            self.error(name, "a workflow cannot include itself as a step.")
        else:
            self.target(step, name, "workflow", self.targets.workflows)
            cycle = self.targets.cycle_through(target, self.workflow_id, self.definition)
            if cycle:
                path = " → ".join(cycle)
                self.error(name, f"workflow {target!r} includes this workflow again ({path}); it would never end.")
        if "input" in step:
            self.template(f"Step {name!r}:", "input", step["input"], scope, owner=name)

    def check_approval(self, step: dict, name: str, scope: _Scope) -> None:
        # The run resumes a gate by skipping the top-level steps already done; a gate inside a
        # branch, a loop or a route would need each composite step to resume too.
        if scope.depth:
            self.error(name, "an approval step must be a top-level step (not inside a branch, loop or route).")
        if "retry" in step or "timeout_seconds" in step:
            self.error(name, "an approval step takes no 'retry' or 'timeout_seconds' (it waits for a person).")
        message = step.get("message")
        if not isinstance(message, str) or not message.strip():
            self.error(name, "an approval step needs a 'message' (the question a person approves or rejects).")
        else:
            self.template(f"Step {name!r}:", "message", message, scope, owner=name)
        for text in value_templates(step.get("data")):
            self.template(f"Step {name!r}:", "data", text, scope, owner=name)

    def check_function(self, step: dict, name: str, scope: _Scope) -> None:
        function_name = step.get("function")
        args = step.get("args", {})
        if not isinstance(function_name, str) or not function_name:
            self.error(name, "a function step needs 'function' (a registered function's name).")
        elif function_name not in function_registry:
            known = ", ".join(function_registry.names()) or "none"
            self.error(name, f"unknown function {function_name!r}; known functions: {known}.")
        elif isinstance(args, dict):
            problem = function_registry.get(function_name).check_args(args)  # type: ignore[union-attr]
            if problem:
                self.error(name, f"the arguments do not fit function {function_name!r}: {problem}.")
        if not isinstance(args, dict):
            self.error(name, "'args' must be a JSON object of argument names to values.")
            return
        for text in value_templates(args):
            self.template(f"Step {name!r}:", "args", text, scope, owner=name)

    def check_parallel(self, step: dict, name: str, scope: _Scope) -> None:
        branches = step.get("branches")
        if "max_concurrency" in step and not _whole(step["max_concurrency"], 1, 1000):
            self.error(name, "'max_concurrency' must be a whole number from 1 to 1000.")
        if "fail_fast" in step and not isinstance(step["fail_fast"], bool):
            self.error(name, "'fail_fast' must be true or false.")
        if not isinstance(branches, list) or not branches:
            self.error(name, 'a parallel step needs \'branches\': a list of steps, or of {"name", "steps"} objects.')
            return
        branch_names: set[str] = set()
        added: set[str] = set()
        for index, branch in enumerate(branches, start=1):
            inner = scope.nested(name)
            if isinstance(branch, dict) and "type" in branch:  # one step is a branch of its own
                self.walk([branch], inner)
                branch_name = branch.get("name")
            elif isinstance(branch, dict):
                branch_name = branch.get("name")
                self.branch_shape(name, branch, index)
                self.walk(branch.get("steps") if isinstance(branch.get("steps"), list) else [], inner)
            else:
                self.error(name, f'branch #{index} must be a step or a {{"name", "steps"}} object.')
                continue
            if isinstance(branch_name, str) and branch_name in branch_names:
                self.error(name, f"two branches are named {branch_name!r}.")
            if isinstance(branch_name, str):
                branch_names.add(branch_name)
            added |= inner.available - scope.available
        scope.available |= added

    def branch_shape(self, name: str, branch: dict, index: int) -> None:
        if not isinstance(branch.get("name"), str) or not branch.get("name"):
            self.error(name, f"branch #{index} needs a 'name'.")
        unknown = sorted(set(branch) - BRANCH_KEYS)
        if unknown:
            self.error(name, f"branch #{index} has unknown key(s) {_quoted(unknown)}; it takes 'name' and 'steps'.")
        if not isinstance(branch.get("steps"), list) or not branch.get("steps"):
            self.error(name, f"branch #{index} needs a non-empty 'steps' list.")

    def check_loop(self, step: dict, name: str, scope: _Scope) -> None:
        if "max_iterations" not in step:
            self.error(name, f"a loop needs 'max_iterations' (1 to {MAX_ITERATIONS}) so that it always ends.")
        elif not _whole(step["max_iterations"], 1, MAX_ITERATIONS):
            self.error(name, f"'max_iterations' must be a whole number from 1 to {MAX_ITERATIONS}.")
        if "stop_token" in step and (not isinstance(step["stop_token"], str) or not step["stop_token"].strip()):
            self.error(name, "'stop_token' must be non-empty text.")
        body = step.get("steps")
        if not isinstance(body, list) or not body:
            self.error(name, "a loop needs a non-empty 'steps' list (its body).")
            return
        inner = scope.nested(name, loop=True)
        self.walk(body, inner)
        if "until" in step:
            until_scope = _Scope(inner.available, inner.depth, True, inner.where)
            self.expression(name, "until", step["until"], until_scope, extra=UNTIL_NAMES)
        scope.available |= inner.available

    def check_condition(self, step: dict, name: str, scope: _Scope) -> None:
        if "if" not in step:
            self.error(name, "a condition needs 'if' (an expression).")
        else:
            self.expression(name, "if", step["if"], scope)
        then = step.get("then")
        if not isinstance(then, list) or not then:
            self.error(name, "a condition needs a non-empty 'then' list of steps.")
            then = []
        otherwise = step.get("else", [])
        if not isinstance(otherwise, list):
            self.error(name, "'else' must be a list of steps.")
            otherwise = []
        added: set[str] = set()
        for block in (then, otherwise):
            inner = scope.nested(name)
            self.walk(block, inner)
            added |= inner.available
        scope.available |= added

    def check_router(self, step: dict, name: str, scope: _Scope) -> None:
        routes = step.get("routes")
        if "agent" in step and "expression" in step:
            self.error(name, "a router chooses with 'agent' or with 'expression', not both.")
        if "agent" in step:
            self.target(step, name, "agent", self.targets.agents)
        if "prompt" in step:
            if "agent" not in step:
                self.error(name, "'prompt' is only used with 'agent'.")
            self.template(f"Step {name!r}:", "prompt", step["prompt"], scope, owner=name)
        if "expression" in step:
            self.expression(name, "expression", step["expression"], scope)
        if not isinstance(routes, list) or not routes:
            self.error(name, 'a router needs \'routes\': a list of {"name", "steps"} objects.')
            return
        by_when = "agent" not in step and "expression" not in step
        route_names: list[str] = []
        added: set[str] = set()
        for index, route in enumerate(routes, start=1):
            if not isinstance(route, dict):
                self.error(name, f"route #{index} must be an object with 'name' and 'steps'.")
                continue
            route_name = route.get("name")
            if not isinstance(route_name, str) or not route_name.strip():
                self.error(name, f"route #{index} needs a 'name'.")
            elif route_name in route_names:
                self.error(name, f"two routes are named {route_name!r}.")
            else:
                route_names.append(route_name)
            unknown = sorted(set(route) - ROUTE_KEYS)
            if unknown:
                self.error(name, f"route #{index} has unknown key(s) {_quoted(unknown)}.")
            if "when" in route:
                if by_when:
                    self.expression(name, f"routes[{index}].when", route["when"], scope)
                else:
                    self.error(
                        name, f"route #{index}: 'when' is only used when the router has no 'agent' or 'expression'."
                    )
            if not isinstance(route.get("steps"), list):
                self.error(name, f"route #{index} needs a 'steps' list (it may be empty).")
                continue
            inner = scope.nested(name)
            self.walk(route["steps"], inner)
            added |= inner.available
        scope.available |= added
        if by_when and not any(isinstance(r, dict) and "when" in r for r in routes):
            self.error(name, "a router needs 'agent', 'expression', or 'when' on its routes to choose one.")
        default = step.get("default")
        if default is not None and default not in route_names:
            self.error(name, f"'default' must be one of the route names ({_quoted(route_names)}).")

    # --- parts

    def target(self, step: dict, name: str, kind: str, known: set[str]) -> None:
        value = step.get(kind)
        if not isinstance(value, str) or not value:
            self.error(name, f"'{kind}' must name {'an' if kind == 'agent' else 'a'} {kind} (its id).")
        elif value not in known:
            self.error(name, f"unknown {kind} {value!r}.")

    def expression(self, name: str, field_name: str, source: Any, scope: _Scope, extra: Iterable[str] = ()) -> None:
        if not isinstance(source, str):
            self.error(name, f"'{field_name}' must be an expression (text).")
            return
        try:
            compiled = compile_expression(source)
        except ExpressionError as exc:
            self.error(name, f"'{field_name}' is not valid: {exc}.")
            return
        self.references(f"Step {name!r}:", field_name, compiled, scope, scope.names | set(extra), owner=name)

    def input_schema(self, schema: Any) -> None:
        """The input the workflow declares: a JSON Schema whose root is an object."""
        if not (isinstance(schema, dict) and schema.get("type") == "object"):
            self.errors.append('\'input_schema\' must be a JSON Schema object with "type": "object".')
            return
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            self.errors.append(f"'input_schema' is not a valid JSON Schema: {exc.message}")

    def template(self, prefix: str, field_name: str, source: Any, scope: _Scope, *, owner: str | None = None) -> None:
        if not isinstance(source, str):
            self.errors.append(f"{prefix} '{field_name}' must be text.")
            return
        try:
            compiled = compile_template(source)
        except ExpressionError as exc:
            self.errors.append(f"{prefix} '{field_name}' is not a valid template: {exc}.")
            return
        for expression in compiled.expressions:
            self.references(prefix, field_name, expression, scope, scope.names, owner=owner)

    def references(
        self,
        prefix: str,
        field_name: str,
        expression: Expression,
        scope: _Scope,
        names: Iterable[str],
        owner: str | None,
    ) -> None:
        allowed = set(names)
        for unknown in sorted(expression.names - allowed):
            hint = " ('loop' only exists inside a loop)" if unknown == "loop" else ""
            hint = " ('output' only exists in a loop's 'until')" if unknown == "output" else hint
            self.errors.append(
                f"{prefix} '{field_name}' uses unknown name {unknown!r}{hint}; use {_quoted(sorted(allowed))}."
            )
        for ref in sorted(expression.step_refs):
            if ref == owner:
                self.errors.append(
                    f"{prefix} '{field_name}' refers to its own step; use 'previous' or an earlier step."
                )
            elif ref not in self.all_names:
                self.errors.append(f"{prefix} '{field_name}' refers to step {ref!r}, which does not exist.")
            elif ref not in scope.available:
                self.errors.append(f"{prefix} '{field_name}' refers to step {ref!r}, which does not run before it.")

    def error(self, name: str, message: str) -> None:
        self.errors.append(f"Step {name!r}: {message}")


@dataclass
class _Targets:
    """The agents, stars and workflows a definition names that exist, loaded in three queries."""

    agents: set[str]
    stars: set[str]
    workflows: set[str]

    @classmethod
    def load(cls, steps: list) -> _Targets:
        wanted: dict[str, set[str]] = {"agent": set(), "star": set(), "workflow": set()}
        for step in iter_steps(steps):
            for kind, ids in wanted.items():
                if isinstance(step.get(kind), str) and (step.get("type") == kind or step.get("type") == "router"):
                    ids.add(step[kind])
        return cls(
            agents=_existing(Agent, wanted["agent"]),
            stars=_existing(Star, wanted["star"]),
            workflows=_existing(_workflow_model(), wanted["workflow"]),
        )

    def cycle_through(self, start: Any, workflow_id: str | None, definition: dict) -> list[str] | None:
        """The path start → ... → workflow_id if ``start`` (transitively) includes ``workflow_id``."""
        if workflow_id is None or not isinstance(start, str) or start not in self.workflows:
            return None
        Workflow = _workflow_model()
        parents: dict[str, str | None] = {start: None}
        frontier = [start]
        while frontier:
            rows = dict(Workflow.objects.filter(id__in=frontier).values_list("id", "definition"))
            next_frontier: list[str] = []
            for current in frontier:
                current_definition = definition if current == workflow_id else rows.get(current)
                for nested in _nested_workflows(current_definition):
                    if nested == workflow_id:
                        return _path(parents, current, workflow_id)
                    if nested not in parents:
                        parents[nested] = current
                        next_frontier.append(nested)
            frontier = next_frontier
        return None


def _path(parents: dict[str, str | None], last: str, workflow_id: str) -> list[str]:
    """workflow_id → start → ... → last → workflow_id, from the breadth-first search's parents."""
    chain = [last]
    while (parent := parents[chain[-1]]) is not None:
        chain.append(parent)
    return [workflow_id, *reversed(chain), workflow_id]


def _nested_workflows(definition: Any) -> set[str]:
    if not isinstance(definition, dict):
        return set()
    return {
        s["workflow"]
        for s in iter_steps(definition.get("steps"))
        if s.get("type") == "workflow" and isinstance(s.get("workflow"), str)
    }


def _workflow_model() -> Any:
    """The Workflow model, from the app registry: ``workflows.models`` imports this module (its
    ``clean()`` validates), so importing it back would close an import circle."""
    return apps.get_model("workflows", "Workflow")


def _existing(model: Any, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    return set(model.objects.filter(id__in=ids).values_list("id", flat=True))


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _number(value: Any, *, low: float, high: float, strict: bool = False) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return (low < value if strict else low <= value) and value <= high


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)
