"""The catalogue of run kinds: every fact about a kind of run, in one place.

Each kind (``agent``, ``star``, ``workflow``) is one ``RunKind``: its name (a run's ``kind``),
its collection (the URL segment of ``/agui/<collection>/<id>``, ``/a2a/<collection>/<id>`` and
``ws/agui/<collection>/<id>/``, and the resource name of an API key's ``resources``), its label,
the model of its definitions, how a run of it is checked and how it is executed.

Each app registers its own kind in ``AppConfig.ready()`` with one ``register_kind`` call: cosmos
registers ``agent`` (``cosmos/apps.py``), stars ``star`` and workflows ``workflow``. The engine
below them dispatches on a run's kind without importing them (imports point down: interfaces ->
workflows -> stars -> cosmos), and every door (REST, A2A, AG-UI, websockets, dashboard, admin)
reads the catalogue, so adding a fourth kind touches only the app that brings it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
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
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    provider: str = ""  # what the model calls were priced by (cosmos.services.costs)
    model: str = ""
    cost: Any = None  # the Decimal the final write recorded (for metrics), set by the engine
    cost_unpriced: bool = False
    finalize: Callable[[], None] | None = None
    result: Any = None  # the RUN_FINISHED ``result`` field, when it differs from ``output``
    outcome: str | None = None  # e.g. "interrupt" when a frontend tool must run


Executor = Callable[["RunContext"], Awaitable[ExecutionResult]]
TargetCheck = Callable[[str], None]


@dataclass
class RunKind:
    name: str  # a run's ``kind``: "agent"
    execute: Executor
    check_target: TargetCheck
    options: dict[str, Any] = field(default_factory=dict)
    target_model: type[Model] | None = None  # the definition a run's ``target`` is the key of
    collection: str = ""  # URL segment and API-key resource name: "agents" (default: name + "s")
    label: str = ""  # the collection for people: "Agents" (default: the collection, capitalized)
    description: str = ""  # one of them in a sentence: "star (team of agents)" (default: name)

    def __post_init__(self) -> None:
        self.collection = self.collection or f"{self.name}s"
        self.label = self.label or self.collection.capitalize()
        self.description = self.description or self.name

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

# What a URL segment naming a kind looks like (``/agui/<collection>/<id>``); the view looks the
# segment up in the catalogue on every request, so a kind registered later is served too.
COLLECTION_PATTERN = r"[a-z][a-z0-9_-]{0,31}"


def register_kind(
    name: str,
    execute: Executor,
    check_target: TargetCheck,
    *,
    target_model: type[Model] | None = None,
    collection: str = "",
    label: str = "",
    description: str = "",
) -> RunKind:
    """Add (or replace) a kind of run with all its facts; call it from ``AppConfig.ready()``."""
    kind = RunKind(
        name,
        execute,
        check_target,
        target_model=target_model,
        collection=collection,
        label=label,
        description=description,
    )
    if not re.fullmatch(COLLECTION_PATTERN, kind.name) or not re.fullmatch(COLLECTION_PATTERN, kind.collection):
        raise ValueError(f"Run kind {name!r}: the name and collection must match {COLLECTION_PATTERN}.")
    # A websocket path takes a kind's name or its collection: no two kinds may share either.
    taken = {word for k in _kinds.values() if k.name != name for word in (k.name, k.collection)}
    if {kind.name, kind.collection} & taken:
        raise ValueError(f"Run kind {name!r}: its name or collection {kind.collection!r} is already taken.")
    _kinds[name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Remove a kind (tests that register one of their own)."""
    _kinds.pop(name, None)


def get_kind(name: str) -> RunKind:
    from .services.errors import Invalid

    try:
        return _kinds[name]
    except KeyError:
        raise Invalid(f"Unknown run kind {name!r}; known kinds: {', '.join(sorted(_kinds))}.") from None


def kind_names() -> list[str]:
    return sorted(_kinds)


def all_kinds() -> list[RunKind]:
    """Every registered kind, in the order they registered (INSTALLED_APPS order)."""
    return list(_kinds.values())


def either(names: Iterable[str]) -> str:
    """``agent, star or workflow``: the names for a message."""
    names = list(names)
    if len(names) < 2:
        return names[0] if names else "a registered run kind"
    return f"{', '.join(names[:-1])} or {names[-1]}"


def kind_choices() -> list[tuple[str, str]]:
    """``(name, Name)`` for each kind: the choices of a form field."""
    return [(k.name, k.name.capitalize()) for k in _kinds.values()]


def find_kind(name: str) -> RunKind | None:
    """The kind named ``name`` ("agent"), or None."""
    return _kinds.get(name)


def collection_of(name: str) -> str:
    """The collection of the kind ``name`` ("agents"); ``name + "s"`` for a kind not registered."""
    found = _kinds.get(name)
    return found.collection if found else f"{name}s"


def kind_for_collection(segment: str) -> RunKind | None:
    """The kind whose collection is ``segment`` ("agents"), or None."""
    return next((k for k in _kinds.values() if k.collection == segment), None)


def kind_for_model(model: type[Model]) -> RunKind | None:
    """The kind whose definitions are rows of ``model``, or None."""
    return next((k for k in _kinds.values() if k.target_model is model), None)


def resolve_reference(reference: str) -> tuple[RunKind, str]:
    """The kind and id a person names a definition by: ``kind:id`` (``star:chat-team``), or a
    bare id that exactly one kind has a row for (the terminal's ``asteros run``). Runs an ORM
    query per kind for a bare id.

    ``Invalid`` (``unknown_kind``) for a prefix that is no kind, ``Invalid`` (``ambiguous_target``,
    with the ``kind:id`` choices) for an id several kinds have, ``NotFound`` for an id none has.
    """
    from .services.errors import Invalid, NotFound

    prefix, colon, object_id = reference.partition(":")
    if colon:
        found = find_kind(prefix)
        if found is None:
            raise Invalid(
                f"Unknown run kind {prefix!r}; known kinds: {', '.join(k.name for k in _kinds.values())}.",
                code="unknown_kind",
            )
        return found, object_id
    matches = [
        k
        for k in _kinds.values()
        if k.target_model is not None and k.target_model._default_manager.filter(pk=reference).exists()
    ]
    if len(matches) == 1:
        return matches[0], reference
    if matches:
        choices = [f"{k.name}:{reference}" for k in matches]
        raise Invalid(
            f"{reference!r} is the id of more than one definition; name one of: {', '.join(choices)}.",
            code="ambiguous_target",
            details={"choices": choices},
        )
    raise NotFound(f"No {either(k.name for k in _kinds.values())} with id {reference!r}.")
