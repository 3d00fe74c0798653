"""The admin's editors for model settings and JSON: no raw text box takes broken JSON silently.

- ``provider`` is a choice among the providers the runtime knows (``provider_names()``), ``model``
  a text input with a ``<datalist>`` of ``MODEL_SUGGESTIONS`` for the chosen provider (a short
  script swaps the list when the provider changes);
- ``parameters`` and ``tools`` use django-jsonform's editor with a schema: the knobs the
  providers read (the scripted model's ``rules`` included), the tools from the catalogue;
- every other JSON field (a workflow's definition, a schedule's input, metadata, ...) is a JSON
  editor that checks the text as it is typed and, on save, names the line and column of a
  syntax error.

Validation stays where it was (the models' ``clean()``); these only shape what the forms send.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django_jsonform.exceptions import JSONSchemaValidationError
from django_jsonform.forms.fields import JSONFormField
from django_jsonform.validators import JSONSchemaValidator

from .runtime.providers import model_suggestions, provider_names
from .runtime.tools import tool_registry

_COORD_SEPARATOR = "§"  # django-jsonform joins the path of a value with it

# What the providers read from an agent's parameters (cosmos/runtime/providers/*): the editor
# shows these; keys it does not list are kept as they are.
RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Rule",
    "properties": {
        "when": {"type": "string", "title": "When (a regular expression on the user's message)"},
        "call": {"type": "string", "title": "Call (a tool name)"},
        "arguments": {
            "type": "object",
            "title": "Arguments ($match, $1..$9 are replaced)",
            "properties": {},
            "additionalProperties": True,
        },
        "after_tool": {"type": "boolean", "title": "Also after tool results"},
    },
}
PARAMETERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Parameters",
    "properties": {
        "temperature": {"type": "number", "minimum": 0, "maximum": 2, "helpText": "0 to 2; empty: the model's."},
        "max_tokens": {"type": "integer", "minimum": 1, "helpText": "The longest reply, in tokens."},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "top_k": {"type": "integer", "minimum": 1, "helpText": "Anthropic only."},
        "seed": {"type": "integer", "helpText": "OpenAI only."},
        "stop": {"type": "array", "title": "Stop sequences", "items": {"type": "string"}},
        "reply": {"type": "string", "helpText": "Scripted model: the reply; {input} is the user's message."},
        "reply_tokens": {"type": "integer", "minimum": 0, "helpText": "Scripted model: reply with N tokens."},
        "ttft_ms": {"type": "integer", "minimum": 0, "title": "Time to first token (ms)", "helpText": "Scripted."},
        "tokens_per_second": {"type": "number", "minimum": 0, "helpText": "Scripted model: pacing (0: at once)."},
        "rules": {
            "type": "array",
            "title": "Rules (scripted model: tool calls)",
            "items": RULE_SCHEMA,
        },
    },
    "additionalProperties": True,
}


def json_syntax_error(text: str) -> str | None:
    """Why ``text`` is not JSON, with the line and column; None when it parses."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
    return None


class ReadableJSONMixin:
    """A JSON form field whose syntax errors say where they are, and whose empty value is the
    model's empty value (``{}``, ``[]``) rather than ``null``."""

    empty_json: Any = None

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            problem = json_syntax_error(value)
            if problem:
                raise ValidationError(problem, code="invalid")
        elif value in (None, "") and self.empty_json is not None:
            return copy.deepcopy(self.empty_json)
        return super().to_python(value)  # type: ignore[misc]

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        if value is None and self.empty_json is not None:
            value = self.empty_json
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)  # type: ignore[attr-defined]


class JSONEditorWidget(forms.Textarea):
    """A monospace JSON editor: the page's script marks a syntax error as it is typed (and the
    form refuses it on save, with the line and column)."""

    class Media:
        js = ("asteros/json_editor.js",)

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        defaults = {
            "class": "vLargeTextField asteros-json",
            "spellcheck": "false",
            "data-asteros-json": "true",
            "style": "font-family: ui-monospace, monospace; width: 100%; max-width: 60em; tab-size: 2;",
        }
        super().__init__({**defaults, **(attrs or {})})

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        lines = str(value or "").count("\n") + 1
        attrs = {**(attrs or {}), "rows": min(max(lines + 1, 4), 40)}
        return super().get_context(name, value, attrs)

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        editor = super().render(name, value, attrs, renderer)
        # Filled by the script while the text is not JSON.
        return format_html('{}<p class="errornote asteros-json-error" style="display: none"></p>', editor)


class ReadableJSONField(ReadableJSONMixin, forms.JSONField):
    widget = JSONEditorWidget

    def __init__(self, *, empty_json: Any = None, **kwargs: Any) -> None:
        self.empty_json = empty_json
        super().__init__(**kwargs)


def _coords(key: str) -> str:
    return key.replace(_COORD_SEPARATOR, ".").strip(".") or "the value"


def _with_blanks(schema: dict[str, Any], value: Any) -> Any:
    """``value`` with the keys the schema lists and the value lacks (django-jsonform's checker
    wants them all), so that a partial object from the API or an older row is checked too."""
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        filled = dict(value)
        for key, sub in schema["properties"].items():
            if key not in filled:
                kind = sub.get("type")
                filled[key] = {"array": [], "object": {}, "string": "", "boolean": False}.get(kind)
            elif isinstance(sub, dict):
                filled[key] = _with_blanks(sub, filled[key])
        return filled
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_with_blanks(schema["items"], item) for item in value]
    return value


def _pruned(value: Any) -> Any:
    """The editor sends every knob it shows; an unset one (null, "", [], {}) is no knob at all:
    an empty ``rules`` would otherwise turn off the scripted model's calculator."""
    if isinstance(value, dict):
        kept = {key: _pruned(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in (None, "", [], {})}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def fits_schema(schema: dict[str, Any], value: Any) -> bool:
    """Whether the form editor can show ``value`` as it is (its keys of the right types, the keys
    it does not list as text): otherwise it would fail to draw, or turn values into text."""
    try:
        JSONSchemaValidator(schema)(_with_blanks(schema, value))
    except JSONSchemaValidationError:
        return False
    return True


class SchemaJSONField(ReadableJSONMixin, JSONFormField):
    """django-jsonform's editor for a JSON field with a schema; a value the schema refuses is a
    form error that names where ("temperature: Invalid value. Only numbers allowed.")."""

    def __init__(
        self,
        *,
        schema: dict[str, Any] | Callable[[], dict[str, Any]],
        empty_json: Any,
        prune: bool = False,
        check: bool = True,
        **kwargs: Any,
    ) -> None:
        self.empty_json = empty_json
        self.prune = prune
        self.check = check  # False: the model's clean() checks the value (and says it better)
        kwargs.setdefault("required", False)
        super().__init__(schema=schema, **kwargs)

    def validate(self, value: Any) -> None:
        forms.JSONField.validate(self, value)
        if not self.check:
            return
        schema = self.widget.get_schema()
        # Keys the schema does not list are the model's to check (its clean()): the editor offers
        # to add them as text, the checker would want them to be text too.
        checked = {key: item for key, item in schema.items() if key != "additionalProperties"}
        try:
            JSONSchemaValidator(checked)(_with_blanks(checked, value))
        except JSONSchemaValidationError as exc:
            error_map = dict(exc.error_map or {})
            self.widget.add_error(error_map)
            problems = [
                f"{_coords(key)}: {' '.join(str(m) for m in (messages if isinstance(messages, list) else [messages]))}"
                for key, messages in error_map.items()
            ] or [exc.messages[0]]
            raise ValidationError("; ".join(problems), code="invalid") from None

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        return _pruned(value) if self.prune else value


def tool_choices(current: Any = ()) -> list[str]:
    """The tool catalogue: every tool name, each MCP server's ``mcp:<server>/*``, and the names
    already listed (kept, so that editing a row never drops a tool the catalogue lost)."""
    names = set(tool_registry.names()) | set(tool_registry.patterns())
    names |= {name for name in (current if isinstance(current, list) else ()) if isinstance(name, str)}
    return sorted(names)


def tools_schema(current: Any = ()) -> dict[str, Any]:
    return {
        "type": "array",
        "title": "Tools",
        "items": {"type": "string", "choices": tool_choices(current), "widget": "multiselect"},
    }


class ModelNameInput(forms.TextInput):
    """A text input with the suggested model names of the chosen provider (``<datalist>``)."""

    class Media:
        js = ("asteros/model_suggestions.js",)

    def __init__(self, attrs: dict[str, Any] | None = None, provider_field: str = "provider") -> None:
        super().__init__({"class": "vTextField", **(attrs or {})})
        self.provider_field = provider_field
        self.provider = ""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        suggestions = model_suggestions()
        list_id = f"{(attrs or {}).get('id') or 'id_' + name}_suggestions"
        attrs = {
            **(attrs or {}),
            "list": list_id,
            "autocomplete": "off",
            "data-model-suggestions": json.dumps(suggestions),
            "data-provider-field": self.provider_field,
        }
        context = super().get_context(name, value, attrs)
        if self.provider in suggestions:
            shown = suggestions[self.provider]
        else:  # no provider chosen (an agent using its template's): every suggestion
            shown = sorted({model for models_ in suggestions.values() for model in models_})
        context["widget"].update(list_id=list_id, suggestions=shown)
        return context

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        context = self.get_context(name, value, attrs)
        widget = context["widget"]
        field = super().render(name, value, {**(attrs or {}), **widget["attrs"]}, renderer)
        options = format_html_join("", '<option value="{}"></option>', ((model,) for model in widget["suggestions"]))
        return format_html('{}<datalist id="{}">{}</datalist>', field, widget["list_id"], options)


def provider_field(blank_label: str, help_text: str) -> forms.ChoiceField:
    def choices() -> list[tuple[str, str]]:
        return [("", blank_label), *((name, name) for name in sorted(provider_names()))]

    return forms.ChoiceField(choices=choices, required=False, help_text=help_text)


class ModelSettingsForm(forms.ModelForm):
    """The model settings of an agent or an agent template: provider, model, parameters, tools."""

    provider_blank = "(none)"
    provider_help = "The model provider (the runtime's list)."
    parameters = SchemaJSONField(schema=PARAMETERS_SCHEMA, empty_json={}, prune=True)
    # The catalogue's names are the editor's choices; the model names an unknown tool itself
    # ("Unknown tool(s): teleport. Known tools: ...") and knows the patterns (mcp:<server>/*).
    tools = SchemaJSONField(schema=tools_schema, empty_json=[], check=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"] = provider_field(self.provider_blank, self.provider_help)
        self.fields["provider"].initial = self.initial.get("provider", "")
        model = self.fields.get("model")
        if model is not None:
            model.widget = ModelNameInput()
            model.widget.provider = (self.data.get(self.add_prefix("provider")) if self.is_bound else None) or (
                self.initial.get("provider") or ""
            )
        parameters = self.initial.get("parameters")
        if parameters and not fits_schema(PARAMETERS_SCHEMA, parameters):
            # A row written by the API or from code with values the form cannot hold (a stop
            # given as text, a number under a key it does not list): edit it as JSON instead.
            self.fields["parameters"] = ReadableJSONField(
                empty_json={},
                required=False,
                help_text="Shown as JSON: some of these values do not fit the parameters form.",
            )
        current = self.initial.get("tools")
        self.fields["tools"].widget.schema = lambda: tools_schema(current)


JSON_EDITOR_OVERRIDES = {models.JSONField: {"form_class": ReadableJSONField, "widget": JSONEditorWidget}}
