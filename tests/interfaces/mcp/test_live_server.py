"""``/mcp`` against a live server, with the official Python SDK's client (``mcp.Client``) in both
protocol eras: 2026-07-28 (stateless, ``mode="auto"``) and the 2025-11-25 handshake."""

from __future__ import annotations

import json
import time

import anyio
import httpx
import pytest
from mcp.shared.exceptions import MCPError

from tests.support.mcp_door import MODES, connect, text_of

from .seed import ADMIN_KEY, ALLOWED_ORIGIN, ECHO_ONLY_KEY, LIMITED_KEY, ONE_RUN_KEY, READ_KEY, RUN_KEY, TOPIC_SCHEMA

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


def run_status(api_url: str, run_id: str) -> str:
    response = httpx.get(f"{api_url}/api/runs/{run_id}", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200, response.text
    return response.json()["status"]


def wait_for_status(api_url: str, run_id: str, wanted: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = run_status(api_url, run_id)
        if status == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} is {status}, not {wanted}")


@pytest.mark.parametrize("mode", MODES)
async def test_every_agent_star_and_workflow_is_a_tool(mcp_url, mode):
    async with connect(mcp_url, key=ADMIN_KEY, mode=mode) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert {"echo", "paced", "approver", "team", "brief", "workflow.echo"} <= set(tools)
    assert "hidden" not in tools  # disabled
    echo = tools["echo"]
    assert echo.description == "Repeats what you say."
    assert echo.input_schema["required"] == ["message"]
    assert set(echo.input_schema["properties"]) == {"message", "session_id"}
    assert tools["brief"].input_schema == TOPIC_SCHEMA  # a workflow's declared input
    assert tools["workflow.echo"].meta["dev.asteros/target"] == {"kind": "workflow", "id": "echo"}


@pytest.mark.parametrize("mode", MODES)
async def test_a_call_is_a_run_whose_tokens_arrive_as_progress(mcp_api, mcp_url, mode):
    tokens: list[str] = []
    counts: list[float] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        counts.append(done)
        tokens.append(message or "")

    async with connect(mcp_url, key=RUN_KEY, mode=mode) as client:
        result = await client.call_tool("paced", {"message": "tell me"}, progress_callback=progress)

    assert not result.is_error
    answer = text_of(result)
    assert answer and len(tokens) > 1, tokens  # streamed, not one block at the end
    assert "".join(tokens) == answer
    assert counts == sorted(counts)
    run = result.structured_content
    assert run["status"] == "succeeded" and run["output"] == answer
    assert run["links"]["self"].endswith(f"/api/runs/{run['run_id']}")
    assert result.meta["dev.asteros/run"]["id"] == run["run_id"]
    detail = httpx.get(run["links"]["self"], headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert detail["origin"] == "mcp" and detail["caller"].startswith("key:")


async def test_a_session_id_carries_the_conversation(mcp_api, mcp_url):
    async with connect(mcp_url, key=RUN_KEY) as client:
        first = await client.call_tool("echo", {"message": "one", "session_id": "mcp-thread-1"})
        second = await client.call_tool("echo", {"message": "two", "session_id": "mcp-thread-1"})
    assert not first.is_error and not second.is_error
    for result in (first, second):
        detail = httpx.get(
            result.structured_content["links"]["self"], headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ).json()
        assert detail["session"] == "mcp-thread-1"


@pytest.mark.parametrize("mode", MODES)
async def test_a_workflow_takes_its_declared_input(mcp_url, mode):
    async with connect(mcp_url, key=RUN_KEY, mode=mode) as client:
        result = await client.call_tool("brief", {"topic": "otters"})
        wrong = await client.call_tool("brief", {"message": "otters"})

    assert not result.is_error, text_of(result)
    assert "brief on otters" in text_of(result)
    assert wrong.is_error
    error = wrong.structured_content["error"]
    assert error["code"] == "invalid_arguments"
    assert {problem["path"] for problem in error["details"]} == {""}  # topic missing, message not allowed


@pytest.mark.parametrize("mode", MODES)
async def test_bad_arguments_and_unknown_tools_are_structured_errors(mcp_url, mode):
    async with connect(mcp_url, key=RUN_KEY, mode=mode) as client:
        missing = await client.call_tool("echo", {})
        typed = await client.call_tool("echo", {"message": 42})
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("no-such-agent", {"message": "hi"})
        with pytest.raises(MCPError):
            await client.call_tool("hidden", {"message": "hi"})

    for result in (missing, typed):
        assert result.is_error and result.structured_content["error"]["code"] == "invalid_arguments"
    assert unknown.value.code == -32602
    assert "no-such-agent" in unknown.value.message


@pytest.mark.parametrize("mode", MODES)
async def test_a_failed_run_is_an_error_result_with_the_reason(mcp_url, mode):
    async with connect(mcp_url, key=RUN_KEY, mode=mode) as client:
        result = await client.call_tool("failing", {"message": "hi"})
    assert result.is_error
    assert "the model is down" in text_of(result)
    assert result.structured_content["status"] == "failed"


async def test_a_run_that_waits_for_a_person_says_how_to_resume(mcp_api, mcp_url):
    async with connect(mcp_url, key=RUN_KEY) as client:
        result = await client.call_tool("approver", {"message": "what is 6*7?"})
    assert not result.is_error
    run = result.structured_content
    assert run["status"] == "interrupted"
    assert run["links"]["resume"].endswith(f"/api/runs/{run['run_id']}/resume")
    assert "waiting for a person" in text_of(result)
    cancel = httpx.post(run["links"]["cancel"], headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert cancel.status_code == 202


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_cancels_cancels_the_run(mcp_api, mcp_url, mode):
    async with connect(mcp_url, key=RUN_KEY, mode=mode) as client:
        before = {resource.uri for resource in (await client.list_resources()).resources}
        with anyio.move_on_after(2):
            await client.call_tool("slow", {"message": "take your time"})
        # The call's run: the caller's newest run that was not there before.
        await anyio.sleep(0.5)
        after = (await client.list_resources()).resources
    started = [resource.uri for resource in after if resource.uri not in before]
    assert len(started) == 1, started
    run_id = started[0].rsplit("/", 1)[1]
    wait_for_status(mcp_api.url, run_id, "cancelled")


@pytest.mark.parametrize("era", ["2025-11-25", "2026-07-28"])
def test_a_dropped_connection_cancels_the_run(mcp_api, mcp_url, era):
    meta: dict = {"progressToken": 1}
    if era == "2026-07-28":
        meta |= {"io.modelcontextprotocol/protocolVersion": era, "io.modelcontextprotocol/clientCapabilities": {}}
    arguments = {"message": f"dropped in {era}"}
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "slow", "arguments": arguments}}
    body["params"]["_meta"] = meta
    headers = {
        "Authorization": f"Bearer {RUN_KEY}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": era,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "slow",
    }
    # The client gives up waiting and hangs up.
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.Client() as client,
        client.stream("POST", mcp_url, json=body, headers=headers, timeout=3) as response,
    ):
        response.read()
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    runs = httpx.get(f"{mcp_api.url}/api/runs", params={"target": "slow"}, headers=admin).json()["results"]
    run = next(run for run in runs if run["input"] == {"message": f"dropped in {era}"})
    wait_for_status(mcp_api.url, run["id"], "cancelled")


@pytest.mark.parametrize("mode", MODES)
async def test_runs_are_resources(mcp_url, mode):
    async with connect(mcp_url, key=RUN_KEY, mode=mode) as client:
        result = await client.call_tool("echo", {"message": "remember me"})
        run_id = result.structured_content["run_id"]
        templates = (await client.list_resource_templates()).resource_templates
        listed = (await client.list_resources()).resources
        read = await client.read_resource(f"asteros://runs/{run_id}")
        with pytest.raises(MCPError) as unknown:
            await client.read_resource("asteros://runs/00000000-0000-0000-0000-000000000000")
        with pytest.raises(MCPError):
            await client.read_resource("asteros://agents/echo")

    assert [template.uri_template for template in templates] == ["asteros://runs/{id}"]
    assert f"asteros://runs/{run_id}" in {resource.uri for resource in listed}
    document = json.loads(read.contents[0].text)
    assert document["status"] == "succeeded" and document["output"] == "echo: remember me"
    types = [event["type"] for event in document["events"]]
    assert types[0] == "RUN_STARTED" and types[-1] == "RUN_FINISHED"
    assert [event["seq"] for event in document["events"]] == list(range(1, len(types) + 1))
    assert unknown.value.code == -32602


async def test_another_callers_runs_stay_hidden_from_a_limited_key(mcp_url):
    async with connect(mcp_url, key=RUN_KEY) as client:
        paced = await client.call_tool("paced", {"message": "mine"})
    async with connect(mcp_url, key=ECHO_ONLY_KEY) as client:
        with pytest.raises(MCPError):
            await client.read_resource(f"asteros://runs/{paced.structured_content['run_id']}")
        listed = (await client.list_resources()).resources
    assert f"asteros://runs/{paced.structured_content['run_id']}" not in {r.uri for r in listed}


@pytest.mark.parametrize("mode", MODES)
async def test_a_key_limited_to_some_resources_sees_and_calls_only_those(mcp_url, mode):
    async with connect(mcp_url, key=ECHO_ONLY_KEY, mode=mode) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        ok = await client.call_tool("echo", {"message": "hi"})
        with pytest.raises(MCPError):
            await client.call_tool("paced", {"message": "hi"})
    assert names == ["echo"]
    assert not ok.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_a_read_key_lists_but_may_not_call(mcp_url, mode):
    async with connect(mcp_url, key=READ_KEY, mode=mode) as client:
        assert (await client.list_tools()).tools
        with pytest.raises(MCPError) as refused:  # the 403's JSON-RPC error, as the SDK reads it
            await client.call_tool("echo", {"message": "hi"})
    assert refused.value.data == {"code": "permission_denied"}
    assert "'run' scope" in refused.value.message


def post(url: str, body: object, **headers: str) -> httpx.Response:
    sent = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"} | headers
    return httpx.post(url, content=json.dumps(body), headers=sent, timeout=30)


LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}}}


def test_no_key_is_a_401_that_says_how_to_authenticate(mcp_url):
    for body in (LIST, CALL):
        response = post(mcp_url, body)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        error = response.json()
        assert error["jsonrpc"] == "2.0" and error["id"] == body["id"]
        assert error["error"]["data"]["code"] == "not_authenticated"
    wrong = post(mcp_url, LIST, Authorization="Bearer ak_nope_not-a-key")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["data"]["code"] == "authentication_failed"


def test_the_run_scope_is_needed_to_call(mcp_url):
    response = post(mcp_url, CALL, Authorization=f"Bearer {READ_KEY}")
    assert response.status_code == 403
    assert response.json()["error"]["data"]["code"] == "permission_denied"


def test_the_requests_per_minute_of_a_key_hold(mcp_url):
    statuses = [post(mcp_url, LIST, **{"X-API-Key": LIMITED_KEY}).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    refused = post(mcp_url, LIST, **{"X-API-Key": LIMITED_KEY})
    assert refused.headers["Retry-After"]
    assert refused.json()["error"]["data"]["code"] == "quota_exceeded"


async def test_a_run_quota_is_a_tool_error_a_model_can_read(mcp_api, mcp_url):
    async with connect(mcp_url, key=ONE_RUN_KEY) as client, anyio.create_task_group() as group:
        group.start_soon(client.call_tool, "slow", {"message": "hold the only slot"})
        await anyio.sleep(1)
        refused = await client.call_tool("echo", {"message": "one more"})
        group.cancel_scope.cancel()  # and with it, the slow run
    assert refused.is_error
    error = refused.structured_content["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"]["quota"] == "concurrent_runs" and "wait for one to finish" in error["message"]


def test_a_page_of_another_site_is_refused(mcp_url):
    key = {"Authorization": f"Bearer {ADMIN_KEY}"}
    response = post(mcp_url, LIST, Origin="http://evil.example", **key)
    assert response.status_code == 403
    assert response.json()["error"]["data"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in response.headers
    own = post(mcp_url, LIST, Origin=mcp_url.rsplit("/mcp", 1)[0], **key)
    assert own.status_code == 200
    listed = post(mcp_url, LIST, Origin=ALLOWED_ORIGIN, **key)
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    preflight = httpx.options(
        mcp_url,
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert "authorization" in preflight.headers["access-control-allow-headers"]


def test_malformed_and_oversized_bodies_are_refused_in_the_protocols_terms(mcp_url):
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Accept": "application/json, text/event-stream"}
    garbage = httpx.post(mcp_url, content=b"{not json", headers=headers | {"Content-Type": "application/json"})
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == -32700
    huge = httpx.post(
        mcp_url,
        content=json.dumps({**CALL, "params": {"name": "echo", "arguments": {"message": "x" * 3_000_000}}}),
        headers=headers | {"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["data"]["code"] == "payload_too_large"
    modern = {"MCP-Protocol-Version": "2026-07-28"}
    unknown_method = post(
        mcp_url,
        {"jsonrpc": "2.0", "id": 3, "method": "no/such", "params": {"_meta": {}}},
        Authorization=f"Bearer {ADMIN_KEY}",
        **modern,
    )
    assert 400 <= unknown_method.status_code < 500 and "error" in unknown_method.json()


async def test_tools_list_follows_the_registry_and_listeners_are_told(mcp_api, mcp_url):
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with connect(mcp_url, key=ADMIN_KEY) as client:
        before = {tool.name for tool in (await client.list_tools()).tools}
        assert "newcomer" not in before
        async with client.listen(tools_list_changed=True) as subscription:
            created = httpx.post(
                f"{mcp_api.url}/api/agents",
                json={"id": "newcomer", "name": "Newcomer", "provider": "scripted", "model": "scripted-offline"},
                headers=admin,
            )
            assert created.status_code == 201, created.text
            with anyio.fail_after(15):
                async for _event in subscription:
                    break
        after = {tool.name for tool in (await client.list_tools()).tools}
        assert "newcomer" in after
        httpx.delete(f"{mcp_api.url}/api/agents/newcomer", headers=admin)
        assert "newcomer" not in {tool.name for tool in (await client.list_tools()).tools}


async def test_uvicorn_serves_mcp_from_its_lifespan(tmp_path):
    """uvicorn starts the SDK's manager at lifespan startup (Daphne, above, on its first connection)."""
    from tests.support.mcp_door import seeded_api

    api = seeded_api(tmp_path, "tests.interfaces.mcp.seed:seed", server="uvicorn", ASTEROS_LOG_LEVEL="info")
    try:
        assert "StreamableHTTP session manager started" in api.output()  # before any MCP request
        async with connect(f"{api.url}/mcp", mode="legacy") as client:
            result = await client.call_tool("echo", {"message": "over uvicorn"})
        assert text_of(result) == "echo: over uvicorn"
    finally:
        api.stop()
    assert "Traceback" not in api.output()
