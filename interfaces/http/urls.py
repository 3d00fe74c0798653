"""Routes of the HTTP interface, all generated from the registry, under ASTEROS_API_PREFIX.

This is the one place that reads the prefix: links are reversed from these routes' names
(``interfaces.edge.links.api_link``), and ``manage.py asteros routes`` lists them.

No trailing slash: ``GET /api/agents`` is the seed's route. ``RequestContextMiddleware``
drops a trailing slash under the prefix, so ``/api/agents/`` reaches the same view.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView

from interfaces.edge.links import API_NAMESPACE, API_ROOT_ROUTE
from interfaces.http.keys import KeyUsageView
from interfaces.http.kind_runs import KindCollectionConverter, KindRunView
from interfaces.http.registry import site
from interfaces.http.schema import DocsView
from interfaces.http.usage import UsageView
from interfaces.http.views import APIRootView

register_converter(KindCollectionConverter, "kind")


def api_prefix() -> str:
    """The prefix without slashes, e.g. ``api`` or ``v1/api``."""
    return settings.ASTEROS.api_prefix.strip("/")


def build_urlpatterns() -> list:
    prefix = api_prefix()
    inner = [
        path("schema", SpectacularAPIView.as_view(), name="schema"),
        path("docs", DocsView.as_view(url_name=f"{API_NAMESPACE}:schema"), name="docs"),
        path("keys/me/usage", KeyUsageView.as_view(), name="key-usage"),
        path("usage", UsageView.as_view(), name="usage"),
        *site.get_urls(),
        # After the resources: a kind an app registered, with no resource of its own
        path("<kind:collection>/<str:target>/run", KindRunView.as_view(), name="kind-run"),
    ]
    return [
        path(prefix, APIRootView.as_view(), name=API_ROOT_ROUTE),
        path(f"{prefix}/", include((inner, API_NAMESPACE), namespace=API_NAMESPACE)),
    ]
