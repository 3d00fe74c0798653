"""The REST resource of MCP servers (``/api/mcp-servers``): the admin's page, over HTTP.

Reads need the ``read`` scope, writes ``admin``. Validation is the model's ``clean()``, and this
door refuses stdio servers: the command a stdio server runs is an operator's choice, made in the
admin among the commands ``ASTEROS_MCP_STDIO_COMMANDS`` lists, never a caller's. After a write the
server's tools are listed (outside any transaction) and the answer shows what it said;
``GET /api/mcp-servers/{name}/tools`` lists them live (502 ``mcp_server_unreachable`` when it
cannot).
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from cosmos.services.errors import ServiceError
from interfaces.connectors import mcp_tools
from interfaces.connectors.models import MCPServer, MCPTransport
from interfaces.http.serializers import ResourceSerializer
from interfaces.http.viewsets import ResourceViewSet

STDIO_REFUSED = (
    "stdio servers are declared by an operator in the admin (their command must be listed in "
    "ASTEROS_MCP_STDIO_COMMANDS); over the API, declare a Streamable HTTP server by its url."
)


class MCPServerUnreachable(ServiceError):
    status = 502
    code = "mcp_server_unreachable"


def _check_after_commit(instance: MCPServer) -> MCPServer:
    # Outside a transaction on_commit runs at once, and the answer shows the tools just listed.
    transaction.on_commit(lambda: mcp_tools.check_server(instance.pk))
    instance.refresh_from_db()
    return instance


class MCPServerSerializer(ResourceSerializer):
    """MCP server. ``header_status`` says whether each header's reference resolves here (``set``,
    ``not set`` or ``refused``); values are never shown. ``tools_snapshot`` is the last tool list
    read from the server, ``check_error`` why the last reading failed."""

    header_status = serializers.DictField(child=serializers.CharField(), read_only=True)
    write_once_fields = ("name",)

    class Meta:
        model = MCPServer
        fields = "__all__"

    def validate(self, attrs: dict) -> dict:
        # Which command runs is never a caller's to say; a stdio row the operator declared may
        # still be enabled, disabled or given other timeouts and approvals here.
        if attrs.get("transport") == MCPTransport.STDIO:
            raise serializers.ValidationError({"transport": [STDIO_REFUSED]})
        if attrs.get("command"):
            raise serializers.ValidationError({"command": [STDIO_REFUSED]})
        return super().validate(attrs)


class MCPToolSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The server's name of the tool; agents list it as mcp:<server>/<name>.")
    listed_as = serializers.CharField(help_text="mcp:<server>/<name>")
    description = serializers.CharField()
    inputSchema = serializers.JSONField(help_text="The server's JSON schema of the tool's arguments.")


class MCPServerToolsSerializer(serializers.Serializer):
    server = serializers.CharField()
    reachable = serializers.BooleanField()
    checked_at = serializers.DateTimeField()
    tools = MCPToolSerializer(many=True)


class MCPServerViewSet(ResourceViewSet):
    """MCP servers: agents use their tools as mcp:<server>/<tool>, or all of them as mcp:<server>/*."""

    resource_name = "mcp-servers"
    search_fields = ("name", "description", "url")
    filter_fields = ("enabled", "transport")
    ordering_fields = ("name", "created_at", "updated_at", "checked_at")
    serializer_class = MCPServerSerializer

    def perform_create(self, serializer) -> None:
        super().perform_create(serializer)
        serializer.instance = _check_after_commit(serializer.instance)

    def perform_update(self, serializer) -> None:
        super().perform_update(serializer)
        serializer.instance = _check_after_commit(serializer.instance)

    @extend_schema(
        responses={200: MCPServerToolsSerializer, 502: OpenApiResponse(description="The server could not be reached.")}
    )
    @action(detail=True, methods=["get"])
    def tools(self, request, **_lookup):
        """The server's tools, listed from it now (and kept as its snapshot)."""
        name = self.get_object().pk
        row = mcp_tools.check_server(name)
        if row is None:  # deleted meanwhile
            raise MCPServerUnreachable(f"MCP server {name!r} no longer exists.")
        if row.check_error:
            raise MCPServerUnreachable(
                row.check_error,
                details={"server": row.name, "checked_at": row.checked_at.isoformat() if row.checked_at else None},
            )
        tools = [
            {
                "name": tool.get("name", ""),
                "listed_as": mcp_tools.listed_name(row.name, tool.get("name", "")),
                "description": tool.get("description", ""),
                "inputSchema": tool.get("inputSchema") or {},
            }
            for tool in row.tools_snapshot or ()
            if isinstance(tool, dict)
        ]
        return Response({"server": row.name, "reachable": True, "checked_at": row.checked_at, "tools": tools})
