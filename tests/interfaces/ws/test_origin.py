"""A websocket's Origin is compared exactly (scheme, host and port) before a session is trusted:
with real handshakes against the project's ASGI application served on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from websockets.asyncio.client import connect

from asteros_site.options import LOOPBACK_ORIGIN_REGEX
from interfaces.edge.origins import same_origin
from tests.factories import add_event, make_run
from tests.interfaces.http.conftest import SETTINGS_KEY
from tests.support.model_server import ServerThread

TIMEOUT = 10


@pytest.fixture
def server():
    from asteros_site.asgi import application

    with ServerThread(application) as running:
        yield running


def staff_cookie(django_user_model) -> str:
    staff = django_user_model.objects.create_user(username="boss", password="pw-12345678", is_staff=True)
    client = Client()
    client.force_login(staff)
    return f"sessionid={client.cookies['sessionid'].value}"


async def first_frame(url: str, cookie: str, origin: str) -> dict:
    headers = {"Cookie": cookie, "Origin": origin}
    async with connect(url, additional_headers=headers, open_timeout=TIMEOUT) as socket:
        frame = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))
        if frame.get("type") == "error":
            await asyncio.wait_for(socket.wait_closed(), TIMEOUT)
            frame["close_code"] = socket.close_code
        return frame


@pytest.mark.django_db(transaction=True)
async def test_only_the_exact_origin_may_use_the_session(server, django_user_model, settings, settings_options):
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    settings.CSRF_TRUSTED_ORIGINS = ["https://console.example:8443"]
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example"]
    cookie = await sync_to_async(staff_cookie)(django_user_model)
    url = f"ws://127.0.0.1:{server.port}/ws/dashboard/"

    own = await first_frame(url, cookie, f"http://127.0.0.1:{server.port}")
    assert own["type"] == "snapshot", own
    refused = [
        "http://127.0.0.1:9999",  # same host, another port: another site
        f"https://127.0.0.1:{server.port}",  # another scheme
        f"http://localhost:{server.port}",  # another host name
        "https://console.example",  # a trusted origin's host on another port
        "http://app.example",  # a CORS origin's host with another scheme
        "null",
    ]
    for origin in refused:
        frame = await first_frame(url, cookie, origin)
        assert (frame["type"], frame["close_code"]) == ("error", 4401), (origin, frame)
    for origin in ("https://console.example:8443", "https://app.example"):
        assert (await first_frame(url, cookie, origin))["type"] == "snapshot", origin


def test_the_rule(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.corp.example"]
    settings.CORS_ALLOWED_ORIGINS = []
    host = {"host": "127.0.0.1:8080"}
    assert same_origin(host)  # no Origin: not a browser
    assert same_origin(host | {"origin": "http://127.0.0.1:8080"})
    assert not same_origin(host | {"origin": "http://127.0.0.1:9999"})
    assert not same_origin(host | {"origin": "http://127.0.0.1"})
    assert same_origin({"host": "example.com", "origin": "http://example.com:80"})
    assert same_origin({"host": "example.com", "origin": "https://example.com"}, "wss")
    assert not same_origin({"host": "example.com", "origin": "https://example.com"}, "ws")
    assert same_origin(host | {"origin": "https://a.corp.example"})
    assert not same_origin(host | {"origin": "https://corp.example"})
    assert not same_origin(host | {"origin": "http://a.corp.example"})
    assert not same_origin(host | {"origin": "https://a.corp.example:444"})
    assert not same_origin(host | {"origin": ""})


async def handshake_frame(url: str, origin: str | None) -> tuple[str, int | None]:
    """The first frame's type and, for an error, the close code, with this Origin (None: none sent)."""
    headers = {"Origin": origin} if origin is not None else {}
    async with connect(url, additional_headers=headers, open_timeout=TIMEOUT) as socket:
        frame = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))
        if frame.get("type") != "error":
            return frame["type"], None
        await asyncio.wait_for(socket.wait_closed(), TIMEOUT)
        return frame.get("code"), socket.close_code


@pytest.mark.django_db(transaction=True)
async def test_with_auth_off_only_origins_the_cors_policy_allows_may_connect(server, settings, settings_options):
    # Browsers apply no CORS to websockets: with auth off, the Origin is the only guard.
    settings_options(enable_auth=False, cors_allowed_origins=())
    settings.CORS_ALLOW_ALL_ORIGINS, settings.CORS_ALLOWED_ORIGINS = False, []
    settings.CORS_ALLOWED_ORIGIN_REGEXES = [LOOPBACK_ORIGIN_REGEX]  # the default with auth off
    run = await sync_to_async(make_run)(status="succeeded")
    await sync_to_async(add_event)(run, "RUN_STARTED")
    url = f"ws://127.0.0.1:{server.port}/ws/runs/{run.id}/?after=0"
    for origin in (None, f"http://127.0.0.1:{server.port}", "http://localhost:3000", "http://[::1]:5173"):
        code, close = await handshake_frame(url, origin)
        assert close is None, (origin, code)
    for origin in ("http://evil.example", "https://127.0.0.1.evil.example", "null"):
        assert await handshake_frame(url, origin) == ("origin_not_allowed", 4403), origin
