"""The control plane for workflows. ``Workflow.clean()`` validates the definition on save."""

from __future__ import annotations

from django.contrib import admin

from cosmos.admin import DefinitionAdmin

from .forms import WorkflowForm
from .models import Workflow


@admin.register(Workflow)
class WorkflowAdmin(DefinitionAdmin):
    revision_resource = "workflow"
    form = WorkflowForm
    list_display = ("id", "name", "step_count", "enabled", "source", "updated_at")
    fields = ("id", "name", "description", "definition", "enabled", "source", "created_at", "updated_at")

    @admin.display(description="steps")
    def step_count(self, obj: Workflow) -> int:
        steps = obj.definition.get("steps") if isinstance(obj.definition, dict) else None
        return len(steps) if isinstance(steps, list) else 0
