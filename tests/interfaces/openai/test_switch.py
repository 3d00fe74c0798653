"""``ASTEROS_ENABLE_OPENAI`` and ``ASTEROS_OPENAI_PREFIX``: where the door is served, if at all."""

from __future__ import annotations

import os
import subprocess
import sys

from asteros_site.banner import banner
from tests.support.processes import ROOT


def routes(**env: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "asteros", "routes"],
        cwd=ROOT,
        env={**os.environ, "SECRET_KEY": "x", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_prefix_moves_the_door_and_the_switch_removes_it():
    moved = routes(ASTEROS_OPENAI_PREFIX="/openai/v1")
    assert "/openai/v1/chat/completions  openai:chat-completions" in moved
    assert " /v1/chat/completions" not in moved
    assert "openai:" not in routes(ASTEROS_ENABLE_OPENAI="false")


def test_the_banner_says_where_the_door_is(settings_options):
    assert "OpenAI:    http://127.0.0.1:8080/v1" in banner("127.0.0.1", 8080)
    settings_options(enable_openai=False)
    assert "OpenAI:    off (ASTEROS_ENABLE_OPENAI)" in banner("127.0.0.1", 8080)
