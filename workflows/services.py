"""Workflow services: look up a workflow, and check it before a run.

Code registration (``AsterOS.register_workflow``) saves through ``full_clean()``, so it validates
exactly as the admin and the API do.
"""

from __future__ import annotations

from cosmos.services.errors import NotFound, NotRunnable

from .models import Workflow
from .validation import validate_definition


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
