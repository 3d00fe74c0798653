"""Workflow services: look up, check before a run, and register from code."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from cosmos.models import Source
from cosmos.services.errors import Invalid, NotFound, NotRunnable

from .models import Workflow
from .validation import validate_definition

WORKFLOW_FIELDS = ("name", "description", "definition", "enabled")


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


def upsert_workflow(workflow_id: str, *, source: str = Source.CODE, **fields: Any) -> Workflow:
    """Create or update a workflow, validated exactly as the admin and the API validate it.

    For code registration (``asteros.py`` modules), which may run at every start. Raises
    ``Invalid`` with the per-field messages in ``details``.
    """
    unknown = set(fields) - set(WORKFLOW_FIELDS)
    if unknown:
        raise Invalid(f"Unknown workflow field(s): {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().filter(id=workflow_id).first() or Workflow(id=workflow_id)
        for key, value in fields.items():
            setattr(workflow, key, value)
        workflow.source = source
        try:
            workflow.full_clean()
        except ValidationError as exc:
            raise Invalid(f"Workflow {workflow_id!r} is not valid.", details=exc.message_dict) from None
        workflow.save()
    return workflow
