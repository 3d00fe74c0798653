"""The official ``openai`` Node client (tests/js/openai_client.mjs) against a live server.

It needs ``node`` and ``npm`` (``tests.support.node``); without them it is skipped, except in CI.
"""

from __future__ import annotations

import pytest

from tests.support.node import run_node_script

from .conftest import Door

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


def test_the_official_node_client(openai_door: Door):
    report, _ = run_node_script(
        "openai_client.mjs",
        openai_door.url,
        openai_door.keys["run"],
        "agent:chat-agent",
        log=openai_door.server.output(),
    )
    assert report["chat"]["text"] == "(offline scripted model) You said: hello from node"
    assert report["response"]["text"] == "(offline scripted model) You said: hello responses"
    assert report["refused"]["status"] == 401
