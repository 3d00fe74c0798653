"""Save-time validation of workflow definitions.

Returns a list of messages, each naming the step at fault; an empty list means valid. The
admin, the API and code registration all call ``validate_definition``.
"""

from __future__ import annotations

from typing import Any

STEP_TYPES = ("agent", "star", "workflow", "function", "parallel", "loop", "condition", "router")


def validate_definition(definition: Any, *, workflow_id: str | None = None) -> list[str]:
    if not isinstance(definition, dict):
        return ["The definition must be a JSON object with a 'steps' list."]
    steps = definition.get("steps")
    if not isinstance(steps, list) or not steps:
        return ["The definition needs a non-empty 'steps' list."]
    errors: list[str] = []
    seen: set[str] = set()
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            errors.append(f"Step #{index + 1} must be an object.")
            continue
        name = step.get("name")
        if not isinstance(name, str) or not name:
            errors.append(f"Step #{index + 1} needs a 'name'.")
            continue
        if name in seen:
            errors.append(f"Step {name!r}: the name is used twice.")
        seen.add(name)
        if step.get("type") not in STEP_TYPES:
            errors.append(f"Step {name!r}: unknown type {step.get('type')!r}; use one of {', '.join(STEP_TYPES)}.")
    return errors
