"""The workflow editor of the admin: pretty-printed JSON, and errors shown step by step.

``WorkflowForm`` is a plain ModelForm: validation stays in ``Workflow.clean()``, so the admin,
the API and code registration refuse the same definitions. The form only makes the definition
readable: the JSON is indented, a JSON syntax error says where it is, and under the editor an
outline of the steps shows each step's type and target with its errors next to it.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from cosmos.admin_forms import JSONEditorWidget, ReadableJSONMixin

from .definition import STEP_TYPES, blocks
from .functions import function_registry
from .models import Workflow

EMPTY_DEFINITION: dict[str, Any] = {"steps": []}  # add steps to it; saving it as it is says so
STEP_IN_MESSAGE = re.compile(r"^Step '([^']+)'")
TARGET_KEYS = ("agent", "star", "workflow", "function")


class DefinitionWidget(JSONEditorWidget):
    """The JSON editor (checked as it is typed) followed by an outline of the steps, with their
    errors."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"class": "vLargeTextField asteros-json asteros-definition", **(attrs or {})})
        self.step_errors: dict[str, list[str]] = {}

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        lines = str(value or "").count("\n") + 1
        context["widget"]["attrs"]["rows"] = min(max(lines + 1, 12), 40)
        return context

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        editor = super().render(name, value, attrs, renderer)
        try:
            definition = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            return editor
        steps = definition.get("steps") if isinstance(definition, dict) else None
        if not isinstance(steps, list) or not steps:
            return editor
        outline = format_html(
            '<div class="asteros-outline" style="margin-top: .5em"><strong>Steps</strong>{}</div>',
            self._outline(steps),
        )
        return mark_safe(editor + outline)  # both parts are escaped above

    def _outline(self, steps: list) -> SafeString:
        items = []
        for step in steps:
            if not isinstance(step, dict):
                continue
            name = str(step.get("name") or "?")
            target = next((f" → {step[k]}" for k in TARGET_KEYS if isinstance(step.get(k), str)), "")
            messages = ((error,) for error in self.step_errors.get(name, ()))
            errors = format_html_join("", '<div class="errornote" style="margin: 2px 0">{}</div>', messages)
            nested = format_html_join(
                "", "<div>{}:{}</div>", ((block.label, self._outline(block.steps)) for block in blocks(step))
            )
            items.append(
                format_html("<li><code>{}</code> {}{}{}{}</li>", name, step.get("type", "?"), target, errors, nested)
            )
        return format_html("<ul>{}</ul>", mark_safe("".join(items)))  # each item is escaped


class DefinitionField(ReadableJSONMixin, forms.JSONField):
    """A JSON field shown indented, whose syntax errors give the line and column; a new
    workflow starts from the empty definition (``EMPTY_DEFINITION``), never from ``null``."""

    widget = DefinitionWidget
    empty_json = EMPTY_DEFINITION


class WorkflowForm(forms.ModelForm):
    definition = DefinitionField(
        initial=EMPTY_DEFINITION,
        help_text=(
            'A JSON object: {"steps": [{"name": ..., "type": ..., ...}], "output": "{{ steps.x.output }}"}. '
            f"Step types: {', '.join(STEP_TYPES)}. See docs/workflows.md."
        ),
    )

    class Meta:
        model = Workflow
        fields = ("id", "name", "description", "definition", "enabled")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        functions = ", ".join(function_registry.names()) or "none"
        self.fields["definition"].help_text += f" Functions: {functions}."

    def _post_clean(self) -> None:
        syntax_errors = copy.copy(self._errors.get("definition"))
        super()._post_clean()  # runs Workflow.full_clean(), which validates the definition
        if syntax_errors:  # not JSON: the model only saw the old value, its messages would mislead
            self._errors["definition"] = syntax_errors
        grouped: dict[str, list[str]] = {}
        for message in self.errors.get("definition", ()):
            match = STEP_IN_MESSAGE.match(message)
            if match:
                grouped.setdefault(match.group(1), []).append(message[match.end() :].lstrip(": "))
        self.fields["definition"].widget.step_errors = grouped
