"""Hand-written views: the API root, /health, /metrics and the tool catalogue."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import viewsets
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from cosmos.services.errors import NotFound, ServiceError
from cosmos.version import VERSION
from interfaces.edge.auth import AccessDenied, authenticate_request, principal_sees_everything
from interfaces.edge.links import api_link, base_urls
from interfaces.edge.permissions import MetricsPermission
from interfaces.http.health import health_report
from interfaces.http.metrics import scrape
from interfaces.http.pagination import ResourcePagination
from interfaces.http.serializers import APIRootSerializer, HealthSerializer, ToolSerializer
from interfaces.http.viewsets import AsterViewMixin


class APIRootView(AsterViewMixin, APIView):
    """Every registered resource, and where the schema, docs, health and metrics are."""

    schema_tags = ("api",)

    @extend_schema(responses=APIRootSerializer, summary="The API root")
    def get(self, request):
        from interfaces.http.registry import site

        http, _ = base_urls(request)
        body = {
            "name": settings.ASTEROS.name,
            "version": VERSION,
            "resources": {name: api_link(request, f"{basename}-list") for name, basename in site.collections().items()},
            "links": {
                "schema": api_link(request, "schema"),
                "docs": api_link(request, "docs"),
                "health": f"{http}/health",
                "metrics": f"{http}/metrics",
            },
        }
        return Response(body)


def may_see_details(request) -> bool:
    """Readiness details and metrics: public with auth off or ASTEROS_METRICS_PUBLIC, else read with
    no resource limit (as ``MetricsPermission``)."""
    options = settings.ASTEROS
    if not options.enable_auth or options.metrics_public:
        return True
    try:
        principal = authenticate_request(request.headers, getattr(request._request, "user", None))
    except (AccessDenied, ServiceError):  # a bad key, or one over its quota: liveness only
        return False
    return principal_sees_everything(principal, "read")


class HealthView(AsterViewMixin, APIView):
    """Liveness for everyone; readiness details (checks, mode, version) for authorized callers."""

    authentication_classes: list = []  # a bad key must not turn liveness into a 401
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    schema_tags = ("operations",)

    @extend_schema(
        summary="Health",
        auth=[],
        responses={
            200: OpenApiResponse(HealthSerializer, description="Everything works."),
            503: OpenApiResponse(HealthSerializer, description="Something is failing; 'failing' names it."),
        },
    )
    def get(self, request):
        body, status = health_report()
        if not may_see_details(request):
            body = {"status": body["status"]}
        return Response(body, status=status)


class MetricsView(AsterViewMixin, APIView):
    """Prometheus metrics: django-prometheus plus asteros_* (see docs/http.md)."""

    permission_classes = [MetricsPermission]
    renderer_classes = [JSONRenderer]
    schema_tags = ("operations",)

    @extend_schema(
        summary="Prometheus metrics",
        responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="The text exposition format.")},
    )
    def get(self, request):
        return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)


class ToolViewSet(AsterViewMixin, viewsets.GenericViewSet):
    """The tool catalogue: every tool an agent can be given, with its argument schema."""

    serializer_class = ToolSerializer
    pagination_class = ResourcePagination
    lookup_field = "name"
    lookup_value_regex = ".+"  # an MCP tool's name has a slash: mcp:<server>/<tool>
    schema_tags = ("tools",)

    @staticmethod
    def _describe(tool) -> dict:
        return {
            "name": tool.listed_as,  # what agents list (an MCP tool: mcp:<server>/<tool>)
            "description": tool.description,
            "parameters": tool.parameters,
            "timeout": tool.timeout,
        }

    def list(self, request, *args, **kwargs):
        from cosmos.runtime.tools import tool_registry

        found = (tool_registry.get(name) for name in sorted(tool_registry.names()))
        tools = [self._describe(tool) for tool in found if tool is not None]
        page = self.paginate_queryset(tools)
        return self.get_paginated_response(ToolSerializer(page, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The tool's name.")]
    )
    def retrieve(self, request, *args, name: str = "", **kwargs):
        from cosmos.runtime.tools import tool_registry

        tool = tool_registry.get(name)
        if tool is None:
            raise NotFound(f"No tool named {name!r}.")
        return Response(ToolSerializer(self._describe(tool)).data)
