"""``/mcp`` fuzzed on the live server: JSON-RPC messages of every method the door serves, with
plausible and broken params, in both protocol eras, and garbage. Whatever comes, the answer is a
JSON-RPC message (a result or an error, as JSON or as the last event of an SSE stream) or a
bodiless 202/405/406, never a 5xx and never a hang; no run is left half started."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.support.fuzzing import GARBAGE_BODIES, JSON_VALUES, fuzz_settings, mostly

from .seed import ADMIN_KEY

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

BOUNDED_EXAMPLES = 60
METHODS = (
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "server/discover",
    "initialize",
    "ping",
    "subscriptions/listen",
    "notifications/cancelled",
    "prompts/list",
    "no/such/method",
)
TOOL_NAMES = st.sampled_from(["echo", "brief", "workflow.echo", "hidden", "", "x" * 300, "failing"])
ARGUMENTS = mostly(
    st.fixed_dictionaries({"message": mostly(st.text(min_size=1, max_size=20))}, optional={"session_id": JSON_VALUES})
    | st.fixed_dictionaries({"topic": mostly(st.text(max_size=10))})
)
URIS = st.sampled_from(
    ["asteros://runs/00000000-0000-0000-0000-000000000000", "asteros://runs/x", "file:///etc/passwd", "", "asteros://"]
)
PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "name": mostly(TOOL_NAMES),
        "arguments": ARGUMENTS,
        "uri": mostly(URIS),
        "cursor": JSON_VALUES,
        "requestId": JSON_VALUES,
        "_meta": mostly(st.just({"progressToken": 1}), JSON_VALUES),
        "protocolVersion": st.sampled_from(["2025-11-25", "2026-07-28", "1999-01-01"]),
        "capabilities": st.just({}),
        "clientInfo": st.just({"name": "fuzz", "version": "0"}),
    },
)
MESSAGES = st.fixed_dictionaries(
    {"jsonrpc": mostly(st.just("2.0")), "method": mostly(st.sampled_from(METHODS))},
    optional={"id": mostly(st.integers(0, 1000) | st.text(max_size=8)), "params": mostly(PARAMS)},
)
BODIES = mostly(MESSAGES.map(lambda message: json.dumps(message).encode()), GARBAGE_BODIES)
ERAS = st.sampled_from([None, "2025-11-25", "2026-07-28", "2030-01-01"])


def jsonrpc_answer(response: httpx.Response) -> dict | None:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1]) if data else None
    return response.json() if response.content else None


def test_whatever_is_posted_the_answer_is_a_json_rpc_message_or_a_clear_4xx(mcp_url):
    statuses: Counter[int] = Counter()
    client = httpx.Client(timeout=httpx.Timeout(30))
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Accept": "application/json, text/event-stream"}

    @fuzz_settings(BOUNDED_EXAMPLES)
    @given(body=BODIES, era=ERAS)
    @example(body=b"{}", era=None)
    @example(body=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode(), era="2026-07-28")
    def check(body: bytes, era: str | None) -> None:
        sent = headers | {"Content-Type": "application/json"} | ({"MCP-Protocol-Version": era} if era else {})
        response = client.post(mcp_url, content=body, headers=sent)
        statuses[response.status_code] += 1
        assert response.status_code < 500, (response.status_code, response.text[:500])
        answer = jsonrpc_answer(response)
        if answer is None:
            assert response.status_code in (202, 405, 406), (response.status_code, body[:200])
            return
        assert answer.get("jsonrpc") == "2.0", answer
        assert ("result" in answer) != ("error" in answer), answer
        if "error" in answer:
            assert isinstance(answer["error"]["code"], int) and answer["error"]["message"], answer

    check()
    client.close()
    assert statuses[200] and sum(n for status, n in statuses.items() if status >= 400), statuses
