"""Real MCP servers for the client tests: ``mcp_server_app.py`` (the official SDK) in its own process.

``MCPTestServer.http()`` serves Streamable HTTP on a free port of 127.0.0.1 (both revisions;
``legacy=True``: only the 2025-11-25 handshake); ``stdio_argv()`` is the command line of the same
server over stdio, to list in ``mcp_stdio_commands``. ``events()`` reads what the server lived
through (``MCP_TEST_LOG``).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.processes import LoggedProcess, free_port

APP = Path(__file__).with_name("mcp_server_app.py")


STDIO_COMMAND = "testtools"  # the name the tests list the stdio server under


def stdio_argv() -> tuple[str, ...]:
    return (sys.executable, str(APP), "stdio")


class MCPTestServer(LoggedProcess):
    def __init__(self, *, legacy: bool = False) -> None:
        super().__init__("mcp-test-server-")
        self.legacy = legacy
        self.port = free_port()
        self.events_file = Path(tempfile.mkstemp(prefix="mcp-test-events-", suffix=".jsonl")[1])

    @classmethod
    def http(cls, *, legacy: bool = False) -> MCPTestServer:
        return cls(legacy=legacy).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self, timeout: float = 30) -> MCPTestServer:
        command = [sys.executable, str(APP), "http", str(self.port), *(["--legacy"] if self.legacy else [])]
        self.launch(command, os.environ | {"MCP_TEST_LOG": str(self.events_file), "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.output()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the MCP test server did not listen within {timeout:.0f}s: {self.output()}")

    def events(self) -> list[dict[str, Any]]:
        text = self.events_file.read_text() if self.events_file.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait_for_event(self, name: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get("event") == name:
                    return event
            time.sleep(0.05)
        raise AssertionError(f"the MCP test server never logged {name!r}: {self.events()}")

    def close(self) -> None:
        super().close()
        self.events_file.unlink(missing_ok=True)

    def __enter__(self) -> MCPTestServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
