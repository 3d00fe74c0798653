"""Prompt caching and cache tokens, with the real SDKs against the local fake server."""

from __future__ import annotations

import dataclasses

import pytest

from cosmos.runtime import AgentSpec, build_agent, run_agent
from cosmos.runtime.providers.base import caching_enabled
from tests.cosmos.runtime.helpers import Recorder
from tests.cosmos.runtime.test_providers import spec_for, user
from tests.support.model_server import ModelServer

# Long enough for the prefix to be cacheable (the APIs cache 1,024 tokens or more).
LONG_PROMPT = "You answer questions about the house rules. " * 200


def with_prompt(spec: AgentSpec, prompt: str, **changes) -> AgentSpec:
    return dataclasses.replace(spec, system_prompt=prompt, **changes)


async def ask(spec: AgentSpec, text: str = "hello"):
    return await run_agent(build_agent(spec), user(text), Recorder())


async def test_anthropic_marks_the_system_prompt_and_the_last_tool(model_server: ModelServer) -> None:
    spec = with_prompt(spec_for(model_server, "anthropic"), "Be brief.", tools=("calculator", "current_time"))
    await ask(spec)

    (request,) = model_server.model_requests("anthropic")
    assert request.body["system"] == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    tools = request.body["tools"]
    assert [t["name"] for t in tools] == ["calculator", "current_time"]
    assert "cache_control" not in tools[0]
    assert tools[-1]["cache_control"] == {"type": "ephemeral"}


@pytest.mark.parametrize("off", [False, "false", "off", 0])
async def test_anthropic_caching_switched_off_sends_no_marker(model_server: ModelServer, off) -> None:
    spec = with_prompt(spec_for(model_server, "anthropic", prompt_caching=off), "Be brief.")
    outcome = await ask(spec)

    (request,) = model_server.model_requests("anthropic")
    assert request.body["system"] == "Be brief."
    assert all("cache_control" not in tool for tool in request.body["tools"])
    assert outcome.cache_read_tokens == outcome.cache_write_tokens == 0


def test_caching_is_on_unless_switched_off() -> None:
    assert (
        caching_enabled({}) and caching_enabled({"prompt_caching": True}) and caching_enabled({"prompt_caching": "yes"})
    )
    assert not caching_enabled({"prompt_caching": False}) and not caching_enabled({"prompt_caching": "no"})


async def test_anthropic_cache_write_then_read_are_parsed_apart_from_input(model_server: ModelServer) -> None:
    spec = with_prompt(spec_for(model_server, "anthropic"), LONG_PROMPT)
    first = await ask(spec)
    second = await ask(spec)

    # The first request writes the prefix to the cache, the second reads it; input_tokens stays
    # the uncached part, as the API reports it (not folded together).
    assert first.cache_write_tokens > 1000 and first.cache_read_tokens == 0
    assert second.cache_read_tokens == first.cache_write_tokens and second.cache_write_tokens == 0
    assert 0 < second.input_tokens < 100 and second.input_tokens == first.input_tokens
    assert first.output_tokens == second.output_tokens > 0


async def test_anthropic_cache_tokens_sum_over_the_turns_of_a_run(model_server: ModelServer) -> None:
    spec = with_prompt(spec_for(model_server, "anthropic"), LONG_PROMPT)
    outcome = await ask(spec, "What is 6 * 7?")  # two model turns: the tool call, then the answer

    assert outcome.text == "The result is 42."
    assert len(model_server.model_requests("anthropic")) == 2
    # Turn 1 writes the prefix, turn 2 reads it.
    assert outcome.cache_write_tokens == outcome.cache_read_tokens > 1000
    assert outcome.usage.cache_read_tokens == outcome.cache_read_tokens


async def test_openai_cached_prompt_tokens_are_cache_reads(model_server: ModelServer) -> None:
    spec = with_prompt(spec_for(model_server, "openai"), LONG_PROMPT)
    first = await ask(spec)
    second = await ask(spec)

    assert first.cache_read_tokens == 0 and first.cache_write_tokens == 0
    assert second.cache_read_tokens > 1000 and second.cache_write_tokens == 0
    # prompt_tokens counts the cached ones; input_tokens is the rest.
    assert second.input_tokens + second.cache_read_tokens == first.input_tokens
    assert "cache_control" not in str(model_server.model_requests("openai")[0].body)


async def test_chat_spans_count_the_whole_prompt_and_name_its_cached_parts(model_server: ModelServer) -> None:
    from tests.support.traces import traced

    spec = with_prompt(spec_for(model_server, "anthropic"), LONG_PROMPT)
    with traced() as on:
        first = await ask(spec)
        second = await ask(spec)
        spans = on.spans()

    chats = sorted((s for s in spans if s["name"] == "chat fake-model"), key=lambda s: s["start_time"])
    assert len(chats) == 2
    written, read = chats[0]["attributes"], chats[1]["attributes"]
    assert written["gen_ai.usage.cache_creation.input_tokens"] == first.cache_write_tokens > 0
    assert written["gen_ai.usage.input_tokens"] == first.input_tokens + first.cache_write_tokens
    assert read["gen_ai.usage.cache_read.input_tokens"] == second.cache_read_tokens > 0
    assert read["gen_ai.usage.input_tokens"] == second.input_tokens + second.cache_read_tokens
    assert "gen_ai.usage.cache_read.input_tokens" not in written
