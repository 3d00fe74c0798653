"""The OpenAI-compatible door in distributed mode: two API processes and a separate ``celery
worker`` process (PostgreSQL and Redis). A background response started on one API process is
streamed there, dropped, and resumed on the other with ``starting_after``: the events come from
the worker through the database and the bus, with nothing lost or repeated."""

from __future__ import annotations

import openai
import pytest

from interfaces.keys.models import APIKey
from tests.factories import make_agent
from tests.support.servers import ApiProcess
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

KEY = "openai-distributed-settings-key-0123"


def test_a_background_response_resumed_on_another_api_process():
    agent = make_agent(parameters={"reply_tokens": 40, "tokens_per_second": 40})
    _, raw = APIKey.generate("dist", ["run"])
    env = {"ASTEROS_ENABLE_AUTH": "true", "ASTEROS_API_KEY": KEY}
    worker = WorkerProcess(concurrency=4, env=env).spawn()
    first, second = ApiProcess(env=env), ApiProcess(env=env)
    try:
        first.start()
        second.start()
        worker.wait_ready()
        one = openai.OpenAI(base_url=f"{first.url}/v1", api_key=raw, max_retries=0, timeout=60)
        other = openai.OpenAI(base_url=f"{second.url}/v1", api_key=raw, max_retries=0, timeout=60)
        chat = one.chat.completions.create(
            model=f"agent:{agent.id}", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in chat if c.choices)
        assert len(text.split()) >= 30
        started = one.responses.create(model=agent.id, input="count", background=True)
        seen = []
        with one.responses.retrieve(started.id, stream=True) as stream:
            for event in stream:
                seen.append(event)
                if event.type == "response.output_text.delta" and len(seen) > 6:
                    break
        rest = list(other.responses.retrieve(started.id, stream=True, starting_after=seen[-1].sequence_number))
    finally:
        first.close()
        second.close()
        worker.close()
    numbers = [event.sequence_number for event in [*seen, *rest]]
    assert numbers == list(range(len(numbers)))
    assert rest[-1].type == "response.completed"
    deltas = "".join(e.delta for e in [*seen, *rest] if e.type == "response.output_text.delta")
    assert deltas == rest[-1].response.output_text
