"""Tools: plain functions the model can call, described by a JSON schema built once from their hints.

Write one in an app's ``tools.py``::

    from cosmos.runtime.tools import tool

    @tool(timeout=10)
    def shout(text: str, times: int = 1) -> str:
        '''Repeat text in capitals.

        Args:
            text: What to shout.
            times: How many times.
        '''
        return " ".join([text.upper()] * times)

``asteros_site.apps.autodiscover()`` (run once at start-up, from ``ready()``) imports every
installed app's ``tools`` module; the built-ins (calculator, current_time, http_get) register when
this module is imported.
"""

from __future__ import annotations

import enum
import inspect
import logging
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .events import Emit
from .interrupts import ALWAYS, NEVER, check_rule

DEFAULT_TIMEOUT = 30.0
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Given to tools that declare a ``context`` parameter (it is never shown to the model)."""

    run_id: str | None
    emit: Emit
    tool_call_id: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


class Tool:
    __slots__ = (
        "description",
        "fn",
        "is_async",
        "listed_as",
        "name",
        "needs_context",
        "once",
        "parameters",
        "requires_approval",
        "schema",
        "timeout",
    )

    def __init__(
        self,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        fn: Callable[..., Any],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        needs_context: bool = False,
        requires_approval: str = "never",
        listed_as: str | None = None,
        once: bool = False,
    ) -> None:
        self.name = name  # what the model sees and calls
        # What agents list it as, when that differs (an MCP tool: "mcp:<server>/<tool>").
        self.listed_as = listed_as or name
        # "never", "always" or an expression over the arguments (cosmos.runtime.interrupts).
        self.requires_approval = requires_approval
        # Not idempotent: each call runs at most once, even across a retry after a lost worker
        # (cosmos.runtime.loop.ToolJournal); a call cut off by the loss is not run again.
        self.once = once
        self.description = description
        self.parameters = dict(parameters)
        self.fn = fn
        self.timeout = timeout
        self.needs_context = needs_context
        self.is_async = inspect.iscoroutinefunction(fn)
        # Built once: what the model is offered, in the provider-neutral shape.
        self.schema = {"name": name, "description": description, "parameters": self.parameters}

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        requires_approval: str | bool = "never",
        once: bool = False,
    ) -> Tool:
        summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")
        parameters, needs_context = function_schema(fn, arg_docs)
        return cls(
            name or fn.__name__,
            description if description is not None else summary,
            parameters,
            fn,
            timeout=timeout,
            needs_context=needs_context,
            requires_approval=_approval_rule(requires_approval),
            once=once,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Tool {self.name}>"


# ---------------------------------------------------------------------------------------------
# Schema from type hints and a Google-style docstring

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Returns?|Raises|Yields?|Examples?|Notes?|See Also):\s*$")
_ARG_LINE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}
_NAMED_SCALARS = {"str": str, "int": int, "float": float, "bool": bool, "dict": dict, "list": list}


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(description, {argument: description}) from a Google-style docstring."""
    description: list[str] = []
    arguments: dict[str, str] = {}
    section = None
    current = None
    base_indent = None
    for line in doc.splitlines():
        stripped = line.strip()
        header = _SECTION.match(stripped)
        if header and (len(line) - len(line.lstrip())) == 0:
            section = header.group(1)
            current, base_indent = None, None
            continue
        if section is None:
            description.append(stripped)
            continue
        if section not in ("Args", "Arguments", "Parameters", "Params") or not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent is None:
            base_indent = indent
        match = _ARG_LINE.match(stripped)
        if match and indent <= base_indent:
            current = match.group(1)
            arguments[current] = match.group(2).strip()
        elif current is not None:  # a continuation line
            arguments[current] = f"{arguments[current]} {stripped}".strip()
    # Paragraphs survive; lines inside a paragraph are joined.
    text = "\n\n".join(" ".join(p.split()) for p in "\n".join(description).split("\n\n") if p.strip())
    return text, arguments


def type_schema(annotation: Any) -> dict[str, Any]:
    """JSON schema for one annotation; unknown or missing types accept anything."""
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is None:
        return {}
    if isinstance(annotation, str):
        annotation = _NAMED_SCALARS.get(annotation, Any)
        return type_schema(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        schema = type_schema(args[0])
        notes = [a for a in args[1:] if isinstance(a, str)]
        return {**schema, "description": notes[0]} if notes else schema
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return type_schema(options[0])
        return {"anyOf": [type_schema(a) for a in options]}
    if origin is typing.Literal:
        values = list(args)
        schema: dict[str, Any] = {"enum": values}
        kinds = {_SCALARS.get(type(v)) for v in values}
        if len(kinds) == 1 and None not in kinds:
            schema["type"] = kinds.pop()
        return schema
    if origin in (list, tuple, set, frozenset, Sequence, Iterable, typing.Sequence):
        item = args[0] if args and args[0] is not Ellipsis else Any
        return {"type": "array", "items": type_schema(item)}
    if origin in (dict, Mapping, typing.Mapping):
        schema = {"type": "object"}
        if len(args) == 2 and type_schema(args[1]):
            schema["additionalProperties"] = type_schema(args[1])
        return schema
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return {"enum": [member.value for member in annotation]}
        if issubclass(annotation, bool):
            return {"type": "boolean"}
        for base, name in _SCALARS.items():
            if issubclass(annotation, base):
                return {"type": name}
        if issubclass(annotation, list | tuple | set | frozenset):
            return {"type": "array"}
    return {}


def function_schema(fn: Callable[..., Any], arg_docs: Mapping[str, str] | None = None) -> tuple[dict, bool]:
    """(JSON schema of fn's parameters, whether fn takes a ``context: ToolContext``)."""
    arg_docs = arg_docs or {}
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    needs_context = False
    for param in inspect.signature(fn).parameters.values():
        annotation = hints.get(param.name, param.annotation)
        if param.name == "context" or annotation is ToolContext or annotation == "ToolContext":
            needs_context = True
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        schema = type_schema(annotation)
        if arg_docs.get(param.name):
            schema = {**schema, "description": arg_docs[param.name]}
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        elif param.default is not None and isinstance(param.default, str | int | float | bool):
            schema = {**schema, "default": param.default}
        properties[param.name] = schema
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema, needs_context


# ---------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True, slots=True)
class ResolvedTools:
    tools: tuple[Tool, ...]
    schemas: tuple[dict, ...]
    by_name: Mapping[str, Tool]
    missing: tuple[str, ...]


class ToolResolver(Protocol):
    """Tools the registry does not hold itself, e.g. remote agents declared as database rows.

    A higher layer adds one with ``tool_registry.add_resolver`` (in its ``AppConfig.ready()``).
    ``resolve`` may read the database, so it is called from synchronous code only; it should be
    cheap (cached), since runs resolve their tools every time they start.
    """

    def resolve(self, name: str) -> Tool | Sequence[Tool] | None:
        """The tool of this name; or, for a name that stands for several (``mcp:<server>/*``),
        their sequence (empty when the source is known but offers none now); None: unknown."""

    def names(self) -> Iterable[str]: ...

    # Optional: ``patterns()``, the names that stand for several tools (``mcp:<server>/*``), for
    # forms that offer the catalogue (``ToolRegistry.patterns``).


class ToolRegistry:
    """Process-wide tools by name. Lookups of a list of names are cached, so agent builds are cheap.

    Tools registered from code win; a name they do not know is asked of the resolvers, in the
    order they were added. Lists that need a resolver are not cached here: the resolver caches.
    """

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}
        self._resolved: dict[tuple[str, ...], ResolvedTools] = {}
        self._resolvers: list[ToolResolver] = []

    def register(self, tool: Tool) -> Tool:
        self._tools[tool.name] = tool  # re-registering a name replaces it (e.g. a reloaded module)
        self._resolved.clear()
        return tool

    def unregister(self, name: str) -> None:
        if self._tools.pop(name, None) is not None:
            self._resolved.clear()

    def add_resolver(self, resolver: ToolResolver) -> None:
        if resolver not in self._resolvers:
            self._resolvers.append(resolver)
            self._resolved.clear()

    def remove_resolver(self, resolver: ToolResolver) -> None:
        if resolver in self._resolvers:
            self._resolvers.remove(resolver)
            self._resolved.clear()

    def get(self, name: str, *, resolve: bool = True) -> Tool | None:
        """The tool of this name; ``resolve=False`` looks only at the tools registered from code."""
        tool = self._tools.get(name)
        if tool is None and resolve:
            found = self.lookup(name)
            tool = found[0] if found is not None and len(found) == 1 and found[0].listed_as == name else None
        return tool

    def lookup(self, name: str) -> tuple[Tool, ...] | None:
        """The tools a listed name stands for: one, or several for a pattern; None if unknown."""
        tool = self._tools.get(name)
        if tool is not None:
            return (tool,)
        for resolver in self._resolvers:
            try:
                found = resolver.resolve(name)
            except Exception as exc:  # e.g. no database here: the name stays unknown, builds never raise
                logger.warning("tool resolver %r failed for %r: %s", resolver, name, exc)
                continue
            if found is None:
                continue
            return (found,) if isinstance(found, Tool) else tuple(found)
        return None

    def names(self) -> list[str]:
        names = set(self._tools)
        for resolver in self._resolvers:
            try:
                names.update(resolver.names())
            except Exception as exc:
                logger.warning("tool resolver %r failed to list its tools: %s", resolver, exc)
        return sorted(names)

    def patterns(self) -> list[str]:
        """The names that stand for several tools, from the resolvers that have a ``patterns()``
        (``mcp:<server>/*`` for each enabled MCP server): what a form offers next to ``names()``."""
        found: set[str] = set()
        for resolver in self._resolvers:
            listing = getattr(resolver, "patterns", None)
            if listing is None:
                continue
            try:
                found.update(listing())
            except Exception as exc:
                logger.warning("tool resolver %r failed to list its patterns: %s", resolver, exc)
        return sorted(found)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.lookup(name) is not None

    def __len__(self) -> int:
        return len(self._tools)

    def resolve(self, names: Sequence[str]) -> ResolvedTools:
        key = names if type(names) is tuple else tuple(names)
        resolved = self._resolved.get(key)
        if resolved is not None:
            return resolved
        static = all(n in self._tools for n in key)
        found = [self.lookup(n) for n in key]
        # A tool listed twice (by name and by a pattern) is offered once.
        by_name = {t.name: t for group in found if group for t in group}
        tools = tuple(by_name.values())
        resolved = ResolvedTools(
            tools=tools,
            schemas=tuple(t.schema for t in tools),
            by_name=types.MappingProxyType(by_name),
            missing=tuple(n for n, group in zip(key, found, strict=True) if group is None),
        )
        if static or not self._resolvers:
            self._resolved[key] = resolved
        return resolved

    def schemas(self, names: Sequence[str]) -> tuple[dict, ...]:
        """The model-facing schemas of these tools (cached; unknown names are left out)."""
        return self.resolve(names).schemas


tool_registry = ToolRegistry()


def _approval_rule(rule: str | bool) -> str:
    if isinstance(rule, bool):
        return ALWAYS if rule else NEVER
    if problem := check_rule(rule):
        raise ValueError(problem)
    return rule


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    register: bool = True,
    requires_approval: str | bool = "never",
    once: bool = False,
) -> Any:
    """Make a Tool from a function: ``@tool`` or ``@tool(name=..., timeout=..., register=False)``.

    ``requires_approval``: ``True`` (always), ``False`` (never) or a rule over the arguments such
    as ``"amount > 100"``; a person approves each such call (an agent may override the rule).
    ``once``: the tool is not idempotent (a payment, an email): each call runs at most once, even
    when the run is retried after its worker was lost (docs/execution.md)."""

    def wrap(f: Callable[..., Any]) -> Tool:
        built = Tool.from_function(
            f, name=name, description=description, timeout=timeout, requires_approval=requires_approval, once=once
        )
        return tool_registry.register(built) if register else built

    return wrap(fn) if fn is not None else wrap
