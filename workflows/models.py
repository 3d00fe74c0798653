"""Workflows: validated JSON definitions that compose agents, stars and functions."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from cosmos.models import Definition

from .validation import validate_definition

# The run kind of a workflow (``Run.kind``), registered in ``WorkflowsConfig.ready()``.
WORKFLOW_KIND = "workflow"


class Workflow(Definition):
    definition = models.JSONField(default=dict, help_text='{"steps": [{"name": ..., "type": "agent", ...}]}')

    class Meta(Definition.Meta):
        pass

    def clean(self) -> None:
        errors = validate_definition(self.definition, workflow_id=self.id)
        if errors:
            raise ValidationError({"definition": errors})
