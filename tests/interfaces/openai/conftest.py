"""Fixtures of the OpenAI-compatible door's tests: one live embedded AsterOS with auth on (the
demo, agents made for these tests, and API keys of each kind), started once per test process."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.model_server import ModelServer
from tests.support.processes import embedded_env, python_json
from tests.support.servers import ApiProcess

SETTINGS_KEY = "openai-door-settings-key-0123456789"

SEED = r"""
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from asteros_site.demo import load_demo
load_demo()
from cosmos.models import Agent
from interfaces.keys.models import APIKey
Agent.objects.update_or_create(id="frontend", defaults=dict(
    name="Frontend tools", provider="scripted", model="scripted-offline",
    parameters={"rules": [{"when": r"background to (\w+)", "call": "change_background",
                           "arguments": {"color": "$1"}}]},
))
Agent.objects.update_or_create(id="cached", defaults=dict(
    name="Long rules, cached", provider="openai", model="gpt-local",
    system_prompt="Answer carefully and briefly. " * 300, tools=[],
))
Agent.objects.update_or_create(id="asks-first", defaults=dict(
    name="Asks first", provider="scripted", model="scripted-offline",
    tools=["calculator"], approvals={"calculator": "always"},
))
Agent.objects.update_or_create(id="paced", defaults=dict(
    name="Paced", provider="scripted", model="scripted-offline",
    parameters={"reply_tokens": 40, "tokens_per_second": 40},
))
keys = {}
_, keys["run"] = APIKey.generate("runner", ["run"])
_, keys["read"] = APIKey.generate("reader", ["read"])
_, keys["other"] = APIKey.generate("other", ["run"])
_, keys["limited"] = APIKey.generate("limited", ["run"], ["agents:chat-agent"])
_, keys["slow"] = APIKey.generate("slow", ["run"], requests_per_minute=2)
print(json.dumps(keys))
"""


@dataclass
class Door:
    url: str  # the server's root
    keys: dict[str, str]
    server: ApiProcess

    @property
    def base(self) -> str:
        return f"{self.url}/v1"

    def client(self, key: str | None = "run", **options):
        import openai

        api_key = SETTINGS_KEY if key == "settings" else (self.keys[key] if key else "none")
        return openai.OpenAI(base_url=self.base, api_key=api_key, max_retries=0, timeout=60, **options)


@pytest.fixture(scope="session")
def openai_door() -> Iterator[Door]:
    folder = Path(tempfile.mkdtemp(prefix="asteros-openai-"))
    with ModelServer() as model:  # the agent "cached" calls it (OpenAI's protocol, prompt caching)
        env = {
            "ASTEROS_ENABLE_AUTH": "true",
            "ASTEROS_API_KEY": SETTINGS_KEY,
            "ASTEROS_LOG_LEVEL": "warning",
            "OPENAI_BASE_URL": f"{model.url}/v1",
            "OPENAI_API_KEY": "local",
        }
        server = ApiProcess.embedded(folder, **env)
        keys = python_json(SEED, embedded_env(folder, **env))
        server.start()
        try:
            yield Door(server.url, keys, server)
        finally:
            server.stop()
