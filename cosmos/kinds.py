"""The registry of run kinds: how each kind of run is checked and executed.

cosmos registers ``agent``; stars and workflows register their own kinds in
``AppConfig.ready()``, so the engine below them can dispatch on a run's kind without importing
them (imports point down: interfaces -> workflows -> stars -> cosmos).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import RunContext


@dataclass
class ExecutionResult:
    """What an executor hands back; ``finalize`` runs inside the run's final transaction."""

    output: Any = None
    input_tokens: int = 0
    output_tokens: int = 0
    finalize: Callable[[], None] | None = None
    result: Any = None  # the RUN_FINISHED ``result`` field, when it differs from ``output``
    outcome: str | None = None  # e.g. "interrupt" when a frontend tool must run


Executor = Callable[["RunContext"], Awaitable[ExecutionResult]]
TargetCheck = Callable[[str], None]


@dataclass
class RunKind:
    name: str
    execute: Executor
    check_target: TargetCheck
    options: dict[str, Any] = field(default_factory=dict)


_kinds: dict[str, RunKind] = {}


def register_kind(name: str, execute: Executor, check_target: TargetCheck) -> None:
    _kinds[name] = RunKind(name, execute, check_target)


def get_kind(name: str) -> RunKind:
    from .services.errors import Invalid

    try:
        return _kinds[name]
    except KeyError:
        raise Invalid(f"Unknown run kind {name!r}; known kinds: {', '.join(sorted(_kinds))}.") from None


def kind_names() -> list[str]:
    return sorted(_kinds)
