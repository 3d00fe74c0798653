"""Routes of every door: the REST API (generated from the registry), /health, /metrics, A2A,
AG-UI, the OpenAI-compatible door (each unless switched off) and the dashboard. A new door adds its ``urls`` here."""

from __future__ import annotations

from django.conf import settings
from django.urls import include, path

from interfaces.http import urls as http_urls
from interfaces.http.views import HealthView, MetricsView


def build_urlpatterns() -> list:
    # The resources are registered by then: the built-ins by the interfaces app's ready(), each
    # app's asteros.py by asteros_site's (asteros_site/apps.py).
    patterns = list(http_urls.build_urlpatterns())
    if settings.ASTEROS.enable_health:
        patterns.append(path("health", HealthView.as_view(), name="health"))
    if settings.ASTEROS.enable_metrics:
        patterns.append(path("metrics", MetricsView.as_view(), name="metrics"))
    if settings.ASTEROS.enable_a2a:
        patterns.append(path("", include("interfaces.a2a.urls")))
    if settings.ASTEROS.enable_agui:
        patterns.append(path("", include("interfaces.agui.urls")))
    if settings.ASTEROS.enable_openai:
        prefix = settings.ASTEROS.openai_prefix.strip("/")
        patterns.append(path(f"{prefix}/", include("interfaces.openai.urls")))
    if settings.ASTEROS.enable_agent_protocol:
        prefix = settings.ASTEROS.agent_protocol_prefix.strip("/")
        patterns.append(path(f"{prefix}/", include("interfaces.agent_protocol.urls")))
    patterns.append(path("", include("interfaces.console.urls")))
    return patterns


urlpatterns = build_urlpatterns()
