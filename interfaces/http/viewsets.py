"""Bases of every HTTP view: the resource viewsets (``ResourceViewSet`` and kin) and the hand-written views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, ProtectedError, QuerySet, RestrictedError
from django.http import Http404
from rest_framework import mixins, serializers, viewsets
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from cosmos.services.errors import Conflict, NotFound, conflict_on_integrity
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


class GenericResourceViewSet(AsterViewMixin, viewsets.GenericViewSet):
    """Base of a registered resource with no operations yet (DRF's ``GenericViewSet``, for AsterOS).

    Register a subclass with ``interfaces.http.registry.site.register(Model, ViewSet)``; the
    registry fills in ``queryset``, a generated ``serializer_class`` (unless one is declared),
    ``filter_backends`` and ``pagination_class`` (unless declared) from the attributes below.
    Most resources subclass ``ResourceViewSet`` (every operation) or ``ReadOnlyResourceViewSet``;
    for another set, list DRF's mixins *after* this class (so its ``perform_*`` stay in force)::

        class ReportViewSet(GenericResourceViewSet, mixins.ListModelMixin, mixins.CreateModelMixin): ...

    Writes: ``perform_create`` / ``perform_update`` validate the row with the model's
    ``full_clean`` and save it (a create is always an INSERT); ``perform_destroy`` deletes it, a
    row still in use being a 409 ``in_use``. Override them DRF's way to call a service instead:
    set ``serializer.instance`` to what the service returns, or call ``super()`` and go on.

    One row (``get_object``, on every detail route and action): an unknown key, or one the
    caller's key may not see, is a 404 ``No <verbose name> with <lookup field> 'x'.``
    (``not_found_message``).
    """

    # --- declarations, read by the registry (interfaces.http.registry)
    resource_name: str | None = None  # the URL segment; default: the model's plural name, slugified
    lookup_field: str | None = None  # default: the model's primary key
    lookup_value_regex: str = "[^/]+"
    fields: Sequence[str] | str = "__all__"  # of the generated serializer
    exclude: Sequence[str] | None = None
    read_only_fields: Sequence[str] = ()
    write_once_fields: Sequence[str] | None = None  # settable on create only; default: the key
    search_fields: Sequence[str] = ()  # ?search=
    filter_fields: Sequence[str] | Mapping[str, str] = ()  # ?field=value; a list, or param -> ORM lookup
    ordering_fields: Sequence[str] = ()  # ?ordering=
    ordering: Sequence[str] | None = None
    pagination: str = "page"  # "page" (limit/offset) or "cursor" (ordered by cursor_ordering)
    cursor_ordering: str = "-created_at"

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

    # --- one row: not found says what was looked for ("No agent with id 'x'.")

    def get_object(self) -> Model:
        try:
            return super().get_object()
        except Http404:
            # A malformed key (not a UUID) is not found either; DRF's own text names no resource.
            value = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, "")
            raise NotFound(self.not_found_message(value)) from None

    def not_found_message(self, value: Any) -> str:
        """``No <the model's verbose name> with <the lookup field> <value>.``"""
        meta = self.get_queryset().model._meta
        field = self.lookup_field or meta.pk.name
        label = "id" if field in ("id", "pk") else str(meta.get_field(field).verbose_name)
        return f"No {meta.verbose_name} with {label} {str(value)!r}."

    # --- writes

    # A write that a concurrent one beat (two creates of one id at once both pass the
    # serializer's uniqueness check) is a 409 ``already_exists``, never a 500.

    def perform_create(self, serializer) -> None:
        data = dict(serializer.validated_data)
        with conflict_on_integrity(self.duplicate_message(data)):
            instance = self.get_queryset().model(**data)
            _clean(instance)
            # An INSERT, never an UPDATE: with a chosen id, save() would first try an UPDATE, which
            # overwrites (or nulls the creation time of) a row a concurrent create committed.
            instance.save(force_insert=True)
        serializer.instance = instance

    def perform_update(self, serializer) -> None:
        instance = serializer.instance
        data = dict(serializer.validated_data)
        with conflict_on_integrity(self.duplicate_message(data)):
            for name, value in data.items():
                setattr(instance, name, value)
            _clean(instance)
            instance.save()

    def perform_destroy(self, instance: Model) -> None:
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

    def duplicate_message(self, data: Mapping[str, Any]) -> str:
        meta = self.get_queryset().model._meta
        key = data.get(meta.pk.name)
        what = meta.verbose_name.capitalize()
        return f"{what} {key!r} already exists." if key is not None else f"{what} conflicts with an existing one."


class ResourceViewSet(
    GenericResourceViewSet,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
):
    """Every operation: list, create, retrieve, update (PUT, PATCH) and destroy (``ModelViewSet``)."""


class ReadOnlyResourceViewSet(GenericResourceViewSet, mixins.RetrieveModelMixin, mixins.ListModelMixin):
    """List and retrieve only (``ReadOnlyModelViewSet``); ``@action`` routes may still write."""


def _clean(instance: Model) -> None:
    try:
        instance.full_clean(validate_constraints=False)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from None
