"""The rows the live A2A test server serves. Run inside the server's environment (see conftest)."""

from __future__ import annotations

from interfaces.keys.models import APIKey, hash_key
from stars.models import Role
from tests.factories import make_agent, make_membership, make_star, make_workflow
from tests.support.interrupts import approval_agent, question_agent

ECHO_REPLY = "echo: {input}"
# Slow enough to be caught while running: the first token after 30 s, unless cancelled.
SLOW_TTFT_MS = 30_000
# Streams 12 tokens at 6 per second after a second: about three seconds of visible progress.
PACED = {"reply_tokens": 12, "tokens_per_second": 6, "ttft_ms": 1000}
# Still running for a second and a half: long enough to retry a message while its task works.
UNHURRIED = {"ttft_ms": 1500}
# Keys of the auth server besides its admin key: one that may only read, one that may run.
READ_KEY = "ak_a2aread0_reader-key-0123456789abcdef"
RUN_KEY = "ak_a2arun00_runner-key-0123456789abcdef"


def seed() -> None:
    echo = make_agent(
        "echo",
        name="Echo",
        description="Repeats what you say.",
        parameters={"reply": ECHO_REPLY},
        tools=["calculator"],
    )
    make_agent("slow", name="Slow", description="Takes its time.", parameters={"ttft_ms": SLOW_TTFT_MS})
    make_agent("paced", name="Paced", description="Streams a dozen tokens.", parameters=PACED)
    make_agent("unhurried", name="Unhurried", description="Answers after a second and a half.", parameters=UNHURRIED)
    make_agent("failing", parameters={"fail": "the model is down", "error_code": "model_unavailable"})
    make_agent("hidden", enabled=False)
    # People in the loop: calculator calls wait for approval; "asker" asks which city first.
    approval_agent(id="approver", name="Approver", description="Asks before it calculates.")
    question_agent("Which city?", id="asker", name="Asker", description="Asks a question first.")
    question_agent("How many?", schema={"type": "integer"}, id="counter", name="Counter")
    for name, raw, scopes in (("reader", READ_KEY, ["read"]), ("runner", RUN_KEY, ["run"])):
        APIKey.objects.create(name=name, prefix=raw.split("_")[1], hashed_key=hash_key(raw), scopes=scopes)
    worker = make_agent("writer", name="Writer", description="Writes.", parameters={"reply": "written: {input}"})
    star = make_star("team", name="Team", description="A leader and a writer.")
    make_membership(star, echo, name="lead", role=Role.LEADER, order=0)
    make_membership(star, worker, name="writer", role=Role.WORKER, order=1, description="Writes prose.")
    make_workflow(
        "pipeline",
        name="Pipeline",
        description="Echo, then write.",
        definition={
            "steps": [
                {"name": "first", "type": "agent", "agent": "echo", "prompt": "{{ input }}"},
                {"name": "second", "type": "agent", "agent": "writer", "prompt": "{{ previous }}"},
            ]
        },
    )
