"""Revisions: every saved state of a definition, immutable, numbered 1, 2, 3, … per definition.

Each kind of definition registers itself once (``register``, from ``AppConfig.ready()``): its
model, how a row becomes a JSON snapshot (the whole definition: a star's members included), how
a snapshot is applied back to a row (restore), and the other models whose changes change it (a
star's memberships). A save records a revision when the transaction commits, so the inline
saves of one admin form make one revision, and a save that changed nothing makes none.

A run pins the latest revision when it is accepted (``pin``, from ``start_run``) and its
executor reads that revision (``definition_at``), not the live row: an edit never changes a run
in flight, and a run accepted before its definition was deleted still runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from ..models import Revision
from .errors import Invalid, NotFound

logger = logging.getLogger(__name__)

Snapshot = Callable[[Any], dict]
Apply = Callable[[Any, dict], None]


@dataclass(frozen=True)
class Revisioned:
    resource: str  # "agent", "template", "star", "workflow" (a run kind's name where it is one)
    model: type[Model]
    snapshot: Snapshot
    apply: Apply  # write a snapshot's own fields back onto a row (restore); the caller saves
    after_apply: Callable[[Any, dict], None] | None = None  # after the row is saved (a star's members)
    # Definitions whose snapshot embeds this one (a template's agents): (resource, id) pairs.
    dependents: Callable[[Any], Iterable[tuple[str, str]]] | None = None
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.resource


_registry: dict[str, Revisioned] = {}
# Who is saving: a name, or a function that finds it at save time (a request's caller is known
# only once the view has authenticated it).
_author: ContextVar[str | Callable[[], str]] = ContextVar("revision_author", default="")
_note: ContextVar[str] = ContextVar("revision_note", default="")


def register(
    resource: str,
    model: type[Model],
    snapshot: Snapshot,
    apply: Apply,
    *,
    after_apply: Callable[[Any, dict], None] | None = None,
    dependents: Callable[[Any], Iterable[tuple[str, str]]] | None = None,
    watch: Iterable[tuple[type[Model], Callable[[Any], str | None]]] = (),
    label: str = "",
) -> None:
    """Keep revisions of ``model``'s rows; ``watch``: (other model, its row -> this one's id)."""
    _registry[resource] = Revisioned(resource, model, snapshot, apply, after_apply, dependents, label)

    def saved(sender, instance, raw=False, **_kwargs) -> None:
        if not raw:
            changed(resource, str(instance.pk))

    post_save.connect(saved, sender=model, weak=False, dispatch_uid=f"revisions:{resource}")
    for other, target_of in watch:

        def other_changed(sender, instance, raw=False, _target_of=target_of, **_kwargs) -> None:
            target = _target_of(instance)
            if not raw and target:
                changed(resource, str(target))

        uid = f"revisions:{resource}:{other._meta.label}"
        post_save.connect(other_changed, sender=other, weak=False, dispatch_uid=uid)
        post_delete.connect(other_changed, sender=other, weak=False, dispatch_uid=uid)


def registered(resource: str) -> Revisioned:
    try:
        return _registry[resource]
    except KeyError:
        raise NotFound(f"{resource!r} keeps no revisions.") from None


def keeps_revisions(resource: str) -> bool:
    return resource in _registry


@contextmanager
def authored_by(author: str | Callable[[], str], note: str = "") -> Iterator[None]:
    """Saves inside this block record ``author`` (``user:alice``, an API key's caller, ``code``),
    or what ``author()`` answers at the save."""
    author_token, note_token = _author.set(author), _note.set(note)
    try:
        yield
    finally:
        _author.reset(author_token)
        _note.reset(note_token)


def changed(resource: str, target: str) -> None:
    """A row of ``resource`` changed: record its revision when the transaction commits."""
    author, note = _author.get(), _note.get()
    if callable(author):
        try:
            author = author()
        except Exception:  # who saved is a label: never a reason to fail the save
            author = ""
    transaction.on_commit(lambda: _record_after_commit(resource, target, author, note))


def _record_after_commit(resource: str, target: str, author: str, note: str) -> None:
    try:
        record(resource, target, author=author, note=note)
    except Exception:  # the save committed: a revision lost is logged, never a failed request
        logger.exception("Could not record a revision of %s %s", resource, target)


def record(resource: str, target: str, *, author: str = "", note: str = "") -> Revision | None:
    """Record the definition's current state as its next revision, unless it equals the latest.

    Returns the latest revision (new or not), or None when the definition no longer exists.
    """
    spec = registered(resource)
    row = spec.model._default_manager.filter(pk=target).first()
    if row is None:
        return None
    definition = json.loads(json.dumps(spec.snapshot(row), default=str))
    for _attempt in range(5):
        latest = Revision.objects.filter(resource=resource, target=target).order_by("-number").first()
        if latest is not None and latest.definition == definition:
            return latest
        try:
            with transaction.atomic():
                revision = Revision.objects.create(
                    resource=resource,
                    target=target,
                    number=(latest.number + 1) if latest else 1,
                    author=author[:200],
                    note=note[:200],
                    definition=definition,
                )
            break
        except IntegrityError:  # a concurrent save took this number: read the latest again
            continue
    else:
        raise RuntimeError(f"Could not number a revision of {resource} {target}.")
    if spec.dependents is not None:
        for other, other_id in spec.dependents(row):
            record(other, other_id, author=author, note=f"{spec.name} {target} revision {revision.number}")
    return revision


def list_revisions(resource: str, target: str):
    """A definition's revisions, newest first (a QuerySet)."""
    registered(resource)
    return Revision.objects.filter(resource=resource, target=target).order_by("-number")


def latest_number(resource: str, target: str) -> int | None:
    return (
        Revision.objects.filter(resource=resource, target=target)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )


def get_revision(resource: str, target: str, number: Any) -> Revision:
    number = parse_number(number)
    revision = Revision.objects.filter(resource=resource, target=target, number=number).first()
    if revision is None:
        raise NotFound(f"{registered(resource).name.capitalize()} {target!r} has no revision {number}.")
    return revision


def parse_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid("A revision is a whole number from 1.")
    try:
        number = int(value)
    except ValueError:
        raise Invalid("A revision is a whole number from 1.") from None
    if number < 1:
        raise Invalid("A revision is a whole number from 1.")
    return number


def pin(resource: str, target: str, requested: Any = None) -> int | None:
    """The revision a new run of ``resource`` ``target`` executes: ``requested`` (checked), or
    the latest. None for kinds that keep no revisions (or a definition saved before they did)."""
    if resource not in _registry:
        if requested is not None:
            raise Invalid(f"A {resource} run cannot ask for a revision: {resource}s keep none.")
        return None
    if requested is not None:
        return get_revision(resource, target, requested).number
    return latest_number(resource, target)


def definition_at(resource: str, target: str, number: int) -> dict:
    """The definition a run pinned (raises NotFound if its revision is gone)."""
    return get_revision(resource, target, number).definition


def restore(resource: str, target: str, number: Any, *, author: str | Callable[[], str] = "") -> Revision:
    """Make revision ``number`` the current definition again; records it as a new revision."""
    spec = registered(resource)
    revision = get_revision(resource, target, number)
    with authored_by(author, note=f"restored from revision {revision.number}"), transaction.atomic():
        row = spec.model._default_manager.select_for_update().filter(pk=target).first()
        if row is None:
            raise NotFound(f"{spec.name.capitalize()} {target!r} no longer exists; it cannot be restored.")
        spec.apply(row, revision.definition)
        try:
            row.full_clean()
        except ValidationError as exc:
            raise Invalid(
                f"Revision {revision.number} is no longer valid: {'; '.join(exc.messages)}",
                details=getattr(exc, "message_dict", None),
            ) from None
        row.save()
        if spec.after_apply is not None:
            spec.after_apply(row, revision.definition)
        # Recorded now, in the restore's transaction (the commit hook then finds nothing new):
        # the answer names the new revision even inside a caller's transaction.
        author_name = author() if callable(author) else author
        restored = record(resource, target, author=author_name, note=f"restored from revision {revision.number}")
    return restored or revision


@dataclass
class Change:
    """One top-level field that differs between two revisions."""

    field: str
    before: Any
    after: Any


@dataclass
class Comparison:
    older: Revision
    newer: Revision
    changes: list[Change] = field(default_factory=list)

    @property
    def text_diff(self) -> list[str]:
        """A unified diff of the two definitions as indented JSON."""
        import difflib

        def lines(revision: Revision) -> list[str]:
            return json.dumps(revision.definition, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

        return list(
            difflib.unified_diff(
                lines(self.older),
                lines(self.newer),
                f"revision {self.older.number}",
                f"revision {self.newer.number}",
                lineterm="",
            )
        )


def compare(resource: str, target: str, first: Any, second: Any) -> Comparison:
    """What changed from revision ``first`` to ``second`` (either order)."""
    a, b = get_revision(resource, target, first), get_revision(resource, target, second)
    older, newer = (a, b) if a.number <= b.number else (b, a)
    keys = sorted(set(older.definition) | set(newer.definition))
    changes = [
        Change(key, older.definition.get(key), newer.definition.get(key))
        for key in keys
        if older.definition.get(key) != newer.definition.get(key)
    ]
    return Comparison(older, newer, changes)
