"""Routes of every interface: the HTTP API (generated from the registry), /health, /metrics,
and the ``urls`` module of any other interface package (``interfaces/<name>/urls.py``: A2A,
AG-UI, the dashboard), included as they appear, without editing this file."""

from __future__ import annotations

import pkgutil
from importlib.util import find_spec

from django.conf import settings
from django.urls import include, path

from .http import urls as http_urls
from .http.views import HealthView, MetricsView
from .registry import autodiscover


def interface_urlconfs() -> list[str]:
    """``interfaces.<package>.urls`` for every interface package but http, sorted by name."""
    import interfaces

    switched_off = {
        name for name, on in (("a2a", settings.ASTEROS.enable_a2a), ("agui", settings.ASTEROS.enable_agui)) if not on
    }
    found = []
    for module in pkgutil.iter_modules(interfaces.__path__):
        if not module.ispkg or module.name in ("http", "management", "migrations", *switched_off):
            continue
        name = f"interfaces.{module.name}.urls"
        if find_spec(name) is not None:
            found.append(name)
    return sorted(found)


def build_urlpatterns() -> list:
    # Resources must be registered (built-ins, and each app's asteros.py) before routes exist.
    autodiscover()
    patterns = list(http_urls.build_urlpatterns())
    if settings.ASTEROS.enable_health:
        patterns.append(path("health", HealthView.as_view(), name="health"))
    if settings.ASTEROS.enable_metrics:
        patterns.append(path("metrics", MetricsView.as_view(), name="metrics"))
    patterns += [path("", include(name)) for name in interface_urlconfs()]
    return patterns


urlpatterns = build_urlpatterns()
