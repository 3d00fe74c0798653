"""Fixtures of the AG-UI tests: the shared live server."""

from __future__ import annotations

import pytest

from .live import LiveServer, live_asteros


@pytest.fixture(scope="session")
def asteros_server() -> LiveServer:
    """A live ``asteros serve`` (embedded mode, temporary database, demo data), one per process."""
    return live_asteros()
