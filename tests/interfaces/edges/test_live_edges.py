"""The edges only a real server shows: its port, its static files, its websocket router.

Each test runs ``manage.py asteros serve`` (daphne or uvicorn) or ``manage.py runserver`` as a
user would, on a fresh embedded AsterOS, and talks to it over 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.processes import ROOT, embedded_env, free_port, manage

BANNER = "is running on"
SERVERS = ["daphne", "uvicorn", "runserver"]


def command(server: str, port: int) -> list[str]:
    if server == "runserver":
        return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]
    return [sys.executable, "manage.py", "asteros", "serve", "--port", str(port), "--server", server]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("edges")
    env = embedded_env(folder)
    assert manage(env, "migrate", "-v0").returncode == 0
    return env


@pytest.fixture
def occupied_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("server", SERVERS)
def test_a_port_in_use_fails_at_once_with_the_reason_and_no_banner(env, occupied_port, server):
    started = time.monotonic()
    done = subprocess.run(command(server, occupied_port), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"port {occupied_port} is already in use" in output, output
    assert BANNER not in output, output
    assert elapsed < 20, elapsed


class Served:
    def __init__(self, server: str, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.handle = log.open("w")
        self.process = subprocess.Popen(
            command(server, self.port), cwd=ROOT, env=env, stdout=self.handle, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_for_banner(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while BANNER not in self.output():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.02)

    def stop(self) -> None:
        # runserver's autoreloader runs the server in a child: its group goes with it.
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.handle.close()


@pytest.fixture(params=SERVERS)
def served(request, env, tmp_path) -> Iterator[Served]:
    served = Served(request.param, env, tmp_path / "server.log")
    try:
        served.wait_for_banner()
        yield served
    finally:
        served.stop()


def test_the_banner_is_printed_once_the_server_listens(served):
    # The banner is out: a connection now is accepted at once, not refused.
    with socket.create_connection(("127.0.0.1", served.port), timeout=2):
        pass
    assert served.output().count(BANNER) == 1
    response = httpx.get(f"http://127.0.0.1:{served.port}/api", timeout=30)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/static/..%2fsettings.py", "/static/..%2f..%2f..%2fetc/passwd", "/static/asteros/..%2f..%2fmodels.py"]
)
def test_a_static_path_out_of_the_static_folders_is_a_404_in_the_error_shape(served, path):
    response = httpx.get(f"http://127.0.0.1:{served.port}{path}", timeout=30)
    assert response.status_code == 404, response.text[:300]
    if response.headers["content-type"].startswith("application/json"):  # DEBUG off; on, Django's page
        assert response.json()["error"]["code"] == "not_found"
    assert "Traceback" not in served.output()


@pytest.mark.parametrize("path", ["/ws/nothing", "/", "/ws/runs/not-a-run-id", "/api/agents"])
def test_a_websocket_to_an_unknown_path_is_refused_cleanly(served, path):
    async def handshake() -> tuple[dict, int | None]:
        async with websockets.connect(f"ws://127.0.0.1:{served.port}{path}", open_timeout=10) as ws:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return frame, ws.close_code

    frame, code = asyncio.run(handshake())
    assert frame["type"] == "error" and frame["code"] == "not_found", frame
    assert code == 4404
    assert "Traceback" not in served.output()
