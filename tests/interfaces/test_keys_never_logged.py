"""API keys appear in no log line, no error message and no response.

Requests with a valid key, a revoked key, an unknown key and malformed ``Authorization``
headers, on every interface, and runs that fail, are made with every logger recorded at DEBUG
(``caplog``) and through the project's structured JSON handler (``settings.LOGGING``). The raw
keys and their secret parts must be in none of the records, none of the JSON lines (the access
lines of ``RequestContextMiddleware`` included), no response body or header, and no websocket
frame. In distributed mode the runs execute in a worker process, whose own log is not captured
here; it only ever receives run ids.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import logging.config
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.test import AsyncClient
from django.urls import reverse

# At import, not in a test: importing it runs django.setup(), which reconfigures logging and
# would drop the test's log capture.
from asteros_site.asgi import application
from cosmos.logging import ContextFilter
from interfaces.keys.models import KEY_PREFIX, APIKey
from tests.factories import make_agent
from tests.support.runs import wait_for_run

SETTINGS_KEY = "never-logged-settings-key-0123456789"
TIMEOUT = 30


@dataclass
class Capture:
    """Every log record of the test, and the same records as the JSON handler writes them."""

    caplog: pytest.LogCaptureFixture
    json_lines: io.StringIO
    seen: list[str] = field(default_factory=list)  # response bodies, headers and frames

    def records_text(self) -> str:
        plain = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return "\n".join(f"{plain.format(r)} {r.__dict__!r}" for r in self.caplog.records)

    def access_lines(self) -> list[dict]:
        lines = [json.loads(line) for line in self.json_lines.getvalue().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("logger") == "asteros.access"]

    def assert_never_shown(self, secrets: list[str]) -> None:
        places = {
            "a log record": self.records_text(),
            "a JSON log line": self.json_lines.getvalue(),
            "a response or frame": "\n".join(self.seen),
        }
        for secret in secrets:
            for place, text in places.items():
                assert secret not in text, f"a key (…{secret[-6:]}) is in {place}"


def json_handler(stream: io.StringIO, settings) -> logging.Handler:
    """A handler configured like settings.LOGGING's console handler (JSON formatter, context filter)."""
    config = copy.deepcopy(settings.LOGGING)
    configurator = logging.config.DictConfigurator(config)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(configurator.configure_formatter(configurator.config["formatters"]["json"]))
    handler.addFilter(ContextFilter())
    handler.setLevel(logging.DEBUG)
    return handler


@pytest.fixture
def capture(caplog, settings) -> Iterator[Capture]:
    caplog.set_level(logging.DEBUG)
    loggers = [logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    for logger in loggers:
        if logger.level != logging.NOTSET:  # e.g. celery, daphne, httpx are set to WARNING
            caplog.set_level(logging.DEBUG, logger=logger.name)
    stream = io.StringIO()
    handler = json_handler(stream, settings)
    quiet = [logger for logger in loggers if not logger.propagate]  # the root's handlers never see these
    for logger in (logging.getLogger(), *quiet):
        logger.addHandler(handler)
    try:
        yield Capture(caplog, stream)
    finally:
        for logger in (logging.getLogger(), *quiet):
            logger.removeHandler(handler)


def secrets_of(*raw_keys: str) -> list[str]:
    """Each raw key, and the secret part of each stored-key format ``ak_<prefix>_<secret>``."""
    out = []
    for raw in raw_keys:
        out.append(raw)
        if raw.startswith(KEY_PREFIX):
            out.append(raw.split("_", 2)[2])
    return out


async def call(client: AsyncClient, capture: Capture, method: str, path: str, body=None, **headers: str):
    data = json.dumps(body) if body is not None else ""
    response = await client.generic(method, path, data, content_type="application/json", headers=headers)
    if response.streaming:
        content = b"".join([chunk async for chunk in response.streaming_content])
    else:
        content = response.content
    capture.seen.append(f"{response.status_code} {dict(response.items())!r} {content.decode(errors='replace')}")
    return response, content


async def socket_frames(capture: Capture, path: str, protocols: list[str]) -> list[dict]:
    comm = WebsocketCommunicator(application, path, subprotocols=protocols)
    connected, answered = await comm.connect(timeout=TIMEOUT)
    assert connected
    capture.seen.append(f"subprotocol {answered}")
    frames = []
    while True:
        output = await comm.receive_output(timeout=TIMEOUT)
        capture.seen.append(repr(output))
        if output["type"] == "websocket.close":
            return frames
        frames.append(json.loads(output["text"]))


@pytest.mark.django_db(transaction=True)
async def test_keys_are_in_no_log_line_and_no_response(capture, settings_options, embedded_worker):
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    failing = await database_sync_to_async(make_agent)(parameters={"fail": "the model is down"})
    valid = (await database_sync_to_async(APIKey.generate)("valid", ["run"]))[1]
    revoked_row, revoked = await database_sync_to_async(APIKey.generate)("revoked", ["run"])
    revoked_row.revoked = True
    await database_sync_to_async(revoked_row.save)()
    unknown = f"{KEY_PREFIX}0badc0de_{'x' * 43}"  # well formed, stored nowhere
    client = AsyncClient()

    # A run that fails, started and read with the valid key.
    started = f"/api/agents/{failing.id}/run?wait=20"
    response, content = await call(client, capture, "POST", started, {"input": "hi"}, authorization=f"Bearer {valid}")
    assert response.status_code in (200, 202), content
    run_id = json.loads(content)["id"]
    run = await database_sync_to_async(wait_for_run)(run_id, timeout=TIMEOUT)
    assert run.status == "failed"
    await call(client, capture, "GET", f"/api/runs/{run_id}", x_api_key=valid)
    await call(client, capture, "GET", f"/api/runs/{run_id}/events", x_api_key=valid)

    # An AG-UI run that fails, streamed back; an A2A message with the valid key.
    agui = {"threadId": "t-1", "runId": str(uuid.uuid4()), "messages": [{"id": "m1", "role": "user", "content": "hi"}]}
    response, content = await call(client, capture, "POST", f"/agui/agents/{failing.id}", agui, x_api_key=valid)
    assert response.status_code == 200 and b"RUN_ERROR" in content
    a2a = {"message": {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "hi"}]}}
    send = f"/a2a/agents/{failing.id}/message:send"
    await call(client, capture, "POST", send, a2a, x_api_key=valid, a2a_version="1.0")

    # Refused keys, everywhere they are read (/health ignores them), and malformed headers.
    for method, path in (
        ("GET", "/api/agents"),
        ("POST", f"/api/agents/{failing.id}/run"),
        ("POST", f"/agui/agents/{failing.id}"),
        ("POST", send),
        ("POST", f"/a2a/agents/{failing.id}"),
        ("GET", "/metrics"),
        ("GET", "/health"),
    ):
        for bad in (revoked, unknown):
            for header in ({"authorization": f"Bearer {bad}"}, {"x_api_key": bad}):
                refused, _ = await call(client, capture, method, path, {}, a2a_version="1.0", **header)
                assert refused.status_code in ((200, 503) if path == "/health" else (401,)), (method, path)
    for header in (
        f"Bearer {unknown} {valid}",
        f"Token {valid}",
        f"Basic {base64.b64encode(f'{valid}:'.encode()).decode()}",
        f"Bearer{valid}",
        f"Bearer {revoked}\t",
    ):
        refused, _ = await call(client, capture, "GET", "/api/agents", authorization=header)
        assert refused.status_code == 401, header

    # The setting's key; a route that is not there; a method that is not allowed.
    for method, path, key, status in (
        ("GET", "/metrics", SETTINGS_KEY, 200),
        ("GET", "/api/nowhere", valid, 404),
        ("DELETE", "/api/runs", SETTINGS_KEY, 405),
    ):
        response, _ = await call(client, capture, method, path, authorization=f"Bearer {key}")
        assert response.status_code == status, (method, path)

    # Websockets: keys in the subprotocols (browsers), accepted and refused.
    frames = await socket_frames(capture, f"/ws/runs/{run_id}/", ["asteros", f"asteros.key.{valid}"])
    assert frames[-1]["type"] == "end" and frames[-1]["status"] == "failed"
    refused = await socket_frames(capture, f"/ws/runs/{run_id}/", ["asteros", f"asteros.key.{revoked}"])
    assert refused[0]["code"] == "authentication_failed"

    capture.assert_never_shown(secrets_of(valid, revoked, unknown, SETTINGS_KEY))
    # The capture did see the requests: the access lines, refusals and the failed run among them.
    access = capture.access_lines()
    assert {line["status"] for line in access} >= {200, 401, 404, 405}, access
    assert any(line["path"] == f"/api/agents/{failing.id}/run" for line in access)
    assert "the model is down" in "\n".join(capture.seen)


@pytest.mark.django_db
def test_a_key_made_in_the_admin_is_shown_once_and_logged_nowhere(capture, staff_client):
    created = staff_client.post(reverse("admin:keys_apikey_add"), {"name": "ci", "scopes": ["read"], "resources": "[]"})
    response = staff_client.get(created.url)
    shown = [str(m) for m in get_messages(response.wsgi_request) if "new API key" in str(m)]
    assert len(shown) == 1
    raw = next(word for word in shown[0].split() if word.startswith(KEY_PREFIX))
    key = APIKey.objects.get()
    # Messages are kept in the session: the key never travels in a (signed, readable) cookie.
    assert raw not in str(created.cookies) + str(response.cookies)
    staff_client.get(reverse("admin:keys_apikey_change", args=[key.pk]))
    staff_client.get(reverse("admin:keys_apikey_changelist"))
    # The admin's own log (LogEntry, the object's history) names the key by its prefix only.
    history = json.dumps(list(LogEntry.objects.values("object_repr", "change_message")))
    assert key.prefix in history
    capture.seen.append(history)
    capture.assert_never_shown(secrets_of(raw))
    assert capture.caplog.records, "the requests were logged"
