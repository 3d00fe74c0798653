"""Prompt templates: text with ``{{ expression }}`` placeholders, and nothing else.

Each placeholder is an expression of ``cosmos.runtime.expressions`` (so ``{{ steps.research.output }}``,
``{{ input }}``, ``{{ state.topic or 'anything' }}``); its value is written as text (``None``
as nothing, data as JSON). There are no statements, loops, filters or includes, and no code
runs: a template can only read the workflow's data.

``render_value`` is for function arguments: a string that is exactly one placeholder keeps the
value's type (``"{{ steps.scores.output }}"`` passes the list itself), other strings are
rendered as text, and lists and objects are rendered item by item.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cosmos.runtime.expressions import Expression, ExpressionError, compile_expression, to_text

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
MAX_TEMPLATE_LENGTH = 100_000


@dataclass(frozen=True)
class Template:
    source: str
    parts: tuple[str | Expression, ...]

    @property
    def expressions(self) -> tuple[Expression, ...]:
        return tuple(p for p in self.parts if isinstance(p, Expression))

    @property
    def single(self) -> Expression | None:
        """The expression when the template is exactly one placeholder (spaces around allowed)."""
        parts = [p for p in self.parts if not (isinstance(p, str) and not p.strip())]
        return parts[0] if len(parts) == 1 and isinstance(parts[0], Expression) else None

    def render(self, context: Mapping[str, Any]) -> str:
        return "".join(p if isinstance(p, str) else to_text(p.evaluate(context)) for p in self.parts)


@lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    """Parse a template; raises ``ExpressionError`` naming the bad placeholder."""
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise ExpressionError(f"the template is longer than {MAX_TEMPLATE_LENGTH} characters")
    parts: list[str | Expression] = []
    position = 0
    for match in PLACEHOLDER.finditer(source):
        parts.append(source[position : match.start()])
        inner = match.group(1)
        if not inner.strip():
            raise ExpressionError("an empty placeholder {{ }}")
        try:
            parts.append(compile_expression(inner))
        except ExpressionError as exc:
            raise ExpressionError(f"in {{{{{inner}}}}}: {exc}") from None
        position = match.end()
    parts.append(source[position:])
    for text in parts:
        if isinstance(text, str) and "{{" in text:
            raise ExpressionError("a '{{' is never closed with '}}'")
    return Template(source, tuple(p for p in parts if p != ""))


def render(source: str, context: Mapping[str, Any]) -> str:
    return compile_template(source).render(context)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string in a JSON value; a lone placeholder keeps its value's type."""
    if isinstance(value, str):
        template = compile_template(value)
        single = template.single
        return single.evaluate(context) if single is not None else template.render(context)
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, context) for k, v in value.items()}
    return value


def value_templates(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (the templates ``render_value`` would render)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from value_templates(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from value_templates(item)
