"""The AsterOS resource registry: register a model, get a REST API for it.

It is shaped like ``django.contrib.admin.site``::

    from interfaces.http.registry import ResourceConfig, site

    class ReportResource(ResourceConfig):
        resource_name = "reports"
        search_fields = ("title",)
        filter_fields = ("status",)
        ordering_fields = ("created_at",)
        read_only_fields = ("created_at",)

    site.register(Report, ReportResource)

``register`` generates a serializer, a viewset and the routes (list, retrieve, create, update,
delete, plus any ``@action`` of the config) under ``ASTEROS_API_PREFIX``, with filtering, search,
ordering, pagination, auth scopes and the OpenAPI schema. A ``ResourceConfig`` becomes a base
class of the generated viewset: its declarations are viewset attributes, and its methods (the
write hooks ``create_object`` / ``update_object`` / ``delete_object`` and extra actions) run with
``self`` being the viewset. Registering a model twice raises ``AlreadyRegistered``.

The built-in resources (agents, templates, stars, workflows, runs, sessions, tools) are
registered in ``interfaces.http.resources``, imported by the interfaces app's ``ready()``. With
``ASTEROS_AUTO_DISCOVER`` on, the ``asteros`` module of every installed app is imported by
``asteros_site.apps.autodiscover`` (Django's ``autodiscover_modules``, like ``admin.py``): a
module that fails to import leaves the registry as it was before it (``_registry``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.utils.text import slugify
from rest_framework import mixins
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.routers import SimpleRouter

logger = logging.getLogger(__name__)

OPERATIONS: dict[str, type] = {
    "list": mixins.ListModelMixin,
    "retrieve": mixins.RetrieveModelMixin,
    "create": mixins.CreateModelMixin,
    "update": mixins.UpdateModelMixin,
    "destroy": mixins.DestroyModelMixin,
}
ALL_OPERATIONS = tuple(OPERATIONS)
READ_ONLY = ("list", "retrieve")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class AlreadyRegistered(Exception):
    """A model, resource name or interface is registered twice."""


class NotRegistered(Exception):
    """Unregistering (or looking up) something that is not registered."""


class ResourceConfig:
    """How a model is served. Subclass it and pass it to ``site.register`` (like ``ModelAdmin``).

    Declarations (all optional):

    - ``resource_name``: the URL segment; defaults to the model's plural name, slugified.
    - ``lookup_field`` / ``lookup_value_regex``: how one item is addressed (the primary key).
    - ``fields`` / ``exclude``: the serializer's fields (``"__all__"`` by default).
    - ``read_only_fields``; ``write_once_fields`` (settable on create only; default: the key).
    - ``search_fields`` (``?search=``), ``filter_fields`` (``?field=value``; a list, or a mapping
      of parameter to ORM lookup), ``ordering_fields`` (``?ordering=``) and ``ordering``.
    - ``operations``: any of list, retrieve, create, update, destroy (default: all).
    - ``pagination``: ``"page"`` (limit/offset) or ``"cursor"`` ordered by ``cursor_ordering``.
    - ``serializer_class``: use this serializer instead of generating one.
    - ``create_object(data)``, ``update_object(instance, data)``, ``delete_object(instance)``:
      the service calls behind writes (``self`` is the viewset, ``self.request`` the request).
    - DRF ``@action`` methods: extra routes; ``@action(..., required_scope="run")`` sets the
      scope a key needs (default: read for GET, admin for writes).
    """

    resource_name: str | None = None
    lookup_field: str | None = None
    lookup_value_regex: str = "[^/]+"
    fields: Sequence[str] | str = "__all__"
    exclude: Sequence[str] | None = None
    read_only_fields: Sequence[str] = ()
    write_once_fields: Sequence[str] | None = None
    search_fields: Sequence[str] = ()
    filter_fields: Sequence[str] | dict[str, str] = ()
    ordering_fields: Sequence[str] = ()
    ordering: Sequence[str] | None = None
    operations: Sequence[str] = ALL_OPERATIONS
    pagination: str = "page"
    cursor_ordering: str = "-created_at"
    serializer_class: type | None = None


class Resource:
    """One registered model: its config and, built on first use, its serializer and viewset."""

    def __init__(self, model: type[models.Model], config: type[ResourceConfig], name: str) -> None:
        self.model = model
        self.config = config
        self.name = name

    def __repr__(self) -> str:
        return f"<Resource {self.name}: {self.model._meta.label}>"

    @property
    def lookup_field(self) -> str:
        return self.config.lookup_field or self.model._meta.pk.name

    @cached_property
    def serializer_class(self) -> type:
        from interfaces.http.serializers import ResourceSerializer

        config = self.config
        if config.serializer_class is not None:
            return config.serializer_class
        meta: dict[str, Any] = {"model": self.model, "read_only_fields": tuple(config.read_only_fields)}
        if config.exclude:
            meta["exclude"] = tuple(config.exclude)
        else:
            meta["fields"] = config.fields if isinstance(config.fields, str) else tuple(config.fields)
        write_once = config.write_once_fields
        if write_once is None:
            write_once = (self.model._meta.pk.name,)
        return type(
            f"{self.model.__name__}Serializer",
            (ResourceSerializer,),
            {
                "Meta": type("Meta", (), meta),
                "write_once_fields": tuple(write_once),
                "__module__": config.__module__,
                "__doc__": f"{self.model._meta.verbose_name.capitalize()}.",
            },
        )

    @cached_property
    def viewset(self) -> type:
        from interfaces.http.pagination import ResourcePagination, cursor_pagination
        from interfaces.http.viewsets import ResourceViewSet

        config = self.config
        unknown = set(config.operations) - set(OPERATIONS)
        if unknown:
            raise ImproperlyConfigured(
                f"{config.__name__}.operations: unknown {sorted(unknown)}; use {ALL_OPERATIONS}."
            )
        # ResourceViewSet before DRF's mixins, so its perform_* (the config's write hooks) win.
        bases = (config, ResourceViewSet, *(OPERATIONS[op] for op in ALL_OPERATIONS if op in config.operations))
        attrs: dict[str, Any] = {
            "queryset": self.model._default_manager.all(),
            "serializer_class": self.serializer_class,
            "resource_name": self.name,
            "lookup_field": self.lookup_field,
            "__module__": config.__module__,
            "__doc__": (config.__doc__ if config.__doc__ != ResourceConfig.__doc__ else None)
            or f"{self.model._meta.verbose_name_plural.capitalize()}.",
        }
        if not hasattr(config, "filter_backends"):
            from interfaces.http.filters import FieldFilterBackend

            backends: list[type] = [FieldFilterBackend]
            if config.search_fields:
                backends.append(SearchFilter)
            if config.ordering_fields and config.pagination != "cursor":
                backends.append(OrderingFilter)
            attrs["filter_backends"] = backends
        if not hasattr(config, "pagination_class"):
            attrs["pagination_class"] = (
                cursor_pagination(config.cursor_ordering) if config.pagination == "cursor" else ResourcePagination
            )
        return type(f"{self.model.__name__}ViewSet", bases, attrs)


@dataclass
class RegistryState:
    """Everything a ``ResourceRegistry`` holds. ``copy.copy`` gives a snapshot that later
    registrations leave alone (its own dicts; the resources themselves are shared)."""

    resources: dict[str, Resource]
    by_model: dict[type[models.Model], Resource]
    viewsets: dict[str, tuple[type, str]]

    def __copy__(self) -> RegistryState:
        return RegistryState(dict(self.resources), dict(self.by_model), dict(self.viewsets))


class ResourceRegistry:
    """The registry of resources served by the HTTP interface (``interfaces.http.registry.site``)."""

    def __init__(self) -> None:
        self._resources: dict[str, Resource] = {}
        self._by_model: dict[type[models.Model], Resource] = {}
        self._viewsets: dict[str, tuple[type, str]] = {}
        self._lock = threading.RLock()

    # --- the state Django's autodiscover_modules(..., register_to=site) copies before importing
    # an app's module and puts back when the import fails, as it does with admin.site._registry.

    @property
    def _registry(self) -> RegistryState:
        return RegistryState(self._resources, self._by_model, self._viewsets)

    @_registry.setter
    def _registry(self, state: RegistryState) -> None:
        with self._lock:
            self._resources, self._by_model, self._viewsets = state.resources, state.by_model, state.viewsets

    # --- registering

    def register(
        self,
        model_or_iterable: type[models.Model] | Iterable[type[models.Model]],
        config_class: type[ResourceConfig] | None = None,
        **options: Any,
    ) -> Resource | list[Resource]:
        """Serve a model (or several). ``options`` override the config's declarations."""
        if isinstance(model_or_iterable, type) and issubclass(model_or_iterable, models.Model):
            return self._register_one(model_or_iterable, config_class, options)
        return [self._register_one(model, config_class, options) for model in model_or_iterable]

    def _register_one(
        self, model: type[models.Model], config_class: type[ResourceConfig] | None, options: dict
    ) -> Resource:
        if model._meta.abstract:
            raise ImproperlyConfigured(f"The model {model.__name__} is abstract, so it cannot be registered.")
        config = config_class or ResourceConfig
        if not (isinstance(config, type) and issubclass(config, ResourceConfig)):
            raise ImproperlyConfigured(f"{config!r} must be a subclass of interfaces.http.registry.ResourceConfig.")
        if options:
            config = type(f"{model.__name__}Config", (config,), options)
        name = config.resource_name or slugify(str(model._meta.verbose_name_plural)).replace("_", "-")
        if not _NAME.match(name):
            raise ImproperlyConfigured(f"Resource name {name!r} must be lower-case letters, digits, '-' or '_'.")
        self._check_config(model, config)
        with self._lock:
            if model in self._by_model:
                raise AlreadyRegistered(
                    f"The model {model._meta.label} is already registered (as {self._by_model[model].name!r})."
                )
            if name in self._resources or name in self._viewsets:
                raise AlreadyRegistered(f"A resource named {name!r} is already registered.")
            resource = Resource(model, config, name)
            self._resources[name] = resource
            self._by_model[model] = resource
        return resource

    def register_viewset(self, name: str, viewset: type, *, basename: str | None = None) -> None:
        """Serve a hand-written viewset (not backed by a model), e.g. the tool catalogue."""
        with self._lock:
            if name in self._resources or name in self._viewsets:
                raise AlreadyRegistered(f"A resource named {name!r} is already registered.")
            self._viewsets[name] = (viewset, basename or name)

    def unregister(self, model_or_name: type[models.Model] | str) -> None:
        with self._lock:
            if isinstance(model_or_name, str):
                if model_or_name in self._viewsets:
                    del self._viewsets[model_or_name]
                    return
                resource = self._resources.get(model_or_name)
            else:
                resource = self._by_model.get(model_or_name)
            if resource is None:
                raise NotRegistered(f"{getattr(model_or_name, '__name__', model_or_name)} is not registered.")
            del self._resources[resource.name]
            del self._by_model[resource.model]

    def is_registered(self, model_or_name: type[models.Model] | str) -> bool:
        if isinstance(model_or_name, str):
            return model_or_name in self._resources or model_or_name in self._viewsets
        return model_or_name in self._by_model

    def get(self, model_or_name: type[models.Model] | str) -> Resource:
        resource = (
            self._resources.get(model_or_name) if isinstance(model_or_name, str) else self._by_model.get(model_or_name)
        )
        if resource is None:
            raise NotRegistered(f"{getattr(model_or_name, '__name__', model_or_name)} is not registered.")
        return resource

    def resources(self) -> list[Resource]:
        return list(self._resources.values())

    def names(self) -> list[str]:
        return [*self._resources, *self._viewsets]

    @staticmethod
    def _check_config(model: type[models.Model], config: type[ResourceConfig]) -> None:
        from interfaces.http.filters import filter_map, model_field

        for param, lookup in filter_map(config).items():
            try:
                model_field(model, lookup)
            except FieldDoesNotExist:
                raise ImproperlyConfigured(
                    f"{config.__name__}.filter_fields: {model.__name__} has no field {lookup!r} (for ?{param}=)."
                ) from None
        if config.pagination not in ("page", "cursor"):
            raise ImproperlyConfigured(f"{config.__name__}.pagination must be 'page' or 'cursor'.")

    # --- routes

    def get_urls(self) -> list:
        """The routes of every registered resource (without the API prefix)."""
        router = SimpleRouter(trailing_slash=False)
        with self._lock:
            for resource in self._resources.values():
                router.register(resource.name, resource.viewset, basename=resource.name)
            for name, (viewset, basename) in self._viewsets.items():
                router.register(name, viewset, basename=basename)
        return router.urls


site = ResourceRegistry()


def register(*models_: type[models.Model], site: ResourceRegistry = site) -> Callable[[type], type]:
    """Decorator form, like ``admin.register``: ``@register(Report) class ReportResource(...)``."""

    def wrapper(config_class: type) -> type:
        site.register(models_, config_class)
        return config_class

    return wrapper
