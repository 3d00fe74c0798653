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

pytestmark = pytest.mark.embedded_only

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


@pytest.fixture(scope="module", params=SERVERS)
def served(request, env, tmp_path_factory) -> Iterator[Served]:
    # One server of each kind for the module: the tests below only read from it.
    served = Served(request.param, env, tmp_path_factory.mktemp("served") / "server.log")
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
    "path",
    [
        "/static/..%2fsettings.py",
        "/static/..%2f..%2f..%2fetc/passwd",
        "/static/asteros/..%2f..%2fmodels.py",
        "/static/no-such-file.css",
    ],
)
def test_a_static_path_out_of_the_static_folders_is_a_404_in_the_error_shape(served, path):
    # The served process runs with DEBUG on, where Django would answer with its HTML debug page.
    response = httpx.get(f"http://127.0.0.1:{served.port}{path}", timeout=30)
    assert response.status_code == 404, response.text[:300]
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
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


# --- slow clients and chunked bodies (raw sockets)

TIMEOUT = 2  # ASTEROS_HEADER_TIMEOUT and ASTEROS_BODY_TIMEOUT of the servers below


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def timed(request, env, tmp_path_factory) -> Iterator[Served]:
    timed_env = env | {
        "ASTEROS_HEADER_TIMEOUT": str(TIMEOUT),
        "ASTEROS_BODY_TIMEOUT": str(TIMEOUT),
        "ASTEROS_MAX_BODY_BYTES": "4096",
    }
    served = Served(request.param, timed_env, tmp_path_factory.mktemp("timed") / "server.log")
    try:
        served.wait_for_banner()
        assert manage(env, "asteros", "demo").returncode == 0
        yield served
    finally:
        served.stop()


def exchange(port: int, parts: list[bytes], gap: float, wait: float = 15) -> tuple[bytes, float]:
    """Send ``parts`` ``gap`` seconds apart, then read until the server closes (or ``wait``)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        try:
            for part in parts:
                sock.sendall(part)
                time.sleep(gap)
        except OSError:
            pass  # the server closed on us mid-way: what it answered is read below
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received, time.monotonic() - started


def status_of(raw: bytes) -> int | None:
    if not raw.startswith(b"HTTP/1.1 "):
        return None
    return int(raw.split(b" ", 2)[1])


def body_of(raw: bytes) -> dict:
    """The JSON body (``Content-Length`` or chunked framing: from its first brace to its last)."""
    payload = raw.split(b"\r\n\r\n", 1)[1]
    return json.loads(payload[payload.index(b"{") : payload.rindex(b"}") + 1])


def run_request(body: bytes, *, chunked: bool = False) -> bytes:
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body)
    return (
        b"POST /api/agents/agent-2/run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + framing
        + b"\r\nConnection: close\r\n\r\n"
    )


def chunked(body: bytes, size: int = 5) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def test_headers_trickled_past_the_deadline_get_a_408(timed):
    parts = [b"GET /api HTTP/1.1\r\n"] + [b"X-Slow-%d: 1\r\n" % i for i in range(10)]
    raw, elapsed = exchange(timed.port, parts, gap=0.5)
    assert status_of(raw) == 408, raw[:300]
    assert body_of(raw)["error"]["code"] == "request_timeout"
    assert elapsed < TIMEOUT + 4


def test_a_client_that_sends_nothing_is_let_go(timed):
    raw, elapsed = exchange(timed.port, [], gap=0)
    assert status_of(raw) in (408, None), raw[:300]  # a 408, or (daphne idle) just closed
    assert elapsed < TIMEOUT + 4


def test_a_body_that_stops_arriving_is_let_go(timed):
    body = b'{"input": "hello there"}'
    raw, elapsed = exchange(timed.port, [run_request(body) + body[:5]], gap=0)
    assert status_of(raw) in (408, None), raw[:300]
    assert b"202 Accepted" not in raw
    assert elapsed < 2 * TIMEOUT + 4


def test_a_slow_but_steady_client_is_never_cut_off(timed):
    body = b'{"input": "slowly"}'
    # Every gap is under the body timeout, the whole body takes well over it.
    parts = [run_request(body)] + [body[i : i + 4] for i in range(0, len(body), 4)]
    raw, elapsed = exchange(timed.port, parts, gap=TIMEOUT * 0.4)
    assert elapsed > TIMEOUT * 2
    assert status_of(raw) == 202, raw[:500]


def test_a_chunked_body_is_read(timed):
    body = b'{"input": "sent in chunks"}'
    raw, _ = exchange(timed.port, [run_request(body, chunked=True) + chunked(body)], gap=0)
    assert status_of(raw) == 202, raw[:500]
    assert b"sent in chunks" in raw


def test_a_chunked_body_over_the_limit_is_a_413(timed):
    body = b'{"input": "' + b"x" * 8000 + b'"}'
    raw, _ = exchange(timed.port, [run_request(body, chunked=True) + chunked(body, 1000)], gap=0)
    assert status_of(raw) == 413, raw[:500]
    assert body_of(raw)["error"]["code"] == "payload_too_large"
