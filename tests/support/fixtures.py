"""Shared pytest fixtures. Register with ``pytest_plugins = ["tests.support.fixtures"]``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.model_server import ModelServer
from tests.support.services import RedisServer, redis_server_binary
from tests.support.skips import skip_unless_in_ci


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """A fresh fake Anthropic/OpenAI server on a free local port, stopped after the test."""
    with ModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def module_model_server() -> Iterator[ModelServer]:
    """One fake model server for a whole test module (its engine fixture points at it)."""
    with ModelServer() as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private ``redis-server`` on a free port, for a test that stops or restarts Redis (never
    the shared one); shut down after the test."""
    if redis_server_binary() is None:
        skip_unless_in_ci("needs redis-server installed (apt-get install redis-server)")
    with RedisServer() as server:
        yield server


@pytest.fixture
def traces():
    """Tracing on in this process for the test (``tests.support.traces.traced``), HTTP requests
    included; ``traces.spans()`` are the finished spans."""
    from tests.support.traces import traced

    with traced(requests=True) as on:
        yield on
