"""Workflow services: look up a workflow, check it before a run, and save one registered in code.

Code registration (``AsterOS.register_workflow``) saves through ``full_clean()``, so it validates
exactly as the admin and the API do.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from cosmos.models import Source
from cosmos.services.errors import Invalid, NotFound, NotRunnable, conflict_on_integrity

from .models import WORKFLOW_KIND, Workflow
from .validation import validate_definition

WORKFLOW_FIELDS = ("name", "description", "enabled", "definition")


def workflow_definition(workflow: Workflow) -> dict:
    """The workflow as a revision keeps it."""
    return {name: getattr(workflow, name) for name in WORKFLOW_FIELDS}


def apply_workflow_definition(workflow: Workflow, definition: dict) -> None:
    for name in WORKFLOW_FIELDS:
        if name in definition:
            setattr(workflow, name, definition[name])


def workflow_for_run(workflow_id: str, revision: int | None) -> Workflow:
    """What a run executes: revision ``revision`` (an unsaved Workflow), else the live row."""
    if revision is None:
        return get_workflow(workflow_id)
    from cosmos.services import revisions

    workflow = Workflow(id=workflow_id)
    apply_workflow_definition(workflow, revisions.definition_at(WORKFLOW_KIND, workflow_id, revision))
    return workflow


def get_workflow(workflow_id: str) -> Workflow:
    try:
        return Workflow.objects.get(id=workflow_id)
    except Workflow.DoesNotExist:
        raise NotFound(f"No workflow with id {workflow_id!r}.") from None


def check_runnable(workflow_id: str) -> None:
    """The ``workflow`` run kind's target check: it exists, is enabled, and is still valid.

    A definition valid when saved can break later (an agent it names was deleted): such a run
    is refused up front, with the reasons.
    """
    workflow = get_workflow(workflow_id)
    if not workflow.enabled:
        raise NotRunnable(f"Workflow {workflow_id!r} is disabled.", code="workflow_disabled")
    errors = validate_definition(workflow.definition, workflow_id=workflow.id)
    if errors:
        raise NotRunnable(
            f"Workflow {workflow_id!r} is not valid: {' '.join(errors)}", code="invalid_workflow", details=errors
        )


def upsert_workflow(workflow_id: str, fields: dict[str, Any]) -> Workflow:
    """Create or update a workflow registered in code (``AsterOS.register_workflow``), marked as
    coming from code, through ``full_clean()``."""
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().filter(id=workflow_id).first() or Workflow(id=workflow_id)
        for name, value in fields.items():
            setattr(workflow, name, value)
        workflow.source = Source.CODE
        try:
            workflow.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            raise Invalid(
                f"The workflow {workflow_id!r} is not valid.", details=getattr(exc, "message_dict", exc.messages)
            ) from None
        # A new workflow is an INSERT; a concurrent registration of the same id makes it a 409.
        with conflict_on_integrity(f"Workflow {workflow_id!r} was created by a concurrent registration; try again."):
            workflow.save(force_insert=workflow._state.adding)
    return workflow
