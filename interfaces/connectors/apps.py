from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """What the server calls out to: remote A2A agents and MCP servers (through ``cosmos.outbound``)."""

    name = "interfaces.connectors"
    label = "connectors"
    verbose_name = "Connectors (remote agents, MCP servers)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from interfaces.connectors import declared, mcp_tools

        declared.install()  # remote A2A agents declared in the admin: tools, and the "a2a" provider
        mcp_tools.install()  # MCP servers' tools: mcp:<server>/<tool> and mcp:<server>/*
