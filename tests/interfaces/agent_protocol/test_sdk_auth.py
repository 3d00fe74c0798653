"""``langgraph-sdk`` against a live server with auth on (the A2A tests' auth server): the key in
``x-api-key`` (what ``api_key=`` sends) or ``Authorization: Bearer``; no key 401, a key one
scope short 403."""

from __future__ import annotations

import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import AuthenticationError, PermissionDeniedError

from tests.interfaces.a2a.conftest import AUTH_KEY
from tests.interfaces.a2a.seed import READ_KEY, RUN_KEY

from .conftest import PREFIX

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]

ECHO = "agent:echo"


def test_keys_and_scopes(a2a_auth_server):
    url = a2a_auth_server.url + PREFIX
    with get_sync_client(url=url, api_key=None) as anonymous:
        with pytest.raises(AuthenticationError):
            anonymous.assistants.search()
        with pytest.raises(AuthenticationError):
            anonymous.threads.create()
    with (
        get_sync_client(url=url, api_key="ak_wrong000_not-a-key-0123456789") as wrong,
        pytest.raises(AuthenticationError),
    ):
        wrong.assistants.search()
    with get_sync_client(url=url, api_key=READ_KEY) as reader:
        assert ECHO in {a["assistant_id"] for a in reader.assistants.search(limit=100)}
        with pytest.raises(PermissionDeniedError):
            reader.threads.create()
        with pytest.raises(PermissionDeniedError):
            list(reader.runs.stream(None, ECHO, input={"messages": [{"role": "user", "content": "hi"}]}))
    with get_sync_client(url=url, api_key=RUN_KEY) as runner:
        thread = runner.threads.create()
        values = runner.runs.wait(thread["thread_id"], ECHO, input={"messages": [{"role": "user", "content": "hi"}]})
        assert values["messages"][-1]["content"] == "echo: hi"
        with pytest.raises(PermissionDeniedError):  # a cron is a schedule: admin
            runner.crons.create(ECHO, schedule="0 9 * * *", input={"messages": [{"role": "user", "content": "x"}]})
    bearer = {"Authorization": f"Bearer {AUTH_KEY}"}
    with get_sync_client(url=url, api_key=None, headers=bearer) as admin:
        cron = admin.crons.create(ECHO, schedule="0 9 * * *", input={"messages": [{"role": "user", "content": "x"}]})
        admin.crons.delete(cron["cron_id"])
