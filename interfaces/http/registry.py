"""The AsterOS resource registry: register a model, get a REST API for it.

It is shaped like ``django.contrib.admin.site``, and what you register is an ordinary DRF
viewset::

    from interfaces.http.registry import site
    from interfaces.http.viewsets import ResourceViewSet

    class ReportViewSet(ResourceViewSet):
        resource_name = "reports"
        search_fields = ("title",)
        filter_fields = ("status",)
        ordering_fields = ("created_at",)
        read_only_fields = ("created_at",)

        def perform_create(self, serializer):
            serializer.instance = reports.create(**serializer.validated_data)

    site.register(Report, ReportViewSet)

``register`` serves a subclass of the viewset with what it leaves out filled in: the queryset,
a serializer generated from ``fields`` / ``read_only_fields`` / ``write_once_fields`` (unless
it declares ``serializer_class``), the filter backends for ``filter_fields`` / ``search_fields``
/ ``ordering_fields`` and the pagination (``pagination = "cursor"`` or ``"page"``, unless it
declares ``pagination_class``); then routes them under ``ASTEROS_API_PREFIX`` with the
router's names (``api:reports-list``, ``api:reports-detail``, ``api:reports-<action>``).
The operations are the viewset's, as in DRF: ``ResourceViewSet`` has all five,
``ReadOnlyResourceViewSet`` list and retrieve, ``GenericResourceViewSet`` plus DRF's mixins any
other set. Registering a model twice raises ``AlreadyRegistered``. ``manage.py asteros routes``
lists every route.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.utils.text import slugify
from rest_framework import mixins
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.routers import SimpleRouter

from interfaces.http.viewsets import GenericResourceViewSet, ResourceViewSet

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# DRF's write mixins, whose perform_* would shadow the registry's write semantics if listed first.
_WRITE_HOOKS = {
    "perform_create": mixins.CreateModelMixin,
    "perform_update": mixins.UpdateModelMixin,
    "perform_destroy": mixins.DestroyModelMixin,
}


class AlreadyRegistered(Exception):
    """A model, resource name or interface is registered twice."""


class NotRegistered(Exception):
    """Unregistering (or looking up) something that is not registered."""


def _declares(viewset: type, attribute: str) -> bool:
    """Whether ``viewset`` (or a class of its own above ``GenericResourceViewSet``) sets ``attribute``."""
    own = viewset.__mro__[: viewset.__mro__.index(GenericResourceViewSet)]
    return any(attribute in klass.__dict__ for klass in own)


class Resource:
    """One registered model: the viewset it was registered with and, built on first use, the
    serializer and the viewset actually served (a subclass of the registered one)."""

    def __init__(self, model: type[models.Model], base_viewset: type[GenericResourceViewSet], name: str) -> None:
        self.model = model
        self.base_viewset = base_viewset
        self.name = name

    def __repr__(self) -> str:
        return f"<Resource {self.name}: {self.model._meta.label}>"

    @property
    def lookup_field(self) -> str:
        return self.base_viewset.lookup_field or self.model._meta.pk.name

    @cached_property
    def serializer_class(self) -> type:
        from interfaces.http.serializers import ResourceSerializer

        base = self.base_viewset
        if base.serializer_class is not None:
            return base.serializer_class
        meta: dict[str, Any] = {"model": self.model, "read_only_fields": tuple(base.read_only_fields)}
        if base.exclude:
            meta["exclude"] = tuple(base.exclude)
        else:
            meta["fields"] = base.fields if isinstance(base.fields, str) else tuple(base.fields)
        write_once = base.write_once_fields
        if write_once is None:
            write_once = (self.model._meta.pk.name,)
        return type(
            f"{self.model.__name__}Serializer",
            (ResourceSerializer,),
            {
                "Meta": type("Meta", (), meta),
                "write_once_fields": tuple(write_once),
                "__module__": base.__module__,
                "__doc__": f"{self.model._meta.verbose_name.capitalize()}.",
            },
        )

    @cached_property
    def viewset(self) -> type:
        from interfaces.http.filters import FieldFilterBackend
        from interfaces.http.pagination import ResourcePagination, cursor_pagination

        base = self.base_viewset
        # A bare base (``site.register(Model)``) serves a viewset named and described after the model.
        bare = base.__module__ == GenericResourceViewSet.__module__
        attrs: dict[str, Any] = {
            "serializer_class": self.serializer_class,
            "resource_name": self.name,
            "lookup_field": self.lookup_field,
            "__module__": base.__module__,
            "__qualname__": f"{self.model.__name__}ViewSet" if bare else base.__qualname__,
            "__doc__": (None if bare else base.__doc__) or f"{self.model._meta.verbose_name_plural.capitalize()}.",
        }
        if base.queryset is None:
            attrs["queryset"] = self.model._default_manager.all()
        if not _declares(base, "filter_backends"):
            backends: list[type] = [FieldFilterBackend]
            if base.search_fields:
                backends.append(SearchFilter)
            if base.ordering_fields and base.pagination != "cursor":
                backends.append(OrderingFilter)
            attrs["filter_backends"] = backends
        if not _declares(base, "pagination_class"):
            attrs["pagination_class"] = (
                cursor_pagination(base.cursor_ordering) if base.pagination == "cursor" else ResourcePagination
            )
        return type(attrs["__qualname__"].rpartition(".")[2], (base,), attrs)


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
        viewset: type[GenericResourceViewSet] | None = None,
        **options: Any,
    ) -> Resource | list[Resource]:
        """Serve a model (or several) with ``viewset`` (default ``ResourceViewSet``). ``options``
        override the viewset's declarations, e.g. ``register(Report, resource_name="reports")``."""
        if isinstance(model_or_iterable, type) and issubclass(model_or_iterable, models.Model):
            return self._register_one(model_or_iterable, viewset, options)
        return [self._register_one(model, viewset, options) for model in model_or_iterable]

    def _register_one(
        self, model: type[models.Model], viewset: type[GenericResourceViewSet] | None, options: dict
    ) -> Resource:
        if model._meta.abstract:
            raise ImproperlyConfigured(f"The model {model.__name__} is abstract, so it cannot be registered.")
        base = viewset or ResourceViewSet
        if not (isinstance(base, type) and issubclass(base, GenericResourceViewSet)):
            raise ImproperlyConfigured(
                f"{base!r} must be a subclass of interfaces.http.viewsets.GenericResourceViewSet "
                "(ResourceViewSet, ReadOnlyResourceViewSet)."
            )
        if options:
            base = type(f"{model.__name__}ViewSet", (base,), options)
        name = base.resource_name or slugify(str(model._meta.verbose_name_plural)).replace("_", "-")
        if not _NAME.match(name):
            raise ImproperlyConfigured(f"Resource name {name!r} must be lower-case letters, digits, '-' or '_'.")
        self._check_viewset(model, base)
        with self._lock:
            if model in self._by_model:
                raise AlreadyRegistered(
                    f"The model {model._meta.label} is already registered (as {self._by_model[model].name!r})."
                )
            if name in self._resources or name in self._viewsets:
                raise AlreadyRegistered(f"A resource named {name!r} is already registered.")
            resource = Resource(model, base, name)
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

    def collections(self) -> dict[str, str]:
        """Resource name -> router basename, for each resource with a collection route
        (``api:<basename>-list``: GET to list, POST to create), in registration order."""
        served = [(r.name, r.name, r.base_viewset) for r in self._resources.values()]
        served += [(name, basename, viewset) for name, (viewset, basename) in self._viewsets.items()]
        return {
            name: basename
            for name, basename, viewset in served
            if hasattr(viewset, "list") or hasattr(viewset, "create")
        }

    @staticmethod
    def _check_viewset(model: type[models.Model], viewset: type[GenericResourceViewSet]) -> None:
        from interfaces.http.filters import filter_map, model_field

        for param, lookup in filter_map(viewset).items():
            try:
                model_field(model, lookup)
            except FieldDoesNotExist:
                raise ImproperlyConfigured(
                    f"{viewset.__name__}.filter_fields: {model.__name__} has no field {lookup!r} (for ?{param}=)."
                ) from None
        if viewset.pagination not in ("page", "cursor"):
            raise ImproperlyConfigured(f"{viewset.__name__}.pagination must be 'page' or 'cursor'.")
        for hook, mixin in _WRITE_HOOKS.items():
            if getattr(viewset, hook) is getattr(mixin, hook):
                raise ImproperlyConfigured(
                    f"{viewset.__name__}: list GenericResourceViewSet before DRF's {mixin.__name__}, "
                    f"or its {hook} (a bare serializer.save()) replaces the resource's write semantics."
                )

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
    """Decorator form, like ``admin.register``: ``@register(Report) class ReportViewSet(ResourceViewSet)``."""

    def wrapper(viewset: type) -> type:
        site.register(models_, viewset)
        return viewset

    return wrapper
