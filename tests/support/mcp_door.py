"""MCP clients and servers for the tests: the official SDK's client (``mcp.Client``) on a live
AsterOS, with or without a key, in either protocol era.

``connect(url, key=..., mode=...)``: ``mode="auto"`` speaks 2026-07-28 (the stateless revision,
found with ``server/discover``), ``mode="legacy"`` the 2025-11-25 ``initialize`` handshake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from .processes import python_json
from .servers import ApiProcess

MODES = ("auto", "legacy")  # 2026-07-28, and 2025-11-25


def connect(url: str, *, key: str | None = None, mode: str = "auto", headers: dict[str, str] | None = None) -> Client:
    """An ``mcp.Client`` on ``url`` (``…/mcp``), sending ``Authorization: Bearer <key>``."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    http = httpx2.AsyncClient(headers=sent, timeout=httpx2.Timeout(30, read=120))
    return Client(streamable_http_client(url, http_client=http), mode=mode)  # type: ignore[arg-type]


def seeded_api(folder: Path, seed: str, *, server: str = "daphne", **env: str) -> ApiProcess:
    """A started embedded AsterOS whose database ``seed`` (``module:function``) filled first."""
    api = ApiProcess.embedded(folder, server=server, **env)
    module, function = seed.split(":")
    script = (
        "import django, json\ndjango.setup()\n"
        f"from {module} import {function}\n{function}()\nprint(json.dumps('seeded'))\n"
    )
    python_json(script, api.whole_env or {})
    return api.start()


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)
