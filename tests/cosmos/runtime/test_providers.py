"""The real Anthropic and OpenAI SDKs against the local fake server: no mocks, no network."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

import pytest

from cosmos.runtime import AgentSpec, RunFailed, build_agent, run_agent
from cosmos.runtime.providers import get_provider, provider_names
from cosmos.runtime.providers._sdk import STREAMS_PER_CLIENT, LoopClients, shown_url
from cosmos.runtime.providers.anthropic_provider import to_anthropic_messages
from cosmos.runtime.providers.openai_provider import to_openai_messages
from tests.cosmos.runtime.helpers import Recorder, assert_well_formed
from tests.support.model_server import ModelServer
from tests.support.processes import free_port

APIS = ["anthropic", "openai"]


def spec_for(server: ModelServer, provider: str, *, model: str = "fake-model", key: str | None = "test-key", **params):
    base_url = server.url if provider == "anthropic" else f"{server.url}/v1"
    params.setdefault("max_retries", 0)
    params.setdefault("timeout", 5)
    return AgentSpec(
        id="p",
        name="P",
        provider=provider,
        model=model,
        api_key=key,
        base_url=base_url,
        parameters=params,
        tools=("calculator",),
    )


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def run(spec: AgentSpec, text: str, recorder: Recorder | None = None):
    return await run_agent(build_agent(spec), user(text), recorder or Recorder())


@pytest.mark.parametrize("provider", APIS)
async def test_streaming_text_and_usage(model_server: ModelServer, provider: str, recorder: Recorder) -> None:
    outcome = await run(spec_for(model_server, provider), "hello there", recorder)

    assert outcome.text == "(local model server) You said: hello there"
    contents = recorder.of("TEXT_MESSAGE_CONTENT")
    assert len(contents) == 7  # streamed token by token, not in one piece
    assert outcome.output_tokens == 7 and outcome.input_tokens > 0
    assert_well_formed(recorder.events)

    (request,) = model_server.model_requests(provider)
    assert request.body["stream"] is True and request.body["model"] == "fake-model"
    if provider == "anthropic":
        key_header = request.headers.get("x-api-key") or request.headers.get("authorization")
        assert key_header == "<redacted>" and "anthropic-version" in request.headers
        assert request.body["messages"] == [{"role": "user", "content": "hello there"}]
        assert request.body["tools"][0]["name"] == "calculator" and "input_schema" in request.body["tools"][0]
    else:
        assert request.headers["authorization"] == "<redacted>"
        assert request.body["stream_options"] == {"include_usage": True}
        assert request.body["tools"][0]["function"]["name"] == "calculator"


@pytest.mark.parametrize("provider", APIS)
async def test_tool_use_round_trip(model_server: ModelServer, provider: str, recorder: Recorder) -> None:
    outcome = await run(spec_for(model_server, provider), "What is 6 * 7?", recorder)

    assert outcome.text == "The result is 42."
    call = outcome.new_messages[0]["tool_calls"][0]
    assert call["name"] == "calculator" and call["arguments"] == {"expression": "6 * 7"}
    assert len(recorder.of("TOOL_CALL_ARGS")) == 3  # arguments arrived in pieces and were reassembled
    assert outcome.input_tokens > 0 and outcome.output_tokens > 0
    assert_well_formed(recorder.events)

    _first, second = model_server.model_requests(provider)
    if provider == "anthropic":
        assistant, results = second.body["messages"][1:]
        assert assistant["content"] == [
            {"type": "tool_use", "id": call["id"], "name": "calculator", "input": {"expression": "6 * 7"}}
        ]
        assert results == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "42"}],
        }
    else:
        assistant, result = second.body["messages"][1:]
        assert assistant["tool_calls"][0]["id"] == call["id"]
        assert result == {"role": "tool", "tool_call_id": call["id"], "content": "42"}


@pytest.mark.parametrize("provider", APIS)
async def test_rate_limit_is_retried(model_server: ModelServer, provider: str) -> None:
    model_server.fail_next(429, times=2)
    outcome = await run(spec_for(model_server, provider, max_retries=3), "hi")

    assert outcome.text.endswith("You said: hi")
    requests = model_server.model_requests(provider)
    assert len(requests) == 3  # two 429s, then success
    assert requests[0].body == requests[2].body


@pytest.mark.parametrize("provider", APIS)
async def test_rate_limit_beyond_retries(model_server: ModelServer, provider: str) -> None:
    model_server.fail_next(429, times=5)
    with pytest.raises(RunFailed) as caught:
        await run(spec_for(model_server, provider, max_retries=1), "hi")
    assert caught.value.code == "model_rate_limited" and "429" in caught.value.message
    assert len(model_server.model_requests(provider)) == 2


@pytest.mark.parametrize("provider", APIS)
async def test_server_error_storm(model_server: ModelServer, provider: str) -> None:
    model_server.fail_next(500, times=10)
    with pytest.raises(RunFailed) as caught:
        await run(spec_for(model_server, provider, max_retries=2), "hi")
    assert caught.value.code == "model_unavailable"
    assert "HTTP 500" in caught.value.message and "2 retries" in caught.value.message
    assert len(model_server.model_requests(provider)) == 3


@pytest.mark.parametrize("provider", APIS)
async def test_stall_times_out(model_server: ModelServer, provider: str, recorder: Recorder) -> None:
    model_server.fail_next(stall_seconds=10, times=5)
    with pytest.raises(RunFailed) as caught:
        await run(spec_for(model_server, provider, timeout=0.3), "hi", recorder)
    assert caught.value.code == "model_timeout" and "0.3s" in caught.value.message
    assert recorder.events == []


@pytest.mark.parametrize("provider", APIS)
async def test_missing_key_fails_at_once(
    model_server: ModelServer, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    spec = spec_for(model_server, provider, key=None)
    if provider == "openai":  # without a base URL: the real OpenAI needs a key
        spec = AgentSpec(id="p", name="P", provider="openai", model="gpt-x")
    built = build_agent(spec)  # building never raises
    with pytest.raises(RunFailed) as caught:
        await run_agent(built, user("hi"), Recorder())
    assert caught.value.code == "model_auth"
    assert model_server.requests == []  # nothing went over the network


async def test_openai_local_server_needs_no_key(model_server: ModelServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    outcome = await run(spec_for(model_server, "openai", key=None), "hi")
    assert outcome.text.endswith("You said: hi")


async def test_keys_from_the_environment(model_server: ModelServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", model_server.url)
    model_server.require_key = "env-key"
    outcome = await run(AgentSpec(id="e", name="E", provider="anthropic", model="fake-model"), "hi")
    assert outcome.text.endswith("You said: hi")


@pytest.mark.parametrize("provider", APIS)
async def test_rejected_key(model_server: ModelServer, provider: str) -> None:
    model_server.require_key = "the-right-key"
    with pytest.raises(RunFailed) as caught:
        await run(spec_for(model_server, provider, key="the-wrong-key"), "hi")
    assert caught.value.code == "model_auth"
    assert "the-wrong-key" not in caught.value.message


@pytest.mark.parametrize("provider", APIS)
async def test_unknown_model_is_not_retried(model_server: ModelServer, provider: str) -> None:
    with pytest.raises(RunFailed) as caught:
        await run(spec_for(model_server, provider, model="no-such-model", max_retries=3), "hi")
    assert caught.value.code == "model_not_found" and "no-such-model" in caught.value.message
    assert len(model_server.model_requests(provider)) == 1


async def test_providers_are_cached() -> None:
    assert {"anthropic", "openai", "scripted"} <= provider_names()  # plus those registered by apps (a2a)
    a = get_provider("anthropic", api_key="k1", base_url="http://127.0.0.1:9")
    assert get_provider("anthropic", api_key="k1", base_url="http://127.0.0.1:9") is a
    assert get_provider("anthropic", api_key="k2", base_url="http://127.0.0.1:9") is not a
    assert "k1" not in repr(a)
    first = build_agent(AgentSpec(id="a", name="A", provider="openai", api_key="k", base_url="http://x/v1"))
    second = build_agent(AgentSpec(id="b", name="B", provider="openai", api_key="k", base_url="http://x/v1"))
    assert first.provider is second.provider


async def test_clients_are_kept_per_event_loop(model_server: ModelServer) -> None:
    provider = get_provider("openai", api_key="k", base_url=f"{model_server.url}/v1", max_retries=0)
    with provider._lease() as here:
        pass
    with provider._lease() as again:
        assert again is here

    def other_loop():
        async def grab():
            with provider._lease() as client:
                return client

        return asyncio.run(grab())

    assert await asyncio.to_thread(other_loop) is not here


async def test_a_client_serves_a_bounded_number_of_streams_then_another_is_opened() -> None:
    made = []
    clients = LoopClients(lambda key, url: made.append((key, url)) or len(made))
    with ExitStack() as streams:
        first = [streams.enter_context(clients.lease("k", None)) for _ in range(STREAMS_PER_CLIENT)]
        assert set(first) == {1}, "a quiet loop uses one client"
        assert streams.enter_context(clients.lease("k", None)) == 2, "a full client makes the loop open another"
        assert streams.enter_context(clients.lease("k", None)) == 2
        assert streams.enter_context(clients.lease("other-key", None)) == 3
    with clients.lease("k", None) as client:
        assert client in (1, 2), "closed streams give their client back: no third one"
    assert made == [("k", None), ("k", None), ("other-key", None)]


def test_anthropic_translation_merges_tool_results() -> None:
    messages = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": "let me check",
            "tool_calls": [{"id": "a", "name": "t", "arguments": {"x": 1}}, {"id": "b", "name": "t", "arguments": {}}],
        },
        {"role": "tool", "tool_call_id": "a", "content": "1", "is_error": False},
        {"role": "tool", "tool_call_id": "b", "content": "bad", "is_error": True},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "thanks"},
    ]
    assert to_anthropic_messages(messages) == [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "let me check"},
                {"type": "tool_use", "id": "a", "name": "t", "input": {"x": 1}},
                {"type": "tool_use", "id": "b", "name": "t", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "a", "content": "1"},
                {"type": "tool_result", "tool_use_id": "b", "content": "bad", "is_error": True},
            ],
        },
        {"role": "user", "content": "thanks"},
    ]
    openai_messages = to_openai_messages("be brief", messages)
    assert openai_messages[0] == {"role": "system", "content": "be brief"}
    assert openai_messages[2]["tool_calls"][0]["function"] == {"name": "t", "arguments": '{"x": 1}'}
    assert [m["role"] for m in openai_messages] == ["system", "user", "assistant", "tool", "tool", "assistant", "user"]


def test_system_messages_in_the_history() -> None:
    from cosmos.runtime.providers import ModelRequest
    from cosmos.runtime.providers.anthropic_provider import AnthropicProvider

    history = [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "hi"}]
    provider = AnthropicProvider(api_key="k", base_url=None, timeout=5, max_retries=0)
    arguments = provider._arguments(ModelRequest("m", "Be brief.", history, (), {"temperature": 0.2}))
    # The agent's prompt carries the cache marker; what the history adds follows, unmarked.
    assert arguments["system"] == [
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Answer in French."},
    ]
    off = provider._arguments(ModelRequest("m", "Be brief.", history, (), {"prompt_caching": False}))
    assert off["system"] == "Be brief.\n\nAnswer in French."
    assert arguments["messages"] == [{"role": "user", "content": "hi"}]
    assert arguments["temperature"] == 0.2 and arguments["max_tokens"] == 4096
    assert [m["role"] for m in to_openai_messages("Be brief.", history)] == ["system", "system", "user"]


async def test_a_higher_layer_registers_a_provider() -> None:
    from cosmos.runtime.providers import Finish, ModelRequest, TextDelta, model_problem, register_provider

    class Parrot:
        name = "parrot-for-test"

        async def stream(self, request: ModelRequest):
            yield TextDelta(f"{request.model} says {request.messages[-1]['content']}")
            yield Finish("stop")

    made: list[dict] = []

    def factory(**options) -> Parrot:
        made.append(options)
        return Parrot()

    with pytest.raises(ValueError, match="built-in"):
        register_provider("openai", factory)
    register_provider("parrot-for-test", factory, check_model=lambda m: None if m == "polly" else "Only polly.")
    assert "parrot-for-test" in provider_names()
    assert (
        model_problem("parrot-for-test", "rex") == "Only polly." and model_problem("parrot-for-test", "polly") is None
    )
    assert model_problem("openai", "anything") is None  # built-ins do not check model names
    outcome = await run(AgentSpec(id="p", name="P", provider="parrot-for-test", model="polly"), "hello")
    assert outcome.text == "polly says hello"
    assert made and set(made[0]) == {"api_key", "base_url", "timeout", "max_retries"}


@pytest.mark.parametrize("provider", APIS)
async def test_an_unreachable_server_is_named_in_the_error(provider: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    spec = AgentSpec(
        id="u", name="U", provider=provider, model="m", api_key="k-never-shown", base_url=url,
        parameters={"max_retries": 0, "timeout": 5},
    )  # fmt: skip
    with pytest.raises(RunFailed) as caught:
        await run(spec, "hi")
    assert caught.value.code == "model_unavailable"
    assert url in caught.value.message and "k-never-shown" not in caught.value.message


def test_the_url_shown_is_the_sdks_own_without_credentials() -> None:
    import anthropic
    import openai

    assert shown_url(anthropic.AsyncAnthropic(api_key="k"), None) == "https://api.anthropic.com"
    assert shown_url(openai.AsyncOpenAI(api_key="k"), None) == "https://api.openai.com/v1/"
    assert shown_url(None, "http://user:pw@gateway:8080/v1?token=t#x") == "http://gateway:8080/v1"


@pytest.mark.parametrize("provider", APIS)
async def test_the_servers_key_never_goes_to_an_address_the_agent_chose(
    model_server: ModelServer, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "server-wide-key")
    monkeypatch.setenv("OPENAI_API_KEY", "server-wide-key")
    model_server.require_key = "server-wide-key"  # it would answer if the server's key came
    with pytest.raises(RunFailed) as caught:
        await run(spec_for(model_server, provider, key=None), "hi")
    assert caught.value.code == "model_auth"
    if provider == "anthropic":  # refused before any request: it needs the agent's own key
        assert "API key reference" in caught.value.message and model_server.requests == []
    else:  # the placeholder a local server accepts, which this server refuses
        assert len(model_server.model_requests("openai")) == 1


@pytest.mark.parametrize("provider", APIS)
async def test_a_base_url_off_the_allowlist_is_refused_before_any_connection(provider: str) -> None:
    """The allowlist may change after an agent was saved: each call checks it again. The tests
    allowlist 127.0.0.1 only, so a listener on 127.0.0.2 must never be reached."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen()
    listener.settimeout(0.3)
    url = f"http://127.0.0.2:{listener.getsockname()[1]}/v1"
    spec = AgentSpec(
        id="g", name="G", provider=provider, model="m", api_key="k", base_url=url,
        parameters={"max_retries": 0, "timeout": 5},
    )  # fmt: skip
    try:
        with pytest.raises(RunFailed) as caught:
            await run(spec, "hi")
        assert caught.value.code == "model_unavailable" and "ASTEROS_OUTBOUND_ALLOWLIST" in caught.value.message
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    finally:
        listener.close()
