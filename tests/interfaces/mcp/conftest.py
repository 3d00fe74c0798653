"""A live AsterOS for the MCP tests: ``asteros serve`` (Daphne), embedded mode, auth on, seeded
with ``seed.py``, one browser origin allowed (``ALLOWED_ORIGIN``); one per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mcp_door import seeded_api
from tests.support.servers import ApiProcess

from .seed import ADMIN_KEY, ALLOWED_ORIGIN


@pytest.fixture(scope="session")
def mcp_api(tmp_path_factory) -> Iterator[ApiProcess]:
    api = seeded_api(
        tmp_path_factory.mktemp("mcp-live"),
        "tests.interfaces.mcp.seed:seed",
        ASTEROS_ENABLE_AUTH="true",
        ASTEROS_API_KEY=ADMIN_KEY,
        ASTEROS_LOG_LEVEL="warning",
        ASTEROS_CORS_ALLOWED_ORIGINS=ALLOWED_ORIGIN,
    )
    yield api
    api.stop()


@pytest.fixture(scope="session")
def mcp_url(mcp_api: ApiProcess) -> str:
    return f"{mcp_api.url}/mcp"
