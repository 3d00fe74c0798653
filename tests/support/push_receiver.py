"""A real HTTP receiver on loopback for A2A push notifications: it records every POST.

``PushReceiver`` runs ``http.server`` in a thread on 127.0.0.1 and a free port. Each request is
kept (path, headers with lower-case names, JSON body); ``fail_next(n)`` answers the next ``n``
requests with 503, so retries can be seen. ``wait_for(predicate)`` polls the recorded requests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class PushReceiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._failures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                status = receiver._record(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}{path}"

    def _record(self, received: Received) -> int:
        with self._lock:
            self.requests.append(received)
            if self._failures:
                self._failures -= 1
                return 503
        return 200

    def fail_next(self, count: int) -> None:
        with self._lock:
            self._failures = count

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(self, predicate: Callable[[list[Received]], bool], path: str | None = None, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.received(path)
            if predicate(found):
                return found
            time.sleep(0.05)
        raise AssertionError(f"the receiver did not get what was expected within {timeout}s: {self.received(path)}")

    def start(self) -> PushReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def push_receiver() -> Iterator[PushReceiver]:
    receiver = PushReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
