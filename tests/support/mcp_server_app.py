"""A real MCP server built with the official SDK, run as its own process by the MCP client tests.

    python tests/support/mcp_server_app.py http PORT [--legacy]
    python tests/support/mcp_server_app.py stdio

``http`` serves Streamable HTTP at ``/mcp`` (both protocol revisions, as the SDK does);
``--legacy`` makes it answer like a 2025-11-25 server, which knows no ``server/discover``, so a
client must fall back to the ``initialize`` handshake. What the server lived through (a stalled
call cancelled, the headers it saw) is appended to the file named by ``MCP_TEST_LOG``, one JSON
object a line, so a test can see the server's side. Standalone: no Django, no project import.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("asteros-test-tools", instructions="Tools for the AsterOS MCP client tests.")
# What this process lived through, for a client that keeps it running (a stdio child gets no
# MCP_TEST_LOG: its environment is the SDK's small default).
stalls = {"started": 0, "cancelled": 0, "finished": 0}


def record(**entry: Any) -> None:
    path = os.environ.get("MCP_TEST_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")


@server.tool()
def echo(text: str) -> str:
    """Repeat the text, prefixed with "echo: "."""
    return f"echo: {text}"


@server.tool()
def add(a: int, b: int) -> dict[str, int]:
    """Add two integers; the result is structured."""
    return {"sum": a + b}


@server.tool(name="read.file")
def read_file(path: str) -> str:
    """A tool whose name has a character model APIs refuse."""
    return f"contents of {path}"


@server.tool()
async def count(steps: int, ctx: Context) -> str:
    """Count to ``steps``, reporting progress at each step."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await anyio.sleep(0.01)
    return f"counted to {steps}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails, with the reason given."""
    raise ToolError(f"failed on purpose: {reason}")


@server.tool()
async def stall(seconds: float = 60.0) -> str:
    """Wait for a long time (or until the call is cancelled)."""
    record(event="stall started")
    stalls["started"] += 1
    try:
        await anyio.sleep(seconds)
    except BaseException:
        record(event="stall cancelled")
        stalls["cancelled"] += 1
        raise
    record(event="stall finished")
    stalls["finished"] += 1
    return "stalled and done"


@server.tool()
def process() -> dict[str, Any]:
    """This process's id and what its ``stall`` calls lived through."""
    return {"pid": os.getpid(), "stalls": dict(stalls)}


@server.tool()
def die() -> str:
    """The server process ends in the middle of this call."""
    record(event="dying")
    os._exit(3)


@server.tool()
def environment() -> list[str]:
    """The names of this process's environment variables (a stdio child's environment)."""
    return sorted(os.environ)


@server.tool()
def whoami(ctx: Context) -> dict[str, Any]:
    """The request headers this server saw that the tests care about."""
    headers = {k.lower(): v for k, v in (ctx.headers or {}).items()}
    seen = {k: headers[k] for k in ("authorization", "x-team") if k in headers}
    record(event="whoami", headers=seen)
    return seen


@server.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool ``extra`` and tells clients that the tool list changed."""

    def extra() -> str:
        """A tool that exists only after ``grow`` was called."""
        return "extra!"

    server.add_tool(extra)
    await anyio.sleep(0.5)  # a client listening for changes has its subscription acknowledged by now
    try:
        await ctx.session.send_tool_list_changed()  # the 2025-11-25 way: a notification on the session
    except Exception as exc:  # the 2026-07-28 way delivers it to subscriptions/listen streams only
        record(event="list_changed not sent", error=str(exc))
    await ctx.notify_tools_changed()
    return "grown"


def without_discover(app: Any) -> Any:
    """The ASGI app, answering ``server/discover`` as a server that predates it does."""

    async def legacy(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        if isinstance(request, dict) and request.get("method") == "server/discover":
            unknown = {"code": -32601, "message": "Method not found"}
            error = {"jsonrpc": "2.0", "id": request.get("id"), "error": unknown}
            payload = json.dumps(error).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return None
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await app(scope, replay, send)

    return legacy


def main(argv: list[str]) -> None:
    if argv[:1] == ["stdio"]:
        server.run("stdio")
        return
    import uvicorn

    port = int(argv[1])
    app = server.streamable_http_app(host="127.0.0.1")
    if "--legacy" in argv:
        app = without_discover(app)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main(sys.argv[1:])
