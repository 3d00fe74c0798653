"""Workflow functions: plain Python callables a ``function`` step runs.

Write them in a ``workflow_functions.py`` module of any installed app; it is imported at
start-up (``asteros_site.apps.autodiscover``, like ``admin.py``)::

    from workflows.functions import workflow_function

    @workflow_function
    def word_count(text: str) -> int:
        '''Count the words of a text.'''
        return len(text.split())

    @workflow_function(name="remember")
    def remember(context, key: str, value):
        context.state[key] = value
        return context.previous

A step calls one with its ``args`` (templates rendered first):
``{"name": "count", "type": "function", "function": "word_count", "args": {"text": "{{ previous }}"}}``.
A parameter named ``context`` receives a ``FunctionContext`` (the input, the previous output,
every step's output, and the shared ``state``, which the function may change). The return
value (JSON data) is the step's output; an exception fails the step.

Synchronous functions run on the engine's database thread pool (so the ORM works and the
connection count stays bounded): keep them short, or write them ``async``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from cosmos.db import db_call

CONTEXT_PARAMETER = "context"


@dataclass
class FunctionContext:
    """What a function sees of the workflow run. Changes to ``state`` are kept."""

    workflow_id: str
    run_id: str
    step: str
    input: Any
    previous: Any
    steps: Mapping[str, Any]
    state: dict[str, Any] = field(default_factory=dict)


class WorkflowFunction:
    __slots__ = ("description", "fn", "is_async", "name", "needs_context", "signature")

    def __init__(self, fn: Callable[..., Any], name: str, description: str) -> None:
        self.fn = fn
        self.name = name
        self.description = description
        self.is_async = inspect.iscoroutinefunction(fn)
        signature = inspect.signature(fn)
        self.needs_context = CONTEXT_PARAMETER in signature.parameters
        # The parameters a step's ``args`` may fill: everything but ``context``.
        self.signature = signature.replace(
            parameters=[p for name, p in signature.parameters.items() if name != CONTEXT_PARAMETER]
        )

    def __repr__(self) -> str:
        return f"<WorkflowFunction {self.name}>"

    def check_args(self, args: Mapping[str, Any]) -> str | None:
        """Why these argument names do not fit the function, or None when they do."""
        try:
            self.signature.bind(**args)
        except TypeError as exc:
            return str(exc)
        return None

    async def call(self, context: FunctionContext, args: Mapping[str, Any]) -> Any:
        kwargs = dict(args)
        if self.needs_context:
            kwargs[CONTEXT_PARAMETER] = context
        if self.is_async:
            return await self.fn(**kwargs)
        return await db_call(self.fn, **kwargs)


class FunctionRegistry:
    def __init__(self) -> None:
        self._functions: dict[str, WorkflowFunction] = {}

    def register(self, function: WorkflowFunction) -> WorkflowFunction:
        self._functions[function.name] = function
        return function

    def unregister(self, name: str) -> None:
        self._functions.pop(name, None)

    def get(self, name: str) -> WorkflowFunction | None:
        return self._functions.get(name)

    def names(self) -> list[str]:
        return sorted(self._functions)

    def __contains__(self, name: object) -> bool:
        return name in self._functions


function_registry = FunctionRegistry()


@overload
def workflow_function(fn: Callable[..., Any], /) -> Callable[..., Any]: ...


@overload
def workflow_function(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...


def workflow_function(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None
) -> Any:
    """Register a callable for ``function`` steps, as ``@workflow_function`` or ``@workflow_function(name=...)``."""

    def register(target: Callable[..., Any]) -> Callable[..., Any]:
        summary = (inspect.getdoc(target) or "").strip().split("\n\n")[0].replace("\n", " ")
        function_registry.register(WorkflowFunction(target, name or target.__name__, description or summary))
        return target

    return register(fn) if fn is not None else register
