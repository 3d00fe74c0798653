"""A retried message gets its task back (docs/a2a.md, "Idempotency"), against the live server.

A message's ``messageId`` is its run's idempotency key, per caller and agent: sending the same
message again, on either binding and by any send method (blocking, ``returnImmediately``,
streaming), answers the task the first send started, whether it has ended or is still running,
and no second run is written. Another ``messageId``, or the same one to another agent, is another
task. Runs are counted in the server's database, by agent and by the message they were started by.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

import httpx
import pytest

from cosmos.models import ACTIVE_STATUSES, Run

from .conftest import LiveServer
from .helpers import base
from .test_protocol import V1, rpc, send_params, sse_frames

pytestmark = pytest.mark.slow

BINDINGS = ("JSONRPC", "HTTP+JSON")
MODES = ("blocking", "returnImmediately", "stream")
SENDS = [(binding, mode) for binding in BINDINGS for mode in MODES]
SEND_IDS = [f"{binding}-{mode}" for binding, mode in SENDS]
ACTIVE = {str(status) for status in ACTIVE_STATUSES}


def send(http: httpx.Client, binding: str, mode: str, message_id: str, agent: str = "echo") -> dict[str, Any]:
    """Send the message ``message_id`` to ``agent``; the task the answer names (a stream's first event)."""
    params = send_params(f"message {message_id}", messageId=message_id)
    if mode == "returnImmediately":
        params["configuration"] = {"returnImmediately": True}
    path = base("", "agents", agent)
    if binding == "JSONRPC":
        method = "SendStreamingMessage" if mode == "stream" else "SendMessage"
        response = http.post(path, json=rpc(method, params), headers=V1)
        assert response.status_code == 200, response.text
        results = (
            [frame["result"] for frame in sse_frames(response)] if mode == "stream" else [response.json()["result"]]
        )
    else:
        route = "message:stream" if mode == "stream" else "message:send"
        response = http.post(f"{path}/{route}", json=params, headers=V1)
        assert response.status_code == 200, response.text
        results = sse_frames(response) if mode == "stream" else [response.json()]
    assert "task" in results[0], results
    return results[0]["task"]


def runs_of(server: LiveServer, message_id: str, agent: str = "echo") -> list[tuple[str, str]]:
    """The (id, status) of every run of ``agent`` started by the message ``message_id``."""
    column = {name: Run._meta.get_field(name).column for name in ("id", "status", "kind", "target", "metadata")}
    query = (
        f"SELECT {column['id']}, {column['status']} FROM {Run._meta.db_table} "
        f"WHERE {column['kind']} = 'agent' AND {column['target']} = ? "
        f"AND json_extract({column['metadata']}, '$.a2a.message.messageId') = ?"
    )
    with closing(sqlite3.connect(server.database, timeout=10)) as connection:
        rows = connection.execute(query, (agent, message_id)).fetchall()
    return [(uuid.UUID(str(run_id)).hex, status) for run_id, status in rows]


def only_run(server: LiveServer, message_id: str, agent: str = "echo") -> str:
    runs = runs_of(server, message_id, agent)
    assert len(runs) == 1, f"{len(runs)} runs for message {message_id} to {agent}: {runs}"
    return runs[0][0]


def same_run(task_id: str, run_id: str) -> bool:
    return uuid.UUID(task_id).hex == run_id


@pytest.mark.parametrize(("binding", "mode"), SENDS, ids=SEND_IDS)
def test_a_retried_message_gets_its_task_back(http, a2a_server, binding, mode):
    message_id = str(uuid.uuid4())
    first = send(http, binding, mode, message_id)
    # The retry by the same method, then by every other method of the binding.
    for retry_mode in (mode, *(m for m in MODES if m != mode)):
        again = send(http, binding, retry_mode, message_id)
        assert again["id"] == first["id"], f"the retry by {retry_mode} started another task"
    assert same_run(first["id"], only_run(a2a_server, message_id))


@pytest.mark.parametrize(("binding", "mode"), SENDS, ids=SEND_IDS)
def test_another_message_id_is_another_task(http, a2a_server, binding, mode):
    one, other = str(uuid.uuid4()), str(uuid.uuid4())
    first = send(http, binding, mode, one)
    second = send(http, binding, mode, other)
    assert first["id"] != second["id"]
    # Each message, retried, still names its own task.
    assert send(http, binding, mode, one)["id"] == first["id"]
    assert send(http, binding, mode, other)["id"] == second["id"]
    assert same_run(first["id"], only_run(a2a_server, one))
    assert same_run(second["id"], only_run(a2a_server, other))


@pytest.mark.parametrize(("binding", "mode"), SENDS, ids=SEND_IDS)
def test_the_same_message_id_to_another_agent_is_another_task(http, a2a_server, binding, mode):
    message_id = str(uuid.uuid4())
    to_echo = send(http, binding, mode, message_id, agent="echo")
    to_writer = send(http, binding, mode, message_id, agent="writer")
    assert to_echo["id"] != to_writer["id"]
    assert send(http, binding, mode, message_id, agent="echo")["id"] == to_echo["id"]
    assert send(http, binding, mode, message_id, agent="writer")["id"] == to_writer["id"]
    assert same_run(to_echo["id"], only_run(a2a_server, message_id, "echo"))
    assert same_run(to_writer["id"], only_run(a2a_server, message_id, "writer"))


def wait_for_the_run(server: LiveServer, message_id: str, agent: str, timeout: float = 10) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = runs_of(server, message_id, agent)
        if runs:
            assert len(runs) == 1, runs
            return runs[0]
        time.sleep(0.02)
    raise AssertionError(f"no run for message {message_id} within {timeout:.0f}s")


@pytest.mark.parametrize(("binding", "mode"), SENDS, ids=SEND_IDS)
def test_a_retry_while_the_task_still_runs_gets_the_same_task(a2a_server, binding, mode):
    """The first send is still answering (or its task still running) when the retry comes."""
    message_id, agent = str(uuid.uuid4()), "unhurried"

    def send_once() -> dict[str, Any]:
        with httpx.Client(base_url=a2a_server.url, timeout=30) as http:
            return send(http, binding, mode, message_id, agent=agent)

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(send_once)
        run_id, status = wait_for_the_run(a2a_server, message_id, agent)
        assert status in ACTIVE, f"the first run is {status} already: the retry would not overlap it"
        retried = send_once()
        first_task = first.result(timeout=30)
    assert first_task["id"] == retried["id"]
    assert same_run(first_task["id"], run_id)
    assert same_run(first_task["id"], only_run(a2a_server, message_id, agent))
    if mode == "returnImmediately":  # answered at once: the task was still going
        assert retried["status"]["state"] in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"), retried["status"]
