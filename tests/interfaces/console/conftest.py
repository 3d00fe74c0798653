"""Fixtures of the dashboard tests: the live server shared with the AG-UI tests."""

from __future__ import annotations

import pytest

from tests.interfaces.agui.live import LiveServer, live_asteros


@pytest.fixture(scope="session")
def asteros_server() -> LiveServer:
    """A live ``asteros serve`` (embedded mode, temporary database, demo data), one per process."""
    return live_asteros()
