"""Daphne's server, telling its caller when it listens and why it could not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from daphne.server import Server


class ListeningServer(Server):
    """``on_listening`` runs once every endpoint listens; ``failure`` holds why one could not
    (Daphne only logs it and stops its reactor: the process then exited 0, or hung under
    runserver's autoreloader)."""

    def __init__(self, *args: Any, on_listening: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_listening = on_listening
        self.failure: str | None = None
        self._listening = 0

    def listen_success(self, port: Any) -> None:
        super().listen_success(port)
        self._listening += 1
        if self._listening == len(self.endpoints) and self.on_listening is not None:
            self.on_listening()

    def listen_error(self, failure: Any) -> None:
        self.failure = failure.getErrorMessage()
        super().listen_error(failure)
