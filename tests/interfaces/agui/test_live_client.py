"""Against a live server (``asteros serve``): the official ``@ag-ui/client`` from Node, and the
raw bytes of the SSE response read as they arrive.

The Node test needs ``node`` and ``npm`` (``tests.support.node``); without them it is skipped,
except in CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from urllib.parse import urlsplit

import pytest

from tests.support.node import run_node_script

from .live import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


def run_client_script(script: str, server: LiveServer) -> dict:
    """Run one of tests/js's scripts (the official client) against the server; its report once
    every check in it held and the client stripped nothing (it warns about anything outside the
    1.0 schema)."""
    report, stderr = run_node_script(script, server.url, log=server.log())
    assert "[ag-ui]" not in stderr, stderr[-3000:]
    return report


def test_the_official_ag_ui_client_against_a_live_server(asteros_server: LiveServer):
    report = run_client_script("agui_client.mjs", asteros_server)

    runs = report["scenarios"]
    for name in (
        "text",
        "server_tool",
        "frontend_tool_call",
        "frontend_tool_result",
        "state",
        "state_restored",
        "workflow_state",
    ):
        types = runs[name]["types"]
        assert types[0] == "RUN_STARTED", (name, types)
        assert types[-1] == "RUN_FINISHED", (name, types)
        assert "RUN_ERROR" not in types, (name, types)
    assert runs["text"]["lastText"] == "(offline scripted model) You said: hello from node"
    assert runs["server_tool"]["arguments"] == {"expression": "6 * 7"}
    assert runs["server_tool"]["lastText"] == "The result is 42."
    assert runs["frontend_tool_call"]["arguments"] == {"color": "blue"}
    assert runs["frontend_tool_call"]["finished"]["outcome"] == "success"
    assert len(runs["frontend_tool_call"]["finished"]["pendingToolCallIds"]) == 1
    assert runs["frontend_tool_result"]["lastText"] == "The result is background set to blue."
    assert runs["state"]["state"] == {"theme": "dark", "count": 2}
    assert runs["state_restored"]["state"] == {"theme": "dark", "count": 2}
    assert runs["workflow_state"]["state"]["steps"]["first"]["status"] == "succeeded"
    assert 400 <= runs["bad_body"]["status"] < 500
    assert json.loads(runs["bad_body"]["body"])["error"]["code"] == "invalid_input"


def test_the_raw_bytes_arrive_event_by_event_with_lf_only(asteros_server: LiveServer):
    url = urlsplit(asteros_server.url)
    body = {
        "threadId": f"raw-{uuid.uuid4().hex[:8]}",
        "runId": str(uuid.uuid4()),
        "messages": [{"id": "u1", "role": "user", "content": "count slowly"}],
    }
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    started = time.monotonic()
    connection.request(
        "POST",
        "/agui/agents/agui-paced",
        body=json.dumps(body),
        headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
    )
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert response.getheader("Transfer-Encoding") == "chunked"
    chunks: list[tuple[float, bytes]] = []
    while True:
        data = response.read1(65536)
        if not data:
            break
        chunks.append((time.monotonic() - started, data))
    connection.close()

    raw = b"".join(data for _, data in chunks)
    assert b"\r" not in raw, "LF line endings only"
    assert len(chunks) > 1, "the events arrive as they happen, not as one body"
    assert chunks[-1][0] - chunks[0][0] > 0.2, "30 tokens at 60/s take half a second: the first ones came early"
    events = []
    for frame in raw.decode().split("\n\n")[:-1]:
        lines = frame.split("\n")
        if all(line.startswith(":") for line in lines):
            continue
        data_lines = [line for line in lines if line.startswith("data: ")]
        assert len(data_lines) == 1 and all(line.startswith(("id: ", "data: ")) for line in lines), lines
        events.append(json.loads(data_lines[0][6:]))
    types = [event["type"] for event in events]
    assert types[0] == "RUN_STARTED" and types[-1] == "RUN_FINISHED" and "RUN_ERROR" not in types
    assert types.count("TEXT_MESSAGE_CONTENT") > 1
