"""The MCP door's tools: every enabled agent, star and workflow, read live from the catalogue of
run kinds (``interfaces.edge.targets.all_targets``) on every ``tools/list`` and ``tools/call``.

Naming: a tool is named by its definition's id (a slug: letters, digits, ``-`` and ``_``, valid
as an MCP tool name). Ids are unique within a kind, not across kinds: when a later kind of the
catalogue (stars after agents, workflows after stars) has an id an earlier kind already uses,
its tool is ``<kind>.<id>`` (``workflow.triage``), so agents never change name. A key limited
to some resources lists and calls only those.

Input: ``{message, session_id?}`` for agents and stars; a workflow that declares
``input_schema`` in its definition takes that object (its ``{{ input }}``), else a message too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from cosmos.services.errors import Invalid
from interfaces.edge.auth import KeyPrincipal
from interfaces.edge.targets import Target, all_targets

SESSION_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "description": "Continue this conversation: runs with the same session id share their history.",
}
MESSAGE_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "minLength": 1, "description": "What to ask."},
        "session_id": SESSION_ID,
    },
    "required": ["message"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class MCPTool:
    name: str
    target: Target
    description: str
    input_schema: dict[str, Any]

    @property
    def takes_message(self) -> bool:
        return self.input_schema is MESSAGE_INPUT

    def run_input(self, arguments: dict[str, Any]) -> tuple[Any, str | None]:
        """The run's input and session id from checked arguments."""
        if self.takes_message:
            return {"message": arguments["message"]}, arguments.get("session_id")
        return {"message": arguments}, None


def declared_input(target: Target) -> dict[str, Any]:
    definition = getattr(target.row, "definition", None)
    schema = definition.get("input_schema") if isinstance(definition, dict) else None
    return schema if isinstance(schema, dict) else MESSAGE_INPUT


def describe(target: Target) -> str:
    row = target.row
    text = (getattr(row, "description", "") or "").strip()
    name = getattr(row, "name", "") or target.id
    return text or f"Run the {target.kind} {name!r} of {settings.ASTEROS.name} and get its answer."


def visible(principal: Any, target: Target) -> bool:
    if not settings.ASTEROS.enable_auth or not isinstance(principal, KeyPrincipal):
        return True
    return principal.allows_resource(target.resource, target.id)


def tools_for(principal: Any) -> list[MCPTool]:
    """The tools ``principal`` may see, in a stable order. Runs ORM queries: call it in a thread."""
    tools: list[MCPTool] = []
    taken: set[str] = set()
    for target in all_targets():
        name = target.id if target.id not in taken else f"{target.kind}.{target.id}"
        taken.add(name)
        if visible(principal, target):
            tools.append(MCPTool(name, target, describe(target), declared_input(target)))
    return tools


def fingerprint() -> int:
    """What a client's tool list depends on, as one number: it changes when a tool is added,
    removed, renamed, described or given another input. Runs ORM queries: call it in a thread."""
    return hash(
        tuple(
            (tool.name, tool.description, repr(sorted(tool.input_schema.items())), tool.target.resource)
            for tool in tools_for(None)
        )
    )


def find_tool(principal: Any, name: str) -> MCPTool | None:
    return next((tool for tool in tools_for(principal) if tool.name == name), None)


def check_arguments(tool: MCPTool, arguments: dict[str, Any] | None) -> dict[str, Any]:
    """The arguments, checked against the tool's schema; ``Invalid`` names every problem."""
    arguments = arguments or {}
    try:
        validator = Draft202012Validator(tool.input_schema)
        problems = sorted(validator.iter_errors(arguments), key=lambda error: list(error.path))
    except SchemaError as exc:
        raise Invalid(f"The tool's input schema is not valid: {exc.message}", code="invalid_schema") from None
    if problems:
        details = [{"path": "/".join(str(part) for part in error.path), "message": error.message} for error in problems]
        raise Invalid(
            f"The arguments do not match {tool.name!r}'s input schema: {problems[0].message}",
            code="invalid_arguments",
            details=details,
        )
    return arguments
