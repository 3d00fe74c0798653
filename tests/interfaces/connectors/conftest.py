"""Live MCP servers (the official SDK, in their own processes) for the MCP client tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from interfaces.connectors import mcp_tools
from tests.support.mcp_servers import STDIO_COMMAND, MCPTestServer, stdio_argv


@pytest.fixture(scope="module")
def mcp_http() -> Iterator[MCPTestServer]:
    """A server of the current revision (2026-07-28, stateless; it speaks 2025-11-25 too)."""
    with MCPTestServer.http() as server:
        yield server


@pytest.fixture(scope="module")
def mcp_legacy() -> Iterator[MCPTestServer]:
    """A server of the previous revision only (2025-11-25, the initialize handshake)."""
    with MCPTestServer.http(legacy=True) as server:
        yield server


@pytest.fixture
def fresh_mcp_server() -> Iterator[MCPTestServer]:
    """A server of its own, for a test that changes or kills it."""
    with MCPTestServer.http(legacy=True) as server:
        yield server


@pytest.fixture
def stdio_command(settings_options) -> str:
    """The test server over stdio, listed as the command ``testtools`` (as the session's
    distributed worker lists it)."""
    settings_options(mcp_stdio_commands=((STDIO_COMMAND, stdio_argv()),))
    return STDIO_COMMAND


@pytest.fixture(autouse=True)
def _fresh_catalogue() -> Iterator[None]:
    """Rows of a test are rolled back; their cached tools must not outlive it in this process."""
    mcp_tools.catalogue.forget()
    yield
    mcp_tools.catalogue.forget()
