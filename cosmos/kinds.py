"""The registry of run kinds: how each kind of run is checked and executed.

cosmos registers ``agent``; stars and workflows register their own kinds in
``AppConfig.ready()``, so the engine below them can dispatch on a run's kind without importing
them (imports point down: interfaces -> workflows -> stars -> cosmos).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import connection

if TYPE_CHECKING:
    from django.db.models import Model

    from .engine import RunContext

# The code of a run whose definition (agent, star, workflow) was deleted before it could load it.
DEFINITION_DELETED = "definition_deleted"


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
    target_model: type[Model] | None = None  # the definition a run's ``target`` is the key of

    def hold_target(self, target: str) -> None:
        """Inside the transaction that inserts a run: keep its definition from being deleted
        until that transaction ends, and wait for a delete already under way.

        PostgreSQL: ``SELECT ... FOR KEY SHARE`` on the definition's row. Run starts share it (no
        queueing among themselves); a ``DELETE`` (or ``SELECT ... FOR UPDATE``) of the row waits
        for them, and they wait for it, then find no row and ``check_target`` answers 404. SQLite's
        IMMEDIATE transactions already admit one writer at a time, so the check that follows is
        serialized with any delete.
        """
        if self.target_model is None or connection.vendor != "postgresql":
            return
        meta = self.target_model._meta
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT 1 FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} = %s FOR KEY SHARE", [target]
            )


_kinds: dict[str, RunKind] = {}


def register_kind(
    name: str, execute: Executor, check_target: TargetCheck, *, target_model: type[Model] | None = None
) -> None:
    _kinds[name] = RunKind(name, execute, check_target, target_model=target_model)


def get_kind(name: str) -> RunKind:
    from .services.errors import Invalid

    try:
        return _kinds[name]
    except KeyError:
        raise Invalid(f"Unknown run kind {name!r}; known kinds: {', '.join(sorted(_kinds))}.") from None


def kind_names() -> list[str]:
    return sorted(_kinds)
