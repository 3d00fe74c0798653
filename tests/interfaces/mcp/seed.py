"""The rows the live MCP test server serves. Run inside the server's environment (``tests.support.mcp_door``)."""

from __future__ import annotations

from interfaces.keys.models import APIKey, hash_key
from stars.models import Role
from tests.factories import make_agent, make_membership, make_star, make_workflow
from tests.support.interrupts import approval_agent

ALLOWED_ORIGIN = "http://allowed.example"  # ASTEROS_CORS_ALLOWED_ORIGINS of the live server
ADMIN_KEY = "mcp-test-settings-key-0123456789"
READ_KEY = "ak_mcpread0_reader-key-0123456789abcdef"
RUN_KEY = "ak_mcprun00_runner-key-0123456789abcdef"
ECHO_ONLY_KEY = "ak_mcpecho0_limited-key-0123456789abcdef"  # may use the agent "echo" only
LIMITED_KEY = "ak_mcplimit_quota-key-0123456789abcdef"  # three requests a minute
ONE_RUN_KEY = "ak_mcponeru_one-run-key-0123456789abcdef"  # one run at a time
# Streams 12 tokens at 8 per second: progress a client can watch.
PACED = {"reply_tokens": 12, "tokens_per_second": 8}
TOPIC_SCHEMA = {
    "type": "object",
    "properties": {"topic": {"type": "string"}, "words": {"type": "integer", "minimum": 1}},
    "required": ["topic"],
    "additionalProperties": False,
}


def seed() -> None:
    echo = make_agent("echo", name="Echo", description="Repeats what you say.", parameters={"reply": "echo: {input}"})
    make_agent("paced", name="Paced", description="Streams a dozen tokens.", parameters=PACED)
    make_agent("slow", name="Slow", parameters={"ttft_ms": 60_000})
    make_agent("failing", parameters={"fail": "the model is down", "error_code": "model_unavailable"})
    make_agent("hidden", enabled=False)
    approval_agent(id="approver", name="Approver", description="Asks before it calculates.")
    star = make_star("team", name="Team", description="A leader and nobody else.")
    make_membership(star, echo, name="lead", role=Role.LEADER, order=0)
    make_workflow(
        "brief",
        name="Brief",
        description="Writes a brief on a topic.",
        definition={
            "input_schema": TOPIC_SCHEMA,
            "steps": [{"name": "write", "type": "agent", "agent": "echo", "prompt": "brief on {{ input.topic }}"}],
        },
    )
    # A workflow with the id of an agent: its tool is "workflow.echo".
    make_workflow(
        "echo",
        definition={"steps": [{"name": "only", "type": "agent", "agent": "echo", "prompt": "{{ input }}"}]},
    )
    keys = (
        ("reader", READ_KEY, ["read"], [], None),
        ("runner", RUN_KEY, ["run"], [], None),
        ("echo only", ECHO_ONLY_KEY, ["run"], ["agents:echo"], None),
        ("limited", LIMITED_KEY, ["run"], [], {"requests_per_minute": 3}),
        ("one run", ONE_RUN_KEY, ["run"], [], {"max_concurrent_runs": 1}),
    )
    for name, raw, scopes, resources, limits in keys:
        APIKey.objects.create(
            name=name,
            prefix=raw.split("_")[1],
            hashed_key=hash_key(raw),
            scopes=scopes,
            resources=resources,
            **(limits or {}),
        )
