"""Bases of every HTTP view: the generated resource viewsets and the hand-written views."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, ProtectedError, QuerySet, RestrictedError
from rest_framework import serializers, viewsets
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from cosmos.services.errors import Conflict, conflict_on_integrity
from interfaces.edge.auth import KeyPrincipal
from interfaces.http.schema import AsterAutoSchema


class EventStreamRenderer(BaseRenderer):
    """Lets content negotiation pick ``text/event-stream``; the views stream the body themselves."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data, "application/json", renderer_context)


# Endpoints that can answer with an SSE stream offer it next to JSON.
STREAM_RENDERERS = (JSONRenderer, BrowsableAPIRenderer, EventStreamRenderer)


def wants_event_stream(request) -> bool:
    renderer = getattr(request, "accepted_renderer", None)
    return getattr(renderer, "format", None) == "sse"


class AsterViewMixin:
    """What every DRF view of AsterOS shares: the schema class and the scope hook."""

    schema = AsterAutoSchema()
    required_scope: str | None = None
    schema_tags: tuple[str, ...] = ()

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors of a streaming endpoint are JSON, whatever the client asked to stream.
        if isinstance(response, Response) and wants_event_stream(request):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


class ResourceViewSet(AsterViewMixin, viewsets.GenericViewSet):
    """Base of every generated viewset (see ``interfaces.http.registry``).

    Writes go through three hooks a ``ResourceConfig`` may override to call a service:
    ``create_object(data)``, ``update_object(instance, data)`` and ``delete_object(instance)``.
    """

    resource_name: str = ""
    filter_fields: Any = ()

    # --- per-key resource restrictions ("agents:chat-agent")

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        principal = getattr(self.request, "user", None)
        if isinstance(principal, KeyPrincipal) and principal.resources:
            queryset = self.restrict_queryset(queryset, principal)
        return queryset

    def principal_may_use(self, principal: KeyPrincipal) -> bool:
        """A key limited to some resources may use this resource if it names any of it; adding
        rows needs all of it (``"agents"`` or ``"agents:*"``), as a new row is none of its ids."""
        if principal.allows_resource(self.resource_name):
            return True
        return self.action != "create" and bool(principal.allowed_ids(self.resource_name))

    def restrict_queryset(self, queryset: QuerySet, principal: KeyPrincipal) -> QuerySet:
        allowed = principal.allowed_ids(self.resource_name)
        return queryset if allowed is None else queryset.filter(pk__in=allowed)

    def resource_key(self, obj: Model) -> tuple[str, str]:
        return self.resource_name, str(obj.pk)

    # --- writes

    # A write that a concurrent one beat (two creates of one id at once both pass the
    # serializer's uniqueness check) is a 409 ``already_exists``, never a 500.

    def perform_create(self, serializer) -> None:
        with conflict_on_integrity(self._duplicate_message(serializer.validated_data)):
            serializer.instance = self.create_object(dict(serializer.validated_data))

    def perform_update(self, serializer) -> None:
        with conflict_on_integrity(self._duplicate_message(serializer.validated_data)):
            serializer.instance = self.update_object(serializer.instance, dict(serializer.validated_data))

    def _duplicate_message(self, data: dict) -> str:
        meta = self.get_queryset().model._meta
        key = data.get(meta.pk.name)
        what = meta.verbose_name.capitalize()
        return f"{what} {key!r} already exists." if key is not None else f"{what} conflicts with an existing one."

    def perform_destroy(self, instance) -> None:
        self.delete_object(instance)

    def create_object(self, data: dict) -> Model:
        model = self.get_queryset().model
        instance = model(**data)
        _clean(instance)
        # An INSERT, never an UPDATE: with a chosen id, save() would first try an UPDATE, which
        # overwrites (or nulls the creation time of) a row a concurrent create committed.
        instance.save(force_insert=True)
        return instance

    def update_object(self, instance: Model, data: dict) -> Model:
        for name, value in data.items():
            setattr(instance, name, value)
        _clean(instance)
        instance.save()
        return instance

    def delete_object(self, instance: Model) -> None:
        try:
            instance.delete()
        except (ProtectedError, RestrictedError) as exc:
            blockers = getattr(exc, "protected_objects", None) or getattr(exc, "restricted_objects", ())
            users = sorted({f"{o._meta.verbose_name} {o.pk}" for o in blockers if hasattr(o, "_meta")})[:10]
            raise Conflict(
                f"{instance._meta.verbose_name.capitalize()} {instance.pk!r} is in use; remove what uses it first.",
                code="in_use",
                details={"used_by": users},
            ) from None


def _clean(instance: Model) -> None:
    try:
        instance.full_clean(validate_constraints=False)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from None
