"""Fixtures of the Agent Protocol tests: the shared live server of the AG-UI tests (embedded
mode, demo data, the ``agui-approval`` and ``agui-paced`` agents), reached with the official
``langgraph-sdk`` client."""

from __future__ import annotations

import pytest

from tests.interfaces.agui.live import LiveServer, live_asteros

PREFIX = "/agent-protocol"


@pytest.fixture(scope="session")
def asteros_server() -> LiveServer:
    return live_asteros()


@pytest.fixture
def client(asteros_server):
    from langgraph_sdk import get_sync_client

    with get_sync_client(url=asteros_server.url + PREFIX, api_key=None) as sdk:
        yield sdk


# The A2A tests' live servers (one with auth on, its keys in tests/interfaces/a2a/seed.py).
from tests.interfaces.a2a.conftest import _servers, a2a_auth_server, seeded_database  # noqa: E402, F401
