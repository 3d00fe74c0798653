"""What reaching one MCP server takes, and how talking to it fails: light, so that the tool
catalogue can name them without loading the MCP SDK (``mcp_client`` does, when a server is used)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

OnListChanged = Callable[[], Awaitable[None] | None]
OnProgress = Callable[[float, float | None, str | None], Awaitable[None]]  # progress, total, message


class MCPClientError(Exception):
    """A failure talking to an MCP server; the message names the server, never a credential."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """What this process needs to reach one server (built from an ``MCPServer`` row)."""

    name: str
    transport: str  # "http" | "stdio"
    url: str = ""
    command: str = ""  # the NAME of an allowed stdio command
    headers: Mapping[str, str] = field(default_factory=dict)  # header -> reference
    call_timeout: float = 60.0
    connect_timeout: float = 10.0
    version: object = None  # the row's (created_at, updated_at): a saved row is a new spec

    @classmethod
    def from_row(cls, row: Any) -> ServerSpec:
        return cls(
            name=row.name,
            transport=row.transport,
            url=row.url,
            command=row.command,
            headers=dict(row.headers or {}),
            call_timeout=row.call_timeout,
            connect_timeout=row.connect_timeout,
            version=(getattr(row, "created_at", None), getattr(row, "updated_at", None)),
        )
