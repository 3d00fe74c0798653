"""``/mcp`` with the official TypeScript SDK's client (``@modelcontextprotocol/sdk``, pinned in
tests/js/package.json), from Node: tests/js/mcp_client.mjs lists, calls with progress, reads the
run as a resource and is refused without a key."""

from __future__ import annotations

import pytest

from tests.support.node import run_node_script
from tests.support.servers import ApiProcess

from .seed import RUN_KEY

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


def test_the_official_typescript_client(mcp_api: ApiProcess):
    report, _ = run_node_script("mcp_client.mjs", mcp_api.url, RUN_KEY, "paced", "hello", log=mcp_api.output())

    assert {"echo", "paced", "brief"} <= set(report["tools"])
    assert report["server"]["name"] == "AsterOS"
    assert len(report["progress"]) > 1
    assert report["run"]["status"] == "succeeded"
    assert report["resourceStatus"] == "succeeded"
    assert report["withoutKey"]["status"] == 401
