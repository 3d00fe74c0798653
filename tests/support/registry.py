"""Registering REST resources for the length of a test, with the URLconf rebuilt to serve them.

    with temporarily(StarMessage, MessageViewSet) as resource:
        api_client.get("/api/star-messages")

The project's routes are built once, when ``asteros_site.urls`` is first imported;
``reloaded_urls`` serves a fresh copy of them (the registry's current routes) inside a block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import import_module
from types import ModuleType
from typing import Any

from django.conf import settings
from django.db import models
from django.test.utils import override_settings
from django.urls import include, path

from asteros_site.routes import build_urlpatterns
from interfaces.http.registry import Resource, ResourceRegistry, site
from interfaces.http.viewsets import GenericResourceViewSet


@contextlib.contextmanager
def temporarily(
    model: type[models.Model],
    viewset: type[GenericResourceViewSet] | None = None,
    *,
    registry: ResourceRegistry = site,
    **options: Any,
) -> Iterator[Resource]:
    """Register ``model`` for the duration of a ``with`` block, with the URLconf rebuilt."""
    if isinstance(settings.ROOT_URLCONF, str):
        import_module(settings.ROOT_URLCONF)  # the project's routes are built without this one
    resource = registry.register(model, viewset, **options)
    try:
        with reloaded_urls():
            yield resource  # type: ignore[misc]
    finally:
        registry.unregister(model)


@contextlib.contextmanager
def reloaded_urls() -> Iterator[None]:
    """Serve a freshly built URLconf (the registry's current routes) inside the block."""
    root = settings.ROOT_URLCONF
    if isinstance(root, str):
        root = import_module(root)
    urlconf = ModuleType("asteros_registry_urls")  # hashable, as URL resolvers are cached by urlconf
    urlconf.urlpatterns = [path("", include(build_urlpatterns())), *root.urlpatterns]
    for handler in ("handler400", "handler403", "handler404", "handler500"):
        if hasattr(root, handler):
            setattr(urlconf, handler, getattr(root, handler))
    with override_settings(ROOT_URLCONF=urlconf):
        yield
