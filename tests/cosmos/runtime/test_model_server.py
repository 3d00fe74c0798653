"""The fake model server itself: non-streaming answers and the command-line mode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anthropic
import httpx
import openai

from tests.support.model_server import ModelServer

ROOT = Path(__file__).resolve().parents[3]


async def test_non_streaming_answers_parse_with_the_sdks(model_server: ModelServer) -> None:
    claude = anthropic.AsyncAnthropic(api_key="k", base_url=model_server.url, max_retries=0)
    message = await claude.messages.create(model="fake", max_tokens=10, messages=[{"role": "user", "content": "hello"}])
    assert message.content[0].text == "(local model server) You said: hello"
    assert message.usage.output_tokens == 6

    gpt = openai.AsyncOpenAI(api_key="k", base_url=f"{model_server.url}/v1", max_retries=0)
    tools = [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]
    completion = await gpt.chat.completions.create(
        model="fake", messages=[{"role": "user", "content": "what is 2+2"}], tools=tools
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "calc" and call.function.arguments == '{"expression": "2+2"}'
    assert completion.choices[0].finish_reason == "tool_calls"
    await claude.close()
    await gpt.close()


async def test_errors_use_each_apis_shape(model_server: ModelServer) -> None:
    async with httpx.AsyncClient(base_url=model_server.url) as client:
        body = {"model": "no-such-model", "messages": []}
        anthropic_404 = await client.post("/v1/messages", json=body, headers={"x-api-key": "k"})
        assert anthropic_404.status_code == 404
        assert anthropic_404.json()["error"]["type"] == "not_found_error"
        openai_404 = await client.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer k"})
        assert openai_404.json()["error"]["code"] == "model_not_found"
        model_server.fail_next(429)
        limited = await client.post("/v1/messages", json=body, headers={"x-api-key": "k"})
        assert limited.status_code == 429 and limited.headers["retry-after-ms"] == "20"
        assert (await client.get("/health")).json() == {"status": "ok"}


def test_runs_as_a_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.model_server", "--port", "0", "--reply-tokens", "3"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": "Bearer k"},
        )
        assert reply.json()["choices"][0]["message"]["content"] == "lorem ipsum dolor"
    finally:
        process.terminate()
        process.wait(timeout=10)
