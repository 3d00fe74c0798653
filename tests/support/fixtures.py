"""Shared pytest fixtures. Register with ``pytest_plugins = ["tests.support.fixtures"]``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.model_server import ModelServer


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """A fresh fake Anthropic/OpenAI server on a free local port, stopped after the test."""
    with ModelServer() as server:
        yield server
