"""``?field=value`` filtering declared by a resource's ``filter_fields``.

``filter_fields`` is a list of model field names (``["status", "kind"]``) or a mapping of query
parameter to ORM lookup (``{"session": "session_id"}``). Repeating a parameter filters on any of
the values. A value the field cannot hold (a malformed UUID, an unknown choice) is a 400.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from rest_framework import serializers
from rest_framework.filters import BaseFilterBackend

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def filter_map(view) -> dict[str, str]:
    declared = getattr(view, "filter_fields", None) or ()
    if isinstance(declared, Mapping):
        return dict(declared)
    return {name: name for name in declared}


def model_field(model: type[models.Model], lookup: str) -> models.Field:
    """The model field a lookup like ``session_id`` or ``template__provider`` ends on."""
    parts = lookup.split("__")
    field: models.Field | None = None
    current = model
    for part in parts:
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            # ``session_id``: the attname of a foreign key
            field = next((f for f in current._meta.concrete_fields if f.attname == part), None)
            if field is None:
                raise
            return field.target_field
        if field.is_relation and field.related_model is not None and part != parts[-1]:
            current = field.related_model
    if field is not None and field.is_relation:
        return field.target_field
    assert field is not None
    return field


def _convert(field: models.Field, value: str):
    if isinstance(field, models.BooleanField):
        word = value.strip().lower()
        if word in TRUE:
            return True
        if word in FALSE:
            return False
        raise ValidationError("use true or false")
    if field.choices and value not in {str(choice) for choice, _ in field.flatchoices}:
        raise ValidationError(f"use one of {', '.join(str(c) for c, _ in field.flatchoices)}")
    # to_python, then the field's validators (length, slug, ...): a value no row can hold is a 400
    return field.clean(value, None)


class FieldFilterBackend(BaseFilterBackend):
    def filter_queryset(self, request, queryset, view):
        mapping = filter_map(view)
        if not mapping:
            return queryset
        errors: dict[str, str] = {}
        for param, lookup in mapping.items():
            values = [v for v in request.query_params.getlist(param) if v != ""]
            if not values:
                continue
            field = model_field(queryset.model, lookup)
            try:
                converted = [_convert(field, value) for value in values]
            except (ValidationError, ValueError, TypeError) as exc:
                message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
                errors[param] = f"Not a valid value for {param}: {message}"
                continue
            if len(converted) == 1:
                queryset = queryset.filter(**{lookup: converted[0]})
            else:
                queryset = queryset.filter(**{f"{lookup}__in": converted})
        if errors:
            raise serializers.ValidationError(errors)
        return queryset

    def get_schema_operation_parameters(self, view):
        model = getattr(getattr(view, "queryset", None), "model", None)
        parameters = []
        for param, lookup in filter_map(view).items():
            schema: dict = {"type": "string"}
            if model is not None:
                field = model_field(model, lookup)
                if isinstance(field, models.BooleanField):
                    schema = {"type": "boolean"}
                elif field.choices:
                    schema = {"type": "string", "enum": [str(c) for c, _ in field.flatchoices]}
                elif isinstance(field, models.UUIDField):
                    schema = {"type": "string", "format": "uuid"}
                elif isinstance(field, models.IntegerField):
                    schema = {"type": "integer"}
            parameters.append(
                {
                    "name": param,
                    "required": False,
                    "in": "query",
                    "description": f"Only items whose {lookup.replace('__', ' ')} is this value (repeat: any of them).",
                    "schema": schema,
                }
            )
        return parameters
