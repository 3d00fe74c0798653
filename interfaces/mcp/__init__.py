"""The MCP door: ``/mcp`` (Streamable HTTP, the official SDK), where every agent, star and
workflow is a tool and every run a resource. See docs/mcp.md."""
