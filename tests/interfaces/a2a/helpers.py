"""Helpers for the A2A tests: official SDK clients for the live server, and stream folding."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from a2a.client import A2ACardResolver, Client, ClientConfig, create_client
from a2a.types import a2a_pb2 as pb

BINDINGS = ("JSONRPC", "HTTP+JSON")
TIMEOUT = 30.0


def base(server_url: str, resource: str = "agents", object_id: str = "echo") -> str:
    return f"{server_url}/a2a/{resource}/{object_id}"


def message(text: str, *, context_id: str = "", task_id: str = "") -> pb.Message:
    return pb.Message(
        message_id=str(uuid.uuid4()),
        role=pb.ROLE_USER,
        parts=[pb.Part(text=text)],
        context_id=context_id,
        task_id=task_id,
    )


@asynccontextmanager
async def sdk_client(
    url: str, binding: str, *, streaming: bool = False, polling: bool = False, headers: dict | None = None
) -> AsyncIterator[Client]:
    """An SDK client made the documented way: resolve the card, then ``create_client``."""
    async with httpx.AsyncClient(timeout=TIMEOUT, headers=headers or {}) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        config = ClientConfig(
            streaming=streaming, polling=polling, supported_protocol_bindings=[binding], httpx_client=http
        )
        client = await create_client(card, client_config=config)
        try:
            yield client
        finally:
            await client.close()


async def collect(stream: AsyncIterator[pb.StreamResponse]) -> list[pb.StreamResponse]:
    return [event async for event in stream]


def state_name(state: int) -> str:
    return pb.TaskState.Name(state)


def final_state(events: list[pb.StreamResponse]) -> str:
    last = events[-1]
    if last.HasField("status_update"):
        return state_name(last.status_update.status.state)
    return state_name(last.task.status.state)


def artifact_texts(task: pb.Task) -> dict[str, str]:
    return {a.artifact_id: "".join(p.text for p in a.parts) for a in task.artifacts}


def fold_artifacts(events: list[pb.StreamResponse]) -> dict[str, str]:
    """Artifacts as a client following ``append`` builds them: the first event's task, then updates."""
    texts: dict[str, str] = {}
    for event in events:
        if event.HasField("task"):
            texts.update(artifact_texts(event.task))
        elif event.HasField("artifact_update"):
            update = event.artifact_update
            chunk = "".join(p.text for p in update.artifact.parts)
            key = update.artifact.artifact_id
            texts[key] = texts.get(key, "") + chunk if update.append else chunk
    return texts
