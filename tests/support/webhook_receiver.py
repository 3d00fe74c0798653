"""A local webhook receiver: a real HTTP server on 127.0.0.1, in a thread, that records requests.

It answers 200 unless told otherwise: ``fail_next(n, status)`` answers the next ``n`` requests
with ``status``, ``sleep_next(n, seconds)`` holds them (past the sender's timeout), ``down()``
closes the listening socket (connections are refused) and ``up()`` listens on the same port
again. ``verify(secret, request)`` checks a Standard Webhooks signature with the standard
library only (hmac, hashlib, base64), as a receiver in any language would.

    with WebhookReceiver() as receiver:
        settings_options(outbound_allowlist=(receiver.host_port,))
        ...
        receiver.wait_for(3)

``python -m tests.support.webhook_receiver --port N`` serves one in a process of its own (the
benchmark's receiver; ``GET /count`` answers how many POSTs it accepted).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .processes import free_port


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.monotonic()
    answered: int  # the status it was answered with (0: held past the sender's timeout)

    @property
    def message_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


def verify(secret: str, request: Received, tolerance_seconds: int = 300) -> bool:
    """A Standard Webhooks signature, checked with hmac, hashlib and base64 only."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    message_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance_seconds:
        return False
    signed = f"{message_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in request.headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


class WebhookReceiver:
    def __init__(self, port: int | None = None, path: str = "/hook") -> None:
        self.port = port or free_port()
        self.path = path
        self.requests: list[Received] = []
        self._plan: deque[tuple[str, float]] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life

    def __enter__(self) -> WebhookReceiver:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                action, value = receiver._next_action()
                if action == "sleep":
                    time.sleep(value)
                    status = 0
                else:
                    status = int(value)
                with receiver._lock:
                    headers = {name.lower(): v for name, v in self.headers.items()}
                    receiver.requests.append(Received("POST", self.path, headers, body, time.monotonic(), status))
                if status == 0:
                    self.close_connection = True
                    return
                reply = b'{"ok":true}' if status < 300 else b'{"error":"try later"}'
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    self.close_connection = True

            def do_GET(self) -> None:  # GET /count: how many POSTs it answered 2xx (benchmarks)
                reply = json.dumps({"accepted": len(receiver.accepted())}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Stop listening: new connections are refused until ``up()``."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    # --- what it answers

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._plan.extend([("status", float(status))] * count)

    def sleep_next(self, count: int, seconds: float) -> None:
        with self._lock:
            self._plan.extend([("sleep", seconds)] * count)

    def _next_action(self) -> tuple[str, float]:
        with self._lock:
            return self._plan.popleft() if self._plan else ("status", 200.0)

    # --- what it got

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def accepted(self) -> list[Received]:
        """The requests answered 2xx."""
        return [r for r in self.received() if 200 <= r.answered < 300]

    def wait_for(self, count: int, timeout: float = 30, *, accepted: bool = True) -> list[Received]:
        """At least ``count`` requests (answered 2xx, unless ``accepted=False``), or AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.accepted() if accepted else self.received()
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"the receiver got {len(got)} of {count} request(s) in {timeout:g}s")
            time.sleep(0.05)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="A local webhook receiver that answers 200.")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    receiver = WebhookReceiver(port=args.port).up()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        receiver.down()


if __name__ == "__main__":
    main()
