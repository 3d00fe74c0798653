"""The built-in workflow functions: ``set_state``, ``parse_json`` and ``join``."""

from __future__ import annotations

import json
from typing import Any

from cosmos.runtime.expressions import to_text

from .functions import FunctionContext, workflow_function


@workflow_function
def set_state(context: FunctionContext, **values: Any) -> Any:
    """Set keys of the shared state; the step's output is the previous output, unchanged.

    ``{"type": "function", "function": "set_state", "args": {"round": "{{ (state.round or 0) + 1 }}"}}``
    """
    context.state.update(values)
    return context.previous


@workflow_function
def parse_json(text: Any) -> Any:
    """Read JSON out of a model's reply: a fenced ```json block, or the first object or list in it."""
    if not isinstance(text, str):
        return text
    decoder = json.JSONDecoder()
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for start, char in enumerate(stripped):
        if char in "{[":
            try:
                value, _ = decoder.raw_decode(stripped, start)
            except ValueError:
                continue
            return value
    raise ValueError(f"no JSON object or list found in {stripped[:80]!r}")


@workflow_function
def join(items: Any, separator: str = "\n\n", labels: bool = True) -> str:
    """Join a list, or an object's values (e.g. a parallel step's output), into one text.

    With ``labels``, an object's entries are written ``key: value``.
    """
    if isinstance(items, dict):
        parts = [f"{key}: {to_text(value)}" if labels else to_text(value) for key, value in items.items()]
    elif isinstance(items, list):
        parts = [to_text(item) for item in items]
    else:
        parts = [to_text(items)]
    return separator.join(parts)
